#include "quantlens/grad/headgrad.h"

#include "quantlens/forward/blockops.h"
#include "quantlens/grad/blockgrad.h"

#include <cmath>

namespace ql {

Expected<double> HeadBackward::lossAndGradient(const Eigen::VectorXf& norm, const ConstRowMap& head, float eps,
                                               const Eigen::MatrixXf& x, const std::vector<int32_t>& targets,
                                               Eigen::MatrixXf& dx, HeadGradients* g)
{
    const Eigen::Index n = x.cols(), vocab = head.rows();
    if (static_cast<Eigen::Index>(targets.size()) != n)
        return makeError("loss: " + std::to_string(targets.size()) + " targets for " + std::to_string(n) + " tokens");
    if (head.cols() != x.rows() || norm.size() != x.rows())
        return makeError("loss: the head is " + std::to_string(head.rows()) + "×" + std::to_string(head.cols()) +
                         ", the hidden state has " + std::to_string(x.rows()) + " rows");
    int counted = 0;
    for (Eigen::Index j = 0; j < n; ++j) {
        const int32_t t = targets[size_t(j)];
        if (t >= vocab || t < -1)
            return makeError("loss: target " + std::to_string(t) + " at position " + std::to_string(j) +
                             " is outside the vocabulary of " + std::to_string(vocab));
        counted += t >= 0;
    }
    dx = Eigen::MatrixXf::Zero(x.rows(), n);
    m_p = Eigen::MatrixXf::Zero(vocab, n);
    if (counted == 0) return 0.0;
    rmsNorm(x, norm, eps, m_h);
    // Logits of the counted columns only; softmax and the gradient (p − onehot)/counted there.
    m_p.noalias() = head * m_h;
    double loss = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss)
    for (Eigen::Index j = 0; j < n; ++j) {
        const int32_t t = targets[size_t(j)];
        auto col = m_p.col(j).array();
        if (t < 0) {
            col.setZero();
            continue;
        }
        const float mx = col.maxCoeff();
        const double shifted = double(col(t)) - mx; // log-softmax from the logit, not exp's underflow
        col = (col - mx).exp();
        const double sum = col.template cast<double>().sum();
        loss += std::log(sum) - shifted;
        col *= float(1.0 / sum);
    }
    Eigen::MatrixXf dlogits = m_p;
    for (Eigen::Index j = 0; j < n; ++j)
        if (targets[size_t(j)] >= 0) dlogits(targets[size_t(j)], j) -= 1.0f;
    dlogits *= 1.0f / float(counted);
    const Eigen::MatrixXf dh = head.transpose() * dlogits;
    if (g && g->head.size()) g->head.noalias() += dlogits * m_h.transpose();
    rmsNormBackward(x, inverseRms(x, eps), norm, dh, dx, g ? &g->norm : nullptr);
    return loss / counted;
}

} // namespace ql
