#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/model.h"

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <vector>

namespace ql {

/// End-to-end sensitivity of single layers: the float model is run once over held-out windows,
/// keeping the next-token log-probabilities, and the context (the float model itself, or a
/// quantized plan) keeping every block's input; measuring "layer L replaced in the context" then
/// restarts from block L's cached input instead of from the embeddings.
class EndToEndSensitivity {
public:
    ~EndToEndSensitivity();
    EndToEndSensitivity(EndToEndSensitivity&&) noexcept;

    /// Runs the float model over the windows and keeps what the restarts need. With a context
    /// (weights of the same model, e.g. a quantized plan's, outliving this object), every other
    /// layer has the context's weights while one is replaced, exllamav2-style: a layer's measure
    /// then includes how its error compounds with the errors of the plan around it.
    static Expected<EndToEndSensitivity> prepare(const Model& model, const std::vector<std::vector<int32_t>>& windows,
                                                 int threads = 0, Feedback* feedback = nullptr,
                                                 const WeightSource* context = nullptr);
    /// Mean over all held-out tokens of KL(P_float || P_replaced), nats, with linear `kind` of
    /// block `block` replaced by `weight` (same shape) and every other weight the context's.
    Expected<double> klWithLinear(int block, LinearKind kind, const RowMatrix& weight, Feedback* feedback = nullptr);
    /// KL(P_float || P_context) over the same tokens: 0 without a context.
    double contextKl() const;
    /// Number of tokens each measure averages over.
    int64_t tokens() const;

private:
    struct Impl;
    explicit EndToEndSensitivity(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

/// Spearman rank correlation of two equally long series (ties get their average rank);
/// NaN when fewer than two values or either series is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

} // namespace ql
