#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/site.h"
#include "quantlens/grad/clipquant.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <array>
#include <optional>
#include <vector>

namespace ql {

/// Settings of OmniQuant's learnable weight clipping (LWC) on one block, with the published
/// defaults of its weight-only runs: 20 epochs, AdamW at lr 1e-2 without weight decay, clipping
/// factors initialised at 4 (σ(4) ≈ 0.982 of each group's range).
struct OmniQuantOptions {
    /// Per linear, its grid; empty where the linear stays float.
    std::array<std::optional<ClipQuantSpec>, kLinearCount> specs;
    int epochs = 20;
    float lwcLr = 1e-2f;
    float weightDecay = 0.f;
    float initValue = 4.f;

    /// Gives all seven linears the grid spec.
    void setAll(const ClipQuantSpec& spec) { specs.fill(spec); }
};

/// The clipping OmniQuant learned for one block, and how the block's loss moved.
struct BlockClipping {
    std::array<Eigen::MatrixXf, kLinearCount> gamma; ///< per linear, rows × groups (σ(γ) scales the maximum)
    std::array<Eigen::MatrixXf, kLinearCount> beta;  ///< per linear, rows × groups (σ(β) scales the minimum)
    double lossBefore = 0;                           ///< mean MSE over the windows at the initial clipping
    double lossAfter = 0;                            ///< the same at the learned clipping
    std::vector<double> epochLoss;                   ///< mean training loss of each epoch
};

/// Trains the clipping of one block as OmniQuant does: for every epoch, for every window in
/// order, one AdamW step on MSE(block with fake-quantized weights (quantInputs[w]), targets[w]),
/// where targets are the float block's outputs on the float model's inputs and quantInputs the
/// outputs of the blocks quantized before it. Gradients come from the backward pass (fp32) and
/// the clipping's straight-through estimator; the weights themselves stay fixed.
Expected<BlockClipping> trainBlockClipping(const ModelConfig& config, const BlockWeights& block,
                                           const std::vector<Eigen::MatrixXf>& quantInputs,
                                           const std::vector<Eigen::MatrixXf>& targets, const OmniQuantOptions& options,
                                           Feedback* feedback = nullptr);

/// Fills out with block's weights fake-quantized at the clipping (the rest of block copied; a
/// linear without a grid in options is a view of block's own weight).
void applyClipping(const BlockWeights& block, const BlockClipping& clip, const OmniQuantOptions& options,
                   BlockWeights& out);

} // namespace ql
