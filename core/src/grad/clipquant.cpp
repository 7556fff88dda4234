#include "quantlens/grad/clipquant.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

constexpr float kMinScale = 1e-5f, kMaxScale = 1e4f; // OmniQuant's CLIPMIN and upper clamp

float sigmoid(float v)
{
    return 1.0f / (1.0f + std::exp(-v));
}

// One group's grid and how its scale depends on σ(γ) and σ(β).
struct Grid {
    float scale, zero, qmax;
    float dsDa, dsDb;            // ∂s/∂σ(γ) and ∂s/∂σ(β); zero where the scale is clamped
    float dsDmax, dsDmin;        // ∂s/∂max and ∂s/∂min of the group; zero where the scale is clamped
    Eigen::Index argMax, argMin; // where the extrema are (-1: the padding's 0)
};

// A padded group is the row's partial last group, which the reference fills up with zeros.
Grid fitGrid(const float* x, Eigen::Index n, bool padded, const ClipQuantSpec& spec, float a, float b)
{
    Grid g{};
    g.argMax = std::max_element(x, x + n) - x;
    g.argMin = std::min_element(x, x + n) - x;
    float mx = x[g.argMax], mn = x[g.argMin];
    if (padded && mx < 0.f) {
        mx = 0.f;
        g.argMax = -1;
    }
    if (padded && mn > 0.f) {
        mn = 0.f;
        g.argMin = -1;
    }
    const float hi = a * mx, lo = b * mn;
    g.qmax = float((1 << spec.bits) - 1);
    float raw;
    if (spec.symmetric) {
        const float half = float((1 << (spec.bits - 1)) - 1);
        const bool top = std::abs(hi) >= std::abs(lo);
        raw = (top ? std::abs(hi) : std::abs(lo)) / half;
        g.dsDa = top ? std::abs(mx) / half : 0.f;
        g.dsDb = top ? 0.f : std::abs(mn) / half;
        g.dsDmax = top ? a * (mx < 0.f ? -1.f : 1.f) / half : 0.f;
        g.dsDmin = top ? 0.f : b * (mn < 0.f ? -1.f : 1.f) / half;
        g.zero = half;
    } else {
        raw = (hi - lo) / g.qmax;
        g.dsDa = mx / g.qmax;
        g.dsDb = -mn / g.qmax;
        g.dsDmax = a / g.qmax;
        g.dsDmin = -b / g.qmax;
    }
    g.scale = std::clamp(raw, kMinScale, kMaxScale);
    if (g.scale != raw) g.dsDa = g.dsDb = g.dsDmax = g.dsDmin = 0.f;
    if (!spec.symmetric) g.zero = std::nearbyint(std::clamp(-lo / g.scale, -1e4f, 1e4f));
    return g;
}

} // namespace

bool ClippedFakeQuant::fits(const ClipQuantSpec& spec, Eigen::Index in)
{
    return learnedGridFits(spec.bits, 16, spec.group, in);
}

Eigen::Index ClippedFakeQuant::groups(const ClipQuantSpec& spec, Eigen::Index in)
{
    return learnedGridGroups(spec.group, in);
}

void ClippedFakeQuant::forward(const ConstRowMap& w, const ClipQuantSpec& spec, const Eigen::MatrixXf& gamma,
                               const Eigen::MatrixXf& beta, RowMatrix& out)
{
    const Eigen::Index rows = w.rows(), in = w.cols(), ng = groups(spec, in), gs = spec.group > 0 ? spec.group : in;
    out.resize(rows, in);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index gi = 0; gi < ng; ++gi) {
            const Eigen::Index n = std::min(gs, in - gi * gs); // the last group may be partial
            const float* x = w.row(r).data() + gi * gs;
            float* o = out.row(r).data() + gi * gs;
            const Grid g = fitGrid(x, n, n < gs, spec, sigmoid(gamma(r, gi)), sigmoid(beta(r, gi)));
            for (Eigen::Index i = 0; i < n; ++i) {
                const float q = std::clamp(std::nearbyint(x[i] / g.scale) + g.zero, 0.f, g.qmax);
                o[i] = (q - g.zero) * g.scale;
            }
        }
}

