#include "quantlens/methods/gptq.h"

#include "methods/gptqengine.h"

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace ql {

namespace detail {

namespace {

constexpr int kTile = 64; // square tiles for the transposing copy: both sides stay in cache

// L⁻¹ in place for the lower triangle of l (the strict upper part is neither read nor set):
// [A 0; B C]⁻¹ = [A⁻¹ 0; -C⁻¹ B A⁻¹ C⁻¹]. About n³/3 flops in matrix products, where a
// triangular solve against the identity costs n³ and runs on one core.
void invertLowerInPlace(Eigen::Ref<Eigen::MatrixXd> l)
{
    const Eigen::Index n = l.rows();
    if (n <= 96) {
        Eigen::MatrixXd inv = Eigen::MatrixXd::Identity(n, n);
        l.triangularView<Eigen::Lower>().solveInPlace(inv);
        l.triangularView<Eigen::Lower>() = inv;
        return;
    }
    const Eigen::Index k = n / 2;
    invertLowerInPlace(l.topLeftCorner(k, k));
    invertLowerInPlace(l.bottomRightCorner(n - k, n - k));
    const Eigen::MatrixXd ba = l.bottomLeftCorner(n - k, k) * l.topLeftCorner(k, k).triangularView<Eigen::Lower>();
    l.bottomLeftCorner(n - k, k).noalias() = -(l.bottomRightCorner(n - k, n - k).triangularView<Eigen::Lower>() * ba);
}

} // namespace

Expected<PreparedHessian> prepareHessian(const Eigen::MatrixXd& h, Eigen::Index cols, double damp, bool actOrder)
{
    if (h.rows() != cols || h.cols() != cols)
        return makeError("Hessian is " + std::to_string(h.rows()) + " x " + std::to_string(h.cols()) + "; expected " +
                         std::to_string(cols) + " x " + std::to_string(cols) +
                         " (one row and column per input channel)");
    for (Eigen::Index j = 0; j < cols; ++j)
        for (Eigen::Index i = j; i < cols; ++i)
            if (!std::isfinite(h(i, j)))
                return makeError("Hessian element (" + std::to_string(i) + ", " + std::to_string(j) + ") is " +
                                 std::to_string(h(i, j)) + "; expected finite values");
    if (!(damp >= 0) || !std::isfinite(damp))
        return makeError("dampening " + std::to_string(damp) + "; expected a finite fraction >= 0 (0.01 is usual)");

    const int n = int(cols);
    PreparedHessian out;
    Eigen::VectorXd diag = h.diagonal();
    out.dead.assign(size_t(n), 0);
    for (int j = 0; j < n; ++j)
        if (diag[j] == 0) { // a channel that never saw input: any weight there is free
            out.dead[size_t(j)] = 1;
            diag[j] = 1;
            ++out.deadCount;
        }
    out.perm.resize(size_t(n));
    std::iota(out.perm.begin(), out.perm.end(), 0);
    if (actOrder) // stable, so equal diagonals keep their order on every platform
        std::stable_sort(out.perm.begin(), out.perm.end(), [&](int a, int b) { return diag[a] > diag[b]; });
    out.lambda = damp * diag.mean();

    // We need U upper with (H + λI)⁻¹ = Uᵀ U. The reference factors H, inverts and factors
    // again; with J the order reversal, J H J = L Lᵀ gives H = V Vᵀ for the upper V = J L J,
    // so U = V⁻¹ = J L⁻¹ J: one factorisation and one triangular inversion instead of three
    // dense steps; the result is the same unique factor with a positive diagonal.
    // The matrix is built directly in reversed processing order from H's lower triangle.
    Eigen::MatrixXd r(n, n);
    for (int b0 = 0; b0 < n; b0 += kTile)
        for (int a0 = b0; a0 < n; a0 += kTile)
            for (int b = b0; b < std::min(b0 + kTile, n); ++b) {
                const int j = out.perm[size_t(n - 1 - b)];
                for (int a = std::max(a0, b); a < std::min(a0 + kTile, n); ++a) {
                    const int i = out.perm[size_t(n - 1 - a)];
                    r(a, b) = i == j ? diag[i] + out.lambda : h(std::max(i, j), std::min(i, j));
                }
            }
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>, Eigen::Lower> llt(r);
    const std::string advice = "; increase the dampening (now " + std::to_string(damp) +
                               "), e.g. to 0.1, or calibrate on more tokens";
    if (llt.info() != Eigen::Success)
        return makeError("the dampened Hessian is not positive definite (Cholesky factorisation failed)" + advice);
    invertLowerInPlace(r); // r's lower triangle now holds L⁻¹
    for (int b = 0; b < n; ++b)
        if (!(r(b, b) > 0) || !r.col(b).tail(n - b).allFinite())
            return makeError("the inverse of the dampened Hessian is not finite (column " + std::to_string(n - 1 - b) +
                             ")" + advice);
    out.reversedInverse = std::move(r);
    return out;
}

Expected<GroupParams> groupParams(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> values, bool mseClip)
{
    auto base = computeParams(f, values);
    if (!base || !mseClip) return base;
    // quant.py's search: shrink factors 1 - i/grid for i < maxshrink·grid (grid 100, maxshrink
    // 0.8), error Σ |Q(x) - x|^2.4, first strictly better factor wins.
    constexpr int kGrid = 100, kSteps = 80;
    constexpr double kNorm = 2.4;
    double best = std::numeric_limits<double>::infinity();
    GroupParams bestParams = *base;
    for (int i = 0; i < kSteps; ++i) {
        auto p = computeParams(f, values, float(1.0 - double(i) / kGrid));
        if (!p) return p.error();
        double err = 0;
        for (Eigen::Index k = 0; k < values.size(); ++k) {
            const double d = std::abs(double(dequantizeCode(f, *p, quantizeValue(f, *p, values[k]))) -
                                      double(values[k]));
            if (d > 0) err += std::pow(d, kNorm);
        }
        if (err < best) {
            best = err;
            bestParams = *p;
        }
    }
    return bestParams;
}

} // namespace detail

namespace {

using detail::RowMat;

template <class S>
Expected<GptqResult> runGptq(Eigen::Ref<const RowMatrix> w, const detail::PreparedHessian& ph, const FormatSpec& spec,
                             const GptqOptions& opt, QuantizedTensor tensor)
{
    const WeightFormat& f = tensor.format();
    const Eigen::Index rows = w.rows(), cols = w.cols();
    const bool perGroup = spec.granularity == Granularity::PerGroup;
    const bool dynamic = perGroup && !opt.staticGroups;
    const Eigen::Index g = perGroup ? spec.groupSize : cols;
    const int groups = tensor.groups();
    const std::vector<int>& perm = ph.perm;

    // The weight with dead columns zeroed: original order for fixed parameters, processing
    // order for the loop.
    RowMatrix w0 = w;
    for (Eigen::Index j = 0; j < cols; ++j)
        if (ph.dead[size_t(j)]) w0.col(j).setZero();
    RowMat<S> wp(rows, cols);
    for (Eigen::Index p = 0; p < cols; ++p) wp.col(p) = w0.col(perm[size_t(p)]).template cast<S>();

    const GroupParams init = defaultParams(f);
    Eigen::MatrixXf scales = Eigen::MatrixXf::Constant(rows, groups, init.scale);
    Eigen::MatrixXf zeros = Eigen::MatrixXf::Constant(rows, groups, init.zero);
    std::string failure;
    auto fail = [&](Eigen::Index r, const std::string& what) {
#pragma omp critical(ql_gptq_failure)
        if (failure.empty()) failure = "row " + std::to_string(r) + ": " + what;
    };

    if (spec.granularity == Granularity::PerTensor) {
        const Eigen::VectorXf all = w0.reshaped();
        auto p = detail::groupParams(f, all, opt.mseClip);
        if (!p) return p.error();
        scales.setConstant(p->scale);
        zeros.setConstant(p->zero);
    } else if (!dynamic) { // per channel, or static groups over the original column order
#pragma omp parallel for schedule(dynamic, 8) if (rows * cols * (opt.mseClip ? 80 : 1) >= detail::kParallelWork)
        for (Eigen::Index r = 0; r < rows; ++r)
            for (int k = 0; k < groups; ++k) {
                const Eigen::Index c0 = k * g, len = std::min(g, cols - c0);
                auto p = detail::groupParams(f, w0.row(r).segment(c0, len).transpose(), opt.mseClip);
                if (!p) {
                    fail(r, p.message());
                    continue;
                }
                scales(r, k) = p->scale;
                zeros(r, k) = p->zero;
            }
        if (!failure.empty()) return makeError(failure);
    }

    // Group of each processing position: by position when groups form as the loop goes
    // (GPTQ's g_idx under act order), by original column for static groups.
    std::vector<int> posGroup(size_t(cols), 0);
    if (perGroup)
        for (Eigen::Index p = 0; p < cols; ++p) posGroup[size_t(p)] = int((dynamic ? p : perm[size_t(p)]) / g);

    std::vector<uint8_t> codes(size_t(rows * cols), 0);
    auto step = [&](Eigen::Index r, Eigen::Index p, Eigen::Index i, const detail::BlockView<S>& view) -> S {
        const int k = posGroup[size_t(p)];
        if (dynamic && p % g == 0) {
            const Eigen::Index len = std::min(g, cols - p);
            Eigen::VectorXf values(len);
            for (Eigen::Index c = 0; c < len; ++c)
                values[c] = float(opt.blockInvariantGroups ? view.current(r, p + c, i) : view.atBlockStart(r, p + c));
            auto prm = detail::groupParams(f, values, opt.mseClip);
            if (prm) {
                scales(r, k) = prm->scale;
                zeros(r, k) = prm->zero;
            } else {
                fail(r, "group " + std::to_string(k) + ": " + prm.message());
            }
        }
        const GroupParams prm{scales(r, k), zeros(r, k)};
        const uint32_t code = quantizeValue(f, prm, float(view.w(r, p)));
        codes[size_t(r * cols + p)] = uint8_t(code);
        return S(dequantizeCode(f, prm, code));
    };
    RowMat<S> q;
    std::vector<double> rowLoss;
    const RowMat<S> u = ph.factor<S>();
    detail::gptqLoop<S>(
        wp, u, opt.blockSize, [](Eigen::Index, Eigen::Index) {}, step, q, rowLoss);
    if (!failure.empty()) return makeError(failure + "; the Hessian may be ill-conditioned, increase the dampening");
    const double loss = std::accumulate(rowLoss.begin(), rowLoss.end(), 0.0);
    if (!std::isfinite(loss) || !q.allFinite())
        return makeError(
            "GPTQ produced non-finite values; the Hessian is ill-conditioned, increase the dampening (now " +
            std::to_string(opt.damp) + ")");

    const int paramRows = spec.granularity == Granularity::PerTensor ? 1 : int(rows);
    for (int r = 0; r < paramRows; ++r)
        for (int k = 0; k < groups; ++k) QL_TRY(tensor.setParams(r, k, GroupParams{scales(r, k), zeros(r, k)}));
    if (dynamic && opt.actOrder) {
        std::vector<int32_t> gIdx(static_cast<size_t>(cols));
        for (Eigen::Index p = 0; p < cols; ++p) gIdx[size_t(perm[size_t(p)])] = int32_t(p / g);
        QL_TRY(tensor.setGroupIndex(std::move(gIdx)));
    }
    RowMatrix deq(rows, cols);
    bool codesOk = true;
    // Rows never share a packed word, so rows may be stored in parallel.
#pragma omp parallel for schedule(static) reduction(&& : codesOk) if (rows * cols >= detail::kParallelWork / 4)
    for (Eigen::Index r = 0; r < rows; ++r)
        for (Eigen::Index p = 0; p < cols; ++p) {
            const int j = perm[size_t(p)];
            codesOk = tensor.setCode(r, j, codes[size_t(r * cols + p)]).ok() && codesOk;
            deq(r, j) = float(q(r, p));
        }
    if (!codesOk) return makeError("internal error: GPTQ produced a code the format does not have");
    return GptqResult{std::move(tensor), std::move(deq), loss, ph.deadCount};
}

} // namespace

Expected<GptqResult> gptqQuantize(Eigen::Ref<const RowMatrix> w, const Eigen::MatrixXd& hessian, const FormatSpec& spec,
                                  const GptqOptions& opt)
{
    auto tensor = QuantizedTensor::create(w.rows(), w.cols(), spec);
    if (!tensor) return tensor.error();
    if (opt.blockSize < 1)
        return makeError("GPTQ block size " + std::to_string(opt.blockSize) +
                         "; expected at least 1 column (128 is usual)");
    const FormatKind kind = tensor->format().kind;
    if (opt.mseClip && (kind == FormatKind::Binary || kind == FormatKind::Ternary))
        return makeError("MSE clip search needs a format with a range to clip; " + spec.format + " has none");
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index c = 0; c < w.cols(); ++c)
            if (!std::isfinite(w(r, c)))
                return makeError("weight element (" + std::to_string(r) + ", " + std::to_string(c) + ") is " +
                                 std::to_string(w(r, c)) + "; expected finite weights");
    auto ph = detail::prepareHessian(hessian, w.cols(), opt.damp, opt.actOrder);
    if (!ph) return ph.error();
    if (opt.doublePrecision) return runGptq<double>(w, *ph, spec, opt, std::move(*tensor));
    return runGptq<float>(w, *ph, spec, opt, std::move(*tensor));
}

Expected<double> withAutoDamping(double damp, bool automatic, const std::function<Expected<void>(double)>& attempt)
{
    for (;;) {
        auto r = attempt(damp);
        if (r) return damp;
        // Only conditioning failures are retried; their messages all advise more dampening.
        const bool conditioning = r.message().find("increase the dampening") != std::string::npos;
        if (!automatic || !conditioning || damp >= 100) return r.error();
        damp = damp > 0 ? damp * 10 : 0.01;
    }
}

} // namespace ql
