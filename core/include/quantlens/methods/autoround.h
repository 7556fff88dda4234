#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/site.h"
#include "quantlens/grad/roundquant.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace ql {

/// Settings of AutoRound on one block, with its published defaults: 200 iterations of signed
/// gradient descent at lr 1/iters (the rounding offsets and the min/max factors alike), decayed
/// linearly to 0, on batches of 8 windows drawn at random, keeping the parameters of the
/// iteration with the lowest batch loss.
struct AutoRoundOptions {
    /// Per linear, its grid; empty where the linear stays float.
    std::array<std::optional<RoundQuantSpec>, kLinearCount> specs;
    int iters = 200;
    float lr = 0.f;       ///< 0: 1 / iters
    float minmaxLr = 0.f; ///< 0: lr
    int batch = 8;        ///< windows per iteration (all of them when fewer)
    uint64_t seed = 42;   ///< of the batch draws
    bool keepBest = true; ///< false: keep the last iteration's parameters

    /// Gives all seven linears the grid spec.
    void setAll(const RoundQuantSpec& spec) { specs.fill(spec); }
};

/// What AutoRound learned for one block, and how the block's loss moved.
struct BlockRounding {
    std::array<RowMatrix, kLinearCount> v;              ///< per linear, [out, in] rounding offsets
    std::array<Eigen::MatrixXf, kLinearCount> minScale; ///< per linear, rows × groups, in [0, 1]
    std::array<Eigen::MatrixXf, kLinearCount> maxScale; ///< per linear, rows × groups, in [0, 1]
    double lossBefore = 0;        ///< mean MSE over all windows with plain rounding (v = 0, factors 1)
    double lossAfter = 0;         ///< the same with the kept parameters
    int bestIter = -1;            ///< the iteration whose parameters were kept
    std::vector<double> iterLoss; ///< each iteration's batch loss, before its step
};

/// Trains the rounding of one block as AutoRound does: at iteration i, a batch of windows,
/// loss = MSE(block with fake-quantized weights (inputs), targets) over the whole batch, and
/// one step p ← p − lr·(1 − i/iters)·sign(∂loss/∂p) on every offset and factor, the factors then
/// clamped to [0, 1]. targets are the float block's outputs on the float model's inputs and
/// inputs the outputs of the blocks quantized before it.
Expected<BlockRounding> trainBlockRounding(const ModelConfig& config, const BlockWeights& block,
                                           const std::vector<Eigen::MatrixXf>& inputs,
                                           const std::vector<Eigen::MatrixXf>& targets, const AutoRoundOptions& options,
                                           Feedback* feedback = nullptr);

/// Fills out with block's weights fake-quantized at the learned rounding (the rest of block
/// copied; a linear without a grid is a view of block's own weight).
void applyRounding(const BlockWeights& block, const BlockRounding& r, const AutoRoundOptions& options,
                   BlockWeights& out);

} // namespace ql
