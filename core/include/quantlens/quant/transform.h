#pragma once

// The transform interface of the plugin SDK: a method that rewrites a model's float weights
// without changing the function it computes (rotations, smoothing scales folded into norms),
// so that the quantizers that run afterwards see easier weights and activations.

#include "quantlens/analysis/analysis.h"
#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/base/params.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// What a transform may use besides the weights. Pointers are null when not available.
struct TransformContext {
    /// Activation statistics of the weights as they are now (before this transform), keyed by
    /// SiteStats::name ("layers.<i>.attn_in", "layers.<i>.mlp_in", ...). Statistics measured
    /// before an earlier transform describe other activations: recompute them in between.
    const std::vector<SiteStats>* sites = nullptr;
    Feedback* feedback = nullptr; ///< progress, messages and cancellation
    /// Calibration token windows, for transforms that run the model themselves (AWQ).
    const std::vector<std::vector<int32_t>>* windows = nullptr;
    int threads = 0; ///< OpenMP threads for the transform's kernels; 0 keeps the current setting
};

/// A function-preserving rewrite of a model's float weights (SmoothQuant, Hadamard rotation …).
class Transform {
public:
    virtual ~Transform() = default;
    /// Stable id used in recipes ("hadamard").
    virtual std::string id() const = 0;
    /// One line for lists and tooltips.
    virtual std::string description() const = 0;
    /// The parameters the transform accepts, with defaults and ranges.
    virtual std::vector<ParamSpec> parameters() const = 0;
    /// True when apply() needs TransformContext::sites.
    virtual bool needsStatistics() const { return false; }
    /// True when apply() needs TransformContext::windows (calibration token windows).
    virtual bool needsCalibration() const { return false; }
    /// Rewrites weights in place. Missing parameters take their defaults; errors say what is
    /// wrong (a parameter, missing statistics). On error the weights may be partly rewritten:
    /// apply to a copy when the original must survive. Never throws.
    virtual Expected<void> apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const = 0;
};

} // namespace ql
