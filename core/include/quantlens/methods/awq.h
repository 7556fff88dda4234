#pragma once

// AWQ as a transform (Lin et al. 2023; reference mit-han-lab/llm-awq); the scale and clip searches
// step by step: docs/methods.md, "AWQ".

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/quant/quantizedtensor.h"
#include "quantlens/quant/transform.h"

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
    bool applied = false;       ///< false when the group was skipped (see skipReason)
    std::string skipReason;     ///< why a group was not scaled (GQA v→o, online rotation)
    double alpha = 0;           ///< best α
    double lossPlain = 0;       ///< module-output MSE at α = 0 (plain round-to-nearest)
    double lossBest = 0;        ///< module-output MSE at the best α
    std::vector<double> losses; ///< the loss of every α of the grid, in order
    Eigen::VectorXf scales;     ///< the folded scales s (inputs are divided by s)
};

/// Result of the clip search of one linear.
struct AwqClipResult {
    LinearKind linear = LinearKind::V;
    double errorBefore = 0;    ///< objective without clipping, summed over rows and groups
    double errorAfter = 0;     ///< objective at the chosen ranges (<= errorBefore)
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
    std::vector<Eigen::MatrixXf> input; ///< block inputs (residual stream)
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
Expected<AwqReport> applyAwq(FloatWeights& w, const std::vector<std::vector<int32_t>>& windows, const AwqOptions& o,
                             Feedback* feedback = nullptr);

/// AWQ as a Transform (id "awq"): parameters bits, sym, group, alpha_grid, clip, max_shrink, clip_grid.
class AwqTransform final : public Transform {
public:
    std::string id() const override { return "awq"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    bool needsCalibration() const override { return true; }
    Expected<void> apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const override;
};

} // namespace ql
