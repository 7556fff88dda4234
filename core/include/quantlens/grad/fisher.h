#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/forward/site.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <array>
#include <cstdint>
#include <vector>

namespace ql {

/// The diagonal empirical Fisher of the language-model loss for every weight of every linear:
///   F = Σ_w (∂L_w/∂W)² / N,
/// where L_w is the summed next-token cross-entropy of calibration window w and N the number of
/// predicted tokens. For token gradients that do not correlate this is the per-token Fisher, so
/// ½·Σ F·ΔW² estimates the loss (and KL, in nats per token) a weight change ΔW adds.
///
/// One backward sweep per window: the forward keeps each block's input, and the backward runs
/// each block's forward again from it (recomputation), so memory is the blocks' inputs of a batch
/// of windows plus one block's tape, beside F itself (the size of the linear weights in fp32).
class DiagonalFisher {
public:
    /// Accumulates F over windows (each at least two tokens) on weights, batch windows at a time.
    static Expected<DiagonalFisher> compute(const ModelConfig& config, const WeightSource& weights,
                                            const std::vector<std::vector<int32_t>>& windows, int threads = 0,
                                            Feedback* feedback = nullptr);
    /// F of linear k of block layer, [out, in].
    const RowMatrix& of(int layer, LinearKind k) const { return m_f[size_t(layer)][size_t(k)]; }
    /// ½·Σ F·(quantized − weight)² of linear k of block layer.
    double sensitivity(int layer, LinearKind k, const Eigen::Ref<const RowMatrix>& weight,
                       const Eigen::Ref<const RowMatrix>& quantized) const;
    /// The diagonal Fisher of linear k's outputs: Σ_w Σ_t (∂L_w/∂y_t)² / N per output. Weighting
    /// each output's error on the calibration inputs by it (measureLayerOptions' output-Fisher
    /// measure) is BRECQ's Fisher-weighted reconstruction error with tokens and outputs taken
    /// apart; unlike the weight Fisher it sees the input correlations GPTQ exploits.
    const Eigen::VectorXf& outputsOf(int layer, LinearKind k) const { return m_out[size_t(layer)][size_t(k)]; }
    /// Predicted tokens F averages over.
    int64_t tokens() const { return m_tokens; }
    /// Mean cross-entropy of the windows (nats per predicted token), a by-product of the sweep.
    double meanLoss() const { return m_loss; }

private:
    std::vector<std::array<RowMatrix, kLinearCount>> m_f;
    std::vector<std::array<Eigen::VectorXf, kLinearCount>> m_out;
    int64_t m_tokens = 0;
    double m_loss = 0;
};

} // namespace ql
