#pragma once

// AWQ, activation-aware weight quantization (Lin et al. 2023; reference mit-han-lab/llm-awq,
// auto_scale.py and auto_clip.py), as a transform: it rewrites the float weights so that the
// round-to-nearest quantization that runs afterwards (a recipe rule with method rtn) loses less.
//
// Block by block, on the calibration windows (block inputs computed with the float weights as
// AWQ left the earlier blocks), for each scaling group
//   attn_in → q/k/v   folded into the input RMSNorm weight (γ ← γ / s)
//   o_in    → o       folded into v_proj's output rows (and bias), only when v_proj and o_proj
//                     have the same shape (kv heads == heads): with GQA one v row feeds several
//                     heads' o columns, so the scales could not differ per head. The reference
//                     skips it on the same shape test (llm-awq PR #67).
//   mlp_in  → gate/up folded into the post-attention RMSNorm weight
//   down_in → down    folded into up_proj's output rows (and bias); skipped when the block has
//                     an online rotation of down_proj's input (QuaRot), which a row scale of
//                     up_proj cannot pass through
// the scale search is: s_x = mean_t |x_c| over the group's calibration inputs; for α in
// {0, 1/grid, …, (grid-1)/grid}: s = max(s_x^α, 1e-4), s ← s / sqrt(max s · min s); quantize
// W·diag(s) of every linear of the group with the search format, divide the columns by s
// again, and measure the MSE (mean over all elements and tokens) of the module output against
// the float one. The module is the reference's module2inspect:
//   q/k/v:   the self-attention output (attn_out, after o_proj, float o_proj)
//   o:       o_proj's output
//   gate/up: the MLP output (down_proj(silu(gate)·up), float down_proj)
//   down:    down_proj's output
// The α with the lowest loss wins (the first on ties); all groups of a block are searched on
// the block's weights before any fold, then all are folded, as the reference does.
//
// Then the clip search (reference auto_clip_layer) for every linear but q_proj and k_proj
// (the reference skips them: their error is amplified by the softmax, a per-group output
// proxy does not see that): inputs are the linear's calibration inputs after the folds,
// sampled every max(1, N / clipTokens)-th token. For each output row and quantization group,
// with m = max|w| over the group, candidates m·(1 - i/clipGrid) for i in [0, maxShrink·clipGrid)
// clamp the group to [-m_i, m_i], quantize it with the search format and measure the mean
// over sampled tokens of (group partial output - float group partial output)²; the weights
// are clamped (in float) to the best range. Candidate 0 is no clipping, so the objective
// never increases. Quantization in both searches uses this project's round-to-nearest rules
// (quantparams.h), the ones the rtn rule afterwards applies, not the reference's.

#include "quantlens/expected.h"
#include "quantlens/feedback.h"
#include "quantlens/floatweights.h"
#include "quantlens/quantizedtensor.h"
#include "quantlens/transform.h"

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// AWQ settings.
struct AwqOptions {
    FormatSpec weight;      ///< format and grouping the searches quantize with (int4_asym, g128)
    int grid = 20;          ///< α grid size: α ∈ {0, 1/grid, …, (grid-1)/grid}
    bool clip = true;       ///< run the clip search after the scale folds
    double maxShrink = 0.5; ///< largest fraction the clip search shrinks a group's range by
    int clipGrid = 20;      ///< clip candidates are max|w|·(1 - i/clipGrid)
    int clipTokens = 512;   ///< tokens sampled for the clip search (the reference's n_sample_token)
    int threads = 0;        ///< OpenMP threads; 0 keeps the current setting
};

/// The scaling groups of a block, in the order they are searched.
enum class AwqGroup { AttnIn = 0, OIn, MlpIn, DownIn };
inline constexpr int kAwqGroupCount = 4;

/// Site name of a group ("attn_in", "o_in", "mlp_in", "down_in").
const char* awqGroupSite(AwqGroup g);

