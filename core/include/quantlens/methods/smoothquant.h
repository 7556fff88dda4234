#pragma once

// SmoothQuant (Xiao et al. 2023; reference mit-han-lab/smoothquant smooth.py, smooth_lm for
// LLaMA): move activation outliers into the weights with a per-channel scale s that the
// RMSNorm before a site absorbs. For the two norm-fed sites of each block,
//   attn_in (read by q/k/v) and mlp_in (read by gate/up):
//   s_j = max(a_j^α / max(w_j, 1e-5)^(1-α), 1e-5)
// with a_j the site's per-channel activation absmax and w_j the max |W_:,j| over the linears
// reading the site; then γ ← γ / s and W_:,j ← W_:,j · s_j for each of those linears, so
// W·diag(s)·(diag(γ/s)·x̂) = W·diag(γ)·x̂: the function is unchanged, and the site's channel
// absmax becomes a_j / s_j. o_in and down_in are not smoothed (no norm precedes them; the
// reference's LLaMA path does not smooth them either).

#include "quantlens/analysis/analysis.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/quant/transform.h"

#include <Eigen/Core>

#include <map>
#include <string>
#include <vector>

namespace ql {

/// SmoothQuant settings.
struct SmoothQuantOptions {
    double alpha = 0.5; ///< migration strength in [0, 1]: 0 leaves activations, 1 moves all to weights
};

/// s = max(a^α / max(w, 1e-5)^(1-α), 1e-5), elementwise (a: activation absmax, w: weight column absmax).
Eigen::VectorXf smoothQuantScales(const Eigen::Ref<const Eigen::VectorXf>& actAbsmax,
                                  const Eigen::Ref<const Eigen::VectorXf>& weightAbsmax, double alpha);

/// Smooths attn_in and mlp_in of every block using sites (need "layers.<i>.attn_in" and
/// "layers.<i>.mlp_in" with absmax of size hidden); returns the scales applied, by site name.
Expected<std::map<std::string, Eigen::VectorXf>> smoothQuant(FloatWeights& weights, const std::vector<SiteStats>& sites,
                                                             const SmoothQuantOptions& options = {},
                                                             Feedback* feedback = nullptr);

/// SmoothQuant as a Transform (id "smoothquant", parameter alpha).
class SmoothQuantTransform final : public Transform {
public:
    std::string id() const override { return "smoothquant"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    bool needsStatistics() const override { return true; }
    Expected<void> apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const override;
};

} // namespace ql
