#include "quantlens/grad/roundquant.h"

#include "quantlens/grad/clipquant.h"

#include "quantlens/model/safetensors.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

constexpr float kRoundMinScale = 1e-5f; // AutoRound's q_scale_thresh

// One group's grid and the pieces its gradients need.
struct RoundGrid {
    float lo0, hi0; // the group's min (≤ 0) and max (≥ 0) before the learned factors
    float lo, scale, zero, qmax;
    bool scaleFree; // false where the scale sits at its floor (no gradient through it)
};

RoundGrid fitGrid(const float* x, Eigen::Index n, const RoundQuantSpec& spec, float m, float M)
{
    RoundGrid g{};
    g.lo0 = std::min(*std::min_element(x, x + n), 0.f);
    g.hi0 = std::max(*std::max_element(x, x + n), 0.f);
    g.qmax = float((1 << spec.bits) - 1);
    g.lo = g.lo0 * m;
    const float hi = g.hi0 * M;
    float s = (hi - g.lo) / g.qmax;
    if (spec.fp16Scale) s = roundToHalf(s);
    const float floor = spec.fp16Scale ? roundToHalf(kRoundMinScale) : kRoundMinScale;
    g.scaleFree = s >= floor;
    g.scale = std::max(s, floor);
    g.zero = std::nearbyint(-g.lo / g.scale);
    return g;
}

} // namespace

bool RoundingFakeQuant::fits(const RoundQuantSpec& spec, Eigen::Index in)
{
    return learnedGridFits(spec.bits, 8, spec.group, in);
}

Eigen::Index RoundingFakeQuant::groups(const RoundQuantSpec& spec, Eigen::Index in)
{
    return learnedGridGroups(spec.group, in);
}

void RoundingFakeQuant::forward(const ConstRowMap& w, const RoundQuantSpec& spec, const RowMatrix& v,
                                const Eigen::MatrixXf& minScale, const Eigen::MatrixXf& maxScale, RowMatrix& out)
{
    const Eigen::Index rows = w.rows(), in = w.cols(), ng = groups(spec, in), gs = spec.group > 0 ? spec.group : in;
    out.resize(rows, in);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index gi = 0; gi < ng; ++gi) {
            const Eigen::Index n = std::min(gs, in - gi * gs); // the last group may be partial
            const float* x = w.row(r).data() + gi * gs;
            const float* vv = v.row(r).data() + gi * gs;
            float* o = out.row(r).data() + gi * gs;
            const RoundGrid g = fitGrid(x, n, spec, minScale(r, gi), maxScale(r, gi));
            for (Eigen::Index i = 0; i < n; ++i) {
                const float q = std::clamp(std::nearbyint(x[i] / g.scale + vv[i]) + g.zero, 0.f, g.qmax);
                o[i] = (q - g.zero) * g.scale;
            }
        }
}

void RoundingFakeQuant::backward(const ConstRowMap& w, const RoundQuantSpec& spec, const RowMatrix& v,
                                 const Eigen::MatrixXf& minScale, const Eigen::MatrixXf& maxScale,
                                 const ConstRowMap& dOut, RowMatrix& dV, Eigen::MatrixXf& dMin, Eigen::MatrixXf& dMax)
{
    const Eigen::Index rows = w.rows(), in = w.cols(), ng = groups(spec, in), gs = spec.group > 0 ? spec.group : in;
    dV.resize(rows, in);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index gi = 0; gi < ng; ++gi) {
            const Eigen::Index n = std::min(gs, in - gi * gs); // the last group may be partial
            const float* x = w.row(r).data() + gi * gs;
            const float* vv = v.row(r).data() + gi * gs;
            const float* d = dOut.row(r).data() + gi * gs;
            float* dv = dV.row(r).data() + gi * gs;
            const RoundGrid g = fitGrid(x, n, spec, minScale(r, gi), maxScale(r, gi));
            // ŵ = s·(q − z), q = clamp(round(w/s + v) + z): inside the grid ∂ŵ/∂s = (q − z) − w/s,
            // ∂ŵ/∂v = s and z cancels; where q clamps, ∂ŵ/∂s = (q − z) − lo/s through z and
            // ∂ŵ/∂lo = 1 directly (z = round(−lo/s)).
            double dScale = 0, dLo = 0;
            for (Eigen::Index i = 0; i < n; ++i) {
                const float u = std::nearbyint(x[i] / g.scale + vv[i]) + g.zero;
                const bool inside = u >= 0.f && u <= g.qmax;
                const float q = std::clamp(u, 0.f, g.qmax);
                if (inside) {
                    dScale += double(d[i]) * ((q - g.zero) - x[i] / g.scale);
                    dv[i] = d[i] * g.scale;
                } else {
                    dScale += double(d[i]) * ((q - g.zero) - g.lo / g.scale);
                    dLo += double(d[i]);
                    dv[i] = 0.f;
                }
            }
            // s = (hi − lo)/qmax: ∂s/∂hi = 1/qmax, ∂s/∂lo = −1/qmax; lo = lo0·m, hi = hi0·M.
            const double dS = g.scaleFree ? dScale / g.qmax : 0.0;
            dMin(r, gi) += float((dLo - dS) * g.lo0);
            dMax(r, gi) += float(dS * g.hi0);
        }
}

Expected<QuantizedTensor> RoundingFakeQuant::encode(const ConstRowMap& w, const RoundQuantSpec& spec,
                                                    const RowMatrix& v, const Eigen::MatrixXf& minScale,
                                                    const Eigen::MatrixXf& maxScale, const FormatSpec& format)
{
    const Eigen::Index in = w.cols(), ng = groups(spec, in), gs = spec.group > 0 ? spec.group : in;
    auto t = learnedGridTensor("learned rounding", w.rows(), in, spec.bits, ng, format);
    if (!t) return t.error();
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index gi = 0; gi < ng; ++gi) {
            const Eigen::Index n = std::min(gs, in - gi * gs); // the last group may be partial
            const float* x = w.row(r).data() + gi * gs;
            const float* vv = v.row(r).data() + gi * gs;
            const RoundGrid g = fitGrid(x, n, spec, minScale(r, gi), maxScale(r, gi));
            QL_TRY(t->setParams(r, int(gi), GroupParams{g.scale, g.zero}));
            for (Eigen::Index i = 0; i < n; ++i) {
                const float q = std::clamp(std::nearbyint(x[i] / g.scale + vv[i]) + g.zero, 0.f, g.qmax);
                QL_TRY(t->setCode(r, gi * gs + i, uint32_t(q)));
            }
        }
    return t;
}

} // namespace ql
