#include "quantlens/forward/blockops.h"

#include <algorithm>
#include <cmath>

namespace ql {

void rmsNorm(const Eigen::MatrixXf& x, const Eigen::VectorXf& w, float eps, Eigen::MatrixXf& out)
{
    out.resize(x.rows(), x.cols());
    const Eigen::Index n = x.cols();
#pragma omp parallel for schedule(static)
    for (Eigen::Index j = 0; j < n; ++j) {
        const float ms = x.col(j).squaredNorm() / static_cast<float>(x.rows());
        const float r = 1.0f / std::sqrt(ms + eps);
        out.col(j) = w.cwiseProduct(x.col(j) * r);
    }
}

void applyRope(Eigen::MatrixXf& m, int headDim, const Eigen::MatrixXf& cosT, const Eigen::MatrixXf& sinT, bool inverse)
{
    const int half = headDim / 2;
    const Eigen::Index heads = m.rows() / headDim;
    const Eigen::Index n = m.cols();
    const float sign = inverse ? -1.f : 1.f;
#pragma omp parallel for schedule(static)
    for (Eigen::Index t = 0; t < n; ++t) {
        float* col = m.col(t).data();
        const float* c = cosT.col(t).data();
        const float* s = sinT.col(t).data();
        for (Eigen::Index h = 0; h < heads; ++h) {
            float* a = col + h * headDim;
            float* b = a + half;
            for (int i = 0; i < half; ++i) {
                const float x1 = a[i], x2 = b[i], si = sign * s[i];
                a[i] = x1 * c[i] - x2 * si;
                b[i] = x2 * c[i] + x1 * si;
            }
        }
    }
}

void maskedSoftmax(float* col, Eigen::Index lo, Eigen::Index j, Eigen::Index keys, float scale)
{
    Eigen::Map<Eigen::ArrayXf> seg(col + lo, j - lo + 1); // vectorised over the visible keys
    seg *= scale;
    seg = (seg - seg.maxCoeff()).exp();
    seg *= 1.0f / seg.sum();
    std::fill(col, col + lo, 0.f);
    std::fill(col + j + 1, col + keys, 0.f);
}

void ropeTables(const ModelConfig& config, Eigen::Index n, Eigen::MatrixXf& cosT, Eigen::MatrixXf& sinT)
{
    const int half = config.headDim / 2;
    if (cosT.cols() >= n && cosT.rows() == half) return;
    const std::vector<float> invFreq = config.ropeInvFreq();
    cosT.resize(half, n);
    sinT.resize(half, n);
    for (Eigen::Index t = 0; t < n; ++t)
        for (int i = 0; i < half; ++i) {
            const float ang = static_cast<float>(t) * invFreq[size_t(i)];
            cosT(i, t) = static_cast<float>(std::cos(static_cast<double>(ang)));
            sinT(i, t) = static_cast<float>(std::sin(static_cast<double>(ang)));
        }
}

} // namespace ql
