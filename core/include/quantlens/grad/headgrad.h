#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <vector>

namespace ql {

/// Gradients of the final norm's and the LM head's weights.
struct HeadGradients {
    Eigen::VectorXf norm; ///< hidden
    RowMatrix head;       ///< vocab × hidden; left empty when only the norm's gradient is wanted
};

/// The language-model loss and its gradient: final RMSNorm, LM head, and the mean cross-entropy
/// of the tokens each column predicts.
class HeadBackward {
public:
    /// x: the last block's output (hidden × T); targets: per column, the token it predicts, or
    /// -1 where no loss is taken. Returns the mean cross-entropy (nats) over the counted columns,
    /// writes dx = ∂loss/∂x and adds the parameter gradients to grads (null: none; an empty
    /// grads->head skips the LM head's). Errors name a target outside the vocabulary.
    Expected<double> lossAndGradient(const Eigen::VectorXf& norm, const ConstRowMap& head, float eps,
                                     const Eigen::MatrixXf& x, const std::vector<int32_t>& targets, Eigen::MatrixXf& dx,
                                     HeadGradients* grads);

private:
    Eigen::MatrixXf m_h, m_p;
};

} // namespace ql
