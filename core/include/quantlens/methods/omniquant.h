#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/site.h"
#include "quantlens/grad/clipquant.h"
#include "quantlens/grad/let.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <array>
#include <optional>
#include <vector>

namespace ql {

/// Settings of OmniQuant on one block, with the published defaults: learnable weight clipping
/// (LWC) trained for 20 epochs by AdamW at lr 1e-2 without weight decay, clipping factors
/// initialised at 4 (σ(4) ≈ 0.982 of each group's range); for weight-activation settings also
/// the learnable equivalent transformation (LET, grad/let.h) at lr 5e-3 from SmoothQuant-like
/// scales of strength α = 0.5, and at W4A4 the reference's augmented loss.
struct OmniQuantOptions {
    /// Per linear, its grid; empty where the linear stays float.
    std::array<std::optional<ClipQuantSpec>, kLinearCount> specs;
    int epochs = 20;
    float lwcLr = 1e-2f;
    float weightDecay = 0.f;
    float initValue = 4.f;
    bool let = false;    ///< train LET scales with the clipping
    float letLr = 5e-3f; ///< AdamW learning rate of the LET scales (same weight decay)
    float alpha = 0.5f;  ///< LET's initial migration strength
    /// Also fit the float block's output on the quantized stream's input (the reference's
    /// --aug_loss): loss = MSE(y, targets) + MSE(y, float block(inputs)).
    bool augLoss = false;
    /// The float model's activation absmax at the block's sites, where LET's scales start.
    SiteAbsmax actAbsmax;

    /// Gives all seven linears the grid spec.
    void setAll(const ClipQuantSpec& spec) { specs.fill(spec); }
};

/// The clipping OmniQuant learned for one block, and how the block's loss moved.
struct BlockClipping {
    std::array<Eigen::MatrixXf, kLinearCount> gamma; ///< per linear, rows × groups (σ(γ) scales the maximum)
    std::array<Eigen::MatrixXf, kLinearCount> beta;  ///< per linear, rows × groups (σ(β) scales the minimum)
    LetScales let;                                   ///< the learned LET scales (all empty without LET)
    double lossBefore = 0;                           ///< mean MSE over the windows at the initial clipping
    double lossAfter = 0;                            ///< the same at the learned clipping
    std::vector<double> epochLoss;                   ///< mean training loss of each epoch
};

/// Trains the clipping of one block as OmniQuant does: for every epoch, for every window in
/// order, one AdamW step on MSE(block with fake-quantized weights (quantInputs[w]), targets[w]),
/// where targets are the float block's outputs on the float model's inputs and quantInputs the
/// outputs of the blocks quantized before it. Gradients come from the backward pass (fp32) and
/// the clipping's straight-through estimator; with LET they reach the scales through the norms
/// and the transformed weights (and their groups' ranges), the original weights staying fixed.
Expected<BlockClipping> trainBlockClipping(const ModelConfig& config, const BlockWeights& block,
                                           const std::vector<Eigen::MatrixXf>& quantInputs,
                                           const std::vector<Eigen::MatrixXf>& targets, const OmniQuantOptions& options,
                                           Feedback* feedback = nullptr);

/// Fills out with block's weights transformed by clip.let and fake-quantized at the clipping
/// (norms from the transformed block, the rest of block copied; a linear without a grid in
/// options is a view of block's own weight).
void applyClipping(const ModelConfig& config, const BlockWeights& block, const BlockClipping& clip,
                   const OmniQuantOptions& options, BlockWeights& out);

} // namespace ql
