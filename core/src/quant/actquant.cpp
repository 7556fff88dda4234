#include "quantlens/quant/actquant.h"

#include "quantlens/model/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

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

// ∂L/∂x of one grid's values (contiguous x, d = ∂L/∂x̂, out dx), as OmniQuant's quantizer
// differentiates it: round passes straight through, a clamped code passes nothing, the zero point
// is a constant (rounded without a straight-through estimator), and the scale carries its
// gradient to the extreme element(s) it was computed from.
void gridBackward(const float* x, const float* d, Eigen::Index n, const Grid& g, bool symmetric, float* dx)
{
    if (!(g.scale > 0) || !std::isfinite(g.scale)) { // passed through unchanged
        std::copy(d, d + n, dx);
        return;
    }
    const float s = g.scale, z = g.zero;
    double dScale = 0; // ∂L/∂s: x̂ = (q − z)·s, with ∂q/∂s = −x/s² inside the grid
    Eigen::Index argMax = 0, argMin = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
        const float v = std::nearbyint(x[i] / s) + z;
        const bool inside = v >= g.qmin && v <= g.qmax;
        const float q = std::clamp(v, g.qmin, g.qmax);
        dx[i] = inside ? d[i] : 0.f;
        dScale += double(d[i]) * ((q - z) - (inside ? x[i] / s : 0.f));
        if (symmetric ? std::abs(x[i]) > std::abs(x[argMax]) : x[i] > x[argMax]) argMax = i;
        if (x[i] < x[argMin]) argMin = i;
    }
    if (symmetric) { // s = max|x| / qmax
        dx[argMax] += float(dScale / g.qmax) * (x[argMax] < 0 ? -1.f : 1.f);
        return;
    }
    // s = (max(max x, 0) − min(min x, 0)) / qmax
    if (x[argMax] > 0) dx[argMax] += float(dScale / g.qmax);
    if (x[argMin] < 0) dx[argMin] -= float(dScale / g.qmax);
}

// llama.cpp's q8_0 rounding of len values (its AVX path): codes q = round-half-even(x·127/max|x|)
// into q; returns d = max|x|/127, not yet rounded to the fp16 the block stores.
float q8Codes(const float* x, Eigen::Index len, float* q)
{
    float amax = 0.f;
    for (Eigen::Index j = 0; j < len; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    for (Eigen::Index j = 0; j < len; ++j) q[j] = std::nearbyint(x[j] * id);
    return amax / 127.f;
}

// One column through a ggml input format (the header states each); a trailing partial block,
// which no ggml type has, is rounded as a shorter block.
void ggmlGridColumn(const float* x, Eigen::Index n, ActGrid grid, float* y)
{
    switch (grid) {
    case ActGrid::F16:
        for (Eigen::Index i = 0; i < n; ++i) y[i] = roundToHalf(x[i]);
        return;
    case ActGrid::BF16:
        for (Eigen::Index i = 0; i < n; ++i) {
            const uint16_t b = floatToBf16(x[i]);
            const uint32_t u = uint32_t(b) << 16;
            std::memcpy(&y[i], &u, 4);
        }
        return;
    case ActGrid::Q8_0:
        for (Eigen::Index b = 0; b < n; b += 32) {
            const Eigen::Index len = std::min<Eigen::Index>(32, n - b);
            const float d = roundToHalf(q8Codes(x + b, len, y + b));
            for (Eigen::Index j = 0; j < len; ++j) y[b + j] *= d;
        }
        return;
    case ActGrid::Q8_K:
        for (Eigen::Index b = 0; b < n; b += 256) {
            const Eigen::Index len = std::min<Eigen::Index>(256, n - b);
            float amax = 0.f, max = 0.f;
            for (Eigen::Index j = 0; j < len; ++j)
                if (std::fabs(x[b + j]) > amax) {
                    amax = std::fabs(x[b + j]);
                    max = x[b + j];
                }
            if (amax == 0.f) {
                std::fill(y + b, y + b + len, 0.f);
                continue;
            }
            const float iscale = -127.f / max, d = 1.f / iscale;
            for (Eigen::Index j = 0; j < len; ++j) y[b + j] = d * std::min(127.f, std::nearbyint(iscale * x[b + j]));
        }
        return;
    case ActGrid::Integer: break;
    }
}

} // namespace

void q8_1Correction(const Eigen::Ref<const Eigen::MatrixXf>& x, Eigen::MatrixXf& out)
{
    const Eigen::Index blocks = x.rows() / 32, n = x.cols();
    out.resize(blocks, n);
    for (Eigen::Index t = 0; t < n; ++t)
        for (Eigen::Index b = 0; b < blocks; ++b) {
            float q[32];
            const float d = q8Codes(x.col(t).data() + 32 * b, 32, q);
            const float sum = std::accumulate(q, q + 32, 0.f); // integers: exact
            out(b, t) = roundToHalf(d * sum) - roundToHalf(d) * sum;
        }
}

void fakeQuantizeActivations(const Eigen::Ref<const Eigen::MatrixXf>& x, const ActQuantSpec& spec, Eigen::MatrixXf& out)
{
    out.resize(x.rows(), x.cols());
    if (spec.grid != ActGrid::Integer) {
        const Eigen::Index n = x.cols();
        if (x.innerStride() == 1 && x.outerStride() == x.rows()) {
#pragma omp parallel for schedule(static) if (x.size() > 65536)
            for (Eigen::Index t = 0; t < n; ++t)
                ggmlGridColumn(x.data() + t * x.rows(), x.rows(), spec.grid, out.col(t).data());
        } else {
            const Eigen::MatrixXf dense = x;
            for (Eigen::Index t = 0; t < n; ++t)
                ggmlGridColumn(dense.col(t).data(), x.rows(), spec.grid, out.col(t).data());
        }
        return;
    }
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

void fakeQuantizeActivationsBackward(const Eigen::Ref<const Eigen::MatrixXf>& xIn, const ActQuantSpec& spec,
                                     const Eigen::Ref<const Eigen::MatrixXf>& dIn, Eigen::MatrixXf& dx)
{
    dx.resize(xIn.rows(), xIn.cols());
    if (spec.grid != ActGrid::Integer || spec.bits <= 0 || spec.bits > 16 || xIn.size() == 0) {
        dx = dIn;
        return;
    }
    const Eigen::MatrixXf x = xIn, d = dIn; // contiguous
    if (!spec.perToken) {
        gridBackward(x.data(), d.data(), x.size(), gridFor(x, spec), spec.symmetric, dx.data());
        return;
    }
    const Eigen::Index rows = x.rows();
#pragma omp parallel for schedule(static) if (x.size() > 65536)
    for (Eigen::Index t = 0; t < x.cols(); ++t)
        gridBackward(x.col(t).data(), d.col(t).data(), rows, gridFor(x.col(t), spec), spec.symmetric, dx.col(t).data());
}

} // namespace ql