/// Result of one group's scale search.
struct AwqGroupResult {
    AwqGroup group = AwqGroup::AttnIn;
    bool applied = false;        ///< false when the group was skipped (see skipReason)
    std::string skipReason;      ///< why a group was not scaled (GQA v→o, online rotation)
    double alpha = 0;            ///< best α
    double lossPlain = 0;        ///< module-output MSE at α = 0 (plain round-to-nearest)
    double lossBest = 0;         ///< module-output MSE at the best α
    std::vector<double> losses;  ///< the loss of every α of the grid, in order
    Eigen::VectorXf scales;      ///< the folded scales s (inputs are divided by s)
};

/// Result of the clip search of one linear.
struct AwqClipResult {
    LinearKind linear = LinearKind::V;
    double errorBefore = 0;   ///< objective without clipping, summed over rows and groups
    double errorAfter = 0;    ///< objective at the chosen ranges (<= errorBefore)
    int64_t groupsClipped = 0; ///< (row, group) pairs whose range was shrunk
    int64_t groups = 0;        ///< (row, group) pairs searched
    double minRatio = 1;       ///< smallest chosen max'/max (>= 1 - maxShrink)
};

/// What AWQ did to one block.
struct AwqBlockReport {
    int layer = 0;
    std::vector<AwqGroupResult> groups; ///< one per AwqGroup, in enum order
    std::vector<AwqClipResult> clips;   ///< one per clipped linear (v, o, gate, up, down)
};

/// What AWQ did to the model.
struct AwqReport {
    std::vector<AwqBlockReport> blocks;
};

/// Per-channel mean |x| over tokens of features × tokens inputs (AWQ's s_x).
Eigen::VectorXf awqActivationScale(const std::vector<Eigen::MatrixXf>& inputs);

/// s = max(s_x^α, 1e-4) / sqrt(max s · min s): the candidate scales of one α.
Eigen::VectorXf awqScales(const Eigen::Ref<const Eigen::VectorXf>& sx, double alpha);

/// Round-to-nearest quantize-dequantize of w [out, in] with spec (per channel or per group of
/// contiguous columns; per tensor is rejected). The quantization both searches use.
Expected<RowMatrix> awqFakeQuantize(const Eigen::Ref<const RowMatrix>& w, const FormatSpec& spec);

/// The calibration inputs of one block, one matrix per window (features × tokens).
struct AwqBlockInputs {
    std::vector<Eigen::MatrixXf> input;  ///< block inputs (residual stream)
    std::vector<Eigen::MatrixXf> attnIn, oIn, mlpIn, downIn;
    std::vector<Eigen::MatrixXf> attnOut; ///< float self-attention output (qkv search target)
};

/// Runs block `layer` of w on the block inputs and records its sites.
Expected<AwqBlockInputs> awqCaptureBlock(const FloatWeights& w, int layer, std::vector<Eigen::MatrixXf> blockInputs,
                                         int threads = 0);

/// Searches the scales of one group of block `layer` (weights unchanged on return).
Expected<AwqGroupResult> awqSearchGroup(FloatWeights& w, int layer, AwqGroup group, const AwqBlockInputs& in,
                                        const AwqOptions& o);

/// Folds a searched group's scales into the weights (no-op when it was not applied).
void awqFoldGroup(FloatWeights& w, int layer, const AwqGroupResult& r);

/// Clip search of weight [out, in] on sampled inputs x (in × tokens); clamps w in place.
Expected<AwqClipResult> awqClipLinear(RowMatrix& w, const Eigen::Ref<const Eigen::MatrixXf>& x, const AwqOptions& o);

/// AWQ over every block of w on the calibration windows (see the top of this file).
Expected<AwqReport> awqTransform(FloatWeights& w, const std::vector<std::vector<int32_t>>& windows, const AwqOptions& o,
                                 Feedback* feedback = nullptr);

/// AWQ as a Transform (id "awq"): parameters bits, sym, group, alpha_grid, clip, max_shrink, clip_grid.
class AwqTransformMethod final : public Transform {
public:
    std::string id() const override { return "awq"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    bool needsCalibration() const override { return true; }
    Expected<void> apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const override;
};

} // namespace ql
