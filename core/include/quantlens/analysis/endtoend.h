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
/// keeping every block's input and the next-token log-probabilities; measuring "only layer L
/// replaced" then restarts from block L's cached input instead of from the embeddings.
class EndToEndSensitivity {
public:
    ~EndToEndSensitivity();
    EndToEndSensitivity(EndToEndSensitivity&&) noexcept;

    /// Runs the float model over the windows and keeps what the restarts need.
    static Expected<EndToEndSensitivity> prepare(const Model& model, const std::vector<std::vector<int32_t>>& windows,
                                                 int threads = 0, Feedback* feedback = nullptr);
    /// Mean over all held-out tokens of KL(P_float || P_replaced), nats, with linear `kind` of
    /// block `block` replaced by `weight` (same shape) and every other weight float.
    Expected<double> klWithLinear(int block, LinearKind kind, const RowMatrix& weight, Feedback* feedback = nullptr);
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