Expected<QuantizedTensor> learnedGridTensor(const std::string& method, Eigen::Index rows, Eigen::Index cols, int bits,
                                            Eigen::Index groups, const FormatSpec& format)
{
    auto t = QuantizedTensor::create(rows, cols, format);
    if (!t) return t.error();
    if (t->format().kind != FormatKind::IntAsym || t->format().bits != bits || t->groups() != groups)
        return makeError(method + ": format " + format.format + " with " + std::to_string(t->groups()) +
                         " groups per row cannot hold an asymmetric " + std::to_string(bits) + "-bit grid of " +
                         std::to_string(groups) + " groups");
    return t;
}

Expected<QuantizedTensor> ClippedFakeQuant::encode(const ConstRowMap& w, const ClipQuantSpec& spec,
                                                   const Eigen::MatrixXf& gamma, const Eigen::MatrixXf& beta,
                                                   const FormatSpec& format)
{
    if (spec.symmetric) return makeError("learned clipping: symmetric grids have no integer format here");
    const Eigen::Index in = w.cols(), ng = groups(spec, in), gs = spec.group > 0 ? spec.group : in;
    auto t = learnedGridTensor("learned clipping", w.rows(), in, spec.bits, ng, format);
    if (!t) return t.error();
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index gi = 0; gi < ng; ++gi) {
            const Eigen::Index n = std::min(gs, in - gi * gs); // the last group may be partial
            const float* x = w.row(r).data() + gi * gs;
            const Grid g = fitGrid(x, n, n < gs, spec, sigmoid(gamma(r, gi)), sigmoid(beta(r, gi)));
            QL_TRY(t->setParams(r, int(gi), GroupParams{g.scale, g.zero}));
            for (Eigen::Index i = 0; i < n; ++i) {
                const float q = std::clamp(std::nearbyint(x[i] / g.scale) + g.zero, 0.f, g.qmax);
                QL_TRY(t->setCode(r, gi * gs + i, uint32_t(q)));
            }
        }
    return t;
}

void ClippedFakeQuant::backward(const ConstRowMap& w, const ClipQuantSpec& spec, const Eigen::MatrixXf& gamma,
                                const Eigen::MatrixXf& beta, const ConstRowMap& dOut, Eigen::MatrixXf& dGamma,
                                Eigen::MatrixXf& dBeta, RowMatrix* dw, bool throughRange)
{
    const Eigen::Index rows = w.rows(), in = w.cols(), ng = groups(spec, in), gs = spec.group > 0 ? spec.group : in;
    if (dw) dw->resize(rows, in);
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index gi = 0; gi < ng; ++gi) {
            const Eigen::Index n = std::min(gs, in - gi * gs); // the last group may be partial
            const float* x = w.row(r).data() + gi * gs;
            const float* d = dOut.row(r).data() + gi * gs;
            const float a = sigmoid(gamma(r, gi)), b = sigmoid(beta(r, gi));
            const Grid g = fitGrid(x, n, n < gs, spec, a, b);
            // ŵ = (q − z)·s: ∂ŵ/∂s = (q − z) − w/s inside the grid (round passes straight
            // through), q − z where the code clamps (torch's clamp passes at the bounds).
            double dScale = 0;
            for (Eigen::Index i = 0; i < n; ++i) {
                const float v = std::nearbyint(x[i] / g.scale) + g.zero;
                const bool inside = v >= 0.f && v <= g.qmax;
                const float q = std::clamp(v, 0.f, g.qmax);
                dScale += double(d[i]) * ((q - g.zero) - (inside ? x[i] / g.scale : 0.f));
                if (dw) (*dw)(r, gi * gs + i) = inside ? d[i] : 0.f;
            }
            if (dw && throughRange) { // the scale's dependence on the group's extrema
                float* dRow = dw->row(r).data() + gi * gs;
                if (g.argMax >= 0) dRow[g.argMax] += float(dScale * g.dsDmax);
                if (g.argMin >= 0) dRow[g.argMin] += float(dScale * g.dsDmin);
            }
            dGamma(r, gi) += float(dScale * g.dsDa * a * (1.0f - a));
            dBeta(r, gi) += float(dScale * g.dsDb * b * (1.0f - b));
        }
}

} // namespace ql
