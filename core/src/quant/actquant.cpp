#include "quantlens/quant/actquant.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// One (scale, zero) pair and the clamp range of its codes.
struct Grid {
    float scale = 0;
    float zero = 0;
    float qmin = 0, qmax = 0;
};

template <class Block>
Grid gridFor(const Block& x, const ActQuantSpec& spec)
{
    Grid g;
    if (spec.symmetric) {
        g.qmax = std::ldexp(1.0f, spec.bits - 1) - 1.0f;
        g.qmin = -g.qmax - 1.0f;
        g.scale = x.cwiseAbs().maxCoeff() / g.qmax;
    } else {
        g.qmin = 0;
        g.qmax = std::ldexp(1.0f, spec.bits) - 1.0f;
        const float lo = std::min(x.minCoeff(), 0.0f), hi = std::max(x.maxCoeff(), 0.0f);
        g.scale = (hi - lo) / g.qmax;
        if (g.scale > 0) g.zero = std::nearbyint(-lo / g.scale);
    }
    return g;
}

template <class In, class Out>
void applyGrid(const In& x, const Grid& g, Out&& out)
{
    if (!(g.scale > 0) || !std::isfinite(g.scale)) { // all zeros (or non-finite input): pass through
        out = x;
        return;
    }
    const float s = g.scale, z = g.zero, lo = g.qmin, hi = g.qmax;
    out = ((((x.array() / s).unaryExpr([](float v) { return std::nearbyint(v); }) + z).cwiseMax(lo).cwiseMin(hi) - z) *
           s)
              .matrix();
}

} // namespace

void fakeQuantizeActivations(const Eigen::Ref<const Eigen::MatrixXf>& x, const ActQuantSpec& spec, Eigen::MatrixXf& out)
{
    out.resize(x.rows(), x.cols());
    if (spec.bits <= 0 || spec.bits > 16 || x.size() == 0) {
        out = x;
        return;
    }
    if (!spec.perToken) {
        applyGrid(x, gridFor(x, spec), out);
        return;
    }
    const Eigen::Index n = x.cols();
#pragma omp parallel for schedule(static) if (x.size() > 65536)
    for (Eigen::Index t = 0; t < n; ++t) applyGrid(x.col(t), gridFor(x.col(t), spec), out.col(t));
}

} // namespace ql
