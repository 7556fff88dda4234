// AWQ's weight quantization for the searches and its clip search (awq.h; reference llm-awq
// auto_clip.py, auto_clip_layer).
#include "quantlens/methods/awq.h"

#include "quantlens/quant/formats.h"
#include "quantlens/quant/groupparams.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ql {

namespace {

// Columns per quantization group of spec for a weight with `cols` inputs (0 when unusable).
Expected<Eigen::Index> groupColumns(const FormatSpec& spec, Eigen::Index cols)
{
    switch (spec.granularity) {
    case Granularity::PerTensor:
        // A per-tensor range ties every row together; the per-row clip search cannot honour it.
        return makeError("awq: per-tensor weight quantization is not supported; use per channel or per group");
    case Granularity::PerChannel: return cols;
    case Granularity::PerGroup:
        if (spec.groupSize <= 0)
            return makeError("awq: group size must be positive, got " + std::to_string(spec.groupSize));
        return Eigen::Index(spec.groupSize);
    }
    return makeError("awq: unknown granularity");
}

} // namespace

Expected<RowMatrix> awqFakeQuantize(const Eigen::Ref<const RowMatrix>& w, const FormatSpec& spec)
{
    auto fmt = findFormat(spec.format);
    if (!fmt) return fmt.error();
    auto gsz = groupColumns(spec, w.cols());
    if (!gsz) return gsz.error();
    const WeightFormat& f = **fmt;
    const Eigen::Index gs = *gsz;
    RowMatrix out(w.rows(), w.cols());
    std::string failure;
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
        Eigen::VectorXf v;
        for (Eigen::Index g0 = 0; g0 < w.cols(); g0 += gs) {
            const Eigen::Index n = std::min(gs, w.cols() - g0);
            v = w.row(r).segment(g0, n).transpose();
            auto p = computeParams(f, v);
            if (!p) {
#pragma omp critical(ql_awq_fq_failure)
                if (failure.empty()) failure = "row " + std::to_string(r) + ": " + p.message();
                out.row(r).segment(g0, n).setZero();
                continue;
            }
            out.row(r).segment(g0, n) = fakeQuantize(f, *p, v).transpose();
        }
    }
    if (!failure.empty()) return makeError("awq: cannot quantize a weight: " + failure);
    return out;
}

Expected<AwqClipResult> awqClipLinear(RowMatrix& w, const Eigen::Ref<const Eigen::MatrixXf>& x, const AwqOptions& o)
{
    if (x.rows() != w.cols())
        return makeError("awq clip: inputs have " + std::to_string(x.rows()) + " features, the weight " +
                         std::to_string(w.cols()) + " columns");
    if (x.cols() == 0) return makeError("awq clip: no input tokens");
    if (!(o.maxShrink >= 0 && o.maxShrink < 1))
        return makeError("awq clip: max_shrink must be in [0, 1), got " + std::to_string(o.maxShrink));
    if (o.clipGrid < 1) return makeError("awq clip: clip_grid must be at least 1, got " + std::to_string(o.clipGrid));
    auto fmt = findFormat(o.weight.format);
    if (!fmt) return fmt.error();
    auto gsz = groupColumns(o.weight, w.cols());
    if (!gsz) return gsz.error();
    const WeightFormat& f = **fmt;
    const Eigen::Index gs = *gsz, tokens = x.cols();
    const Eigen::Index groups = (w.cols() + gs - 1) / gs;
    // The reference tries int(max_shrink · n_grid) shrink steps, starting with no shrink.
    const int candidates = std::max(1, int(o.maxShrink * o.clipGrid));

    // Token-major copies of each group's inputs: a group's partial outputs for all candidates are
    // then one (tokens × n)·(n × candidates) product.
    std::vector<Eigen::MatrixXf> xt(static_cast<size_t>(groups));
    for (Eigen::Index g = 0; g < groups; ++g) {
        const Eigen::Index g0 = g * gs, n = std::min(gs, w.cols() - g0);
        xt[size_t(g)] = x.middleRows(g0, n).transpose();
    }

    std::vector<double> before(size_t(w.rows()), 0.0), after(size_t(w.rows()), 0.0), minRatio(size_t(w.rows()), 1.0);
    std::vector<int64_t> clipped(size_t(w.rows()), 0);
    std::string failure;
#pragma omp parallel for schedule(dynamic, 4)
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
        Eigen::MatrixXf cand;
        Eigen::VectorXf wg, c;
        for (Eigen::Index g = 0; g < groups; ++g) {
            const Eigen::Index g0 = g * gs, n = std::min(gs, w.cols() - g0);
            wg = w.row(r).segment(g0, n).transpose();
            const float m = wg.cwiseAbs().maxCoeff();
            if (!(m > 0)) continue; // an all-zero group has nothing to clip
            // Column 0: the float weights (the target); 1 + i: candidate i quantized.
            cand.resize(n, candidates + 1);
            cand.col(0) = wg;
            std::vector<float> bound(static_cast<size_t>(candidates));
            bool ok = true;
            for (int i = 0; i < candidates; ++i) {
                bound[size_t(i)] = float(double(m) * (1.0 - double(i) / o.clipGrid));
                c = wg.cwiseMax(-bound[size_t(i)]).cwiseMin(bound[size_t(i)]);
                auto p = computeParams(f, c);
                if (!p) {
#pragma omp critical(ql_awq_clip_failure)
                    if (failure.empty()) failure = "row " + std::to_string(r) + ": " + p.message();
                    ok = false;
                    break;
                }
                cand.col(i + 1) = fakeQuantize(f, *p, c);
            }
            if (!ok) break;
            const Eigen::MatrixXf out = xt[size_t(g)] * cand;
            int best = 0;
            double bestErr = std::numeric_limits<double>::infinity(), err0 = 0;
            for (int i = 0; i < candidates; ++i) {
                const double e = double((out.col(i + 1) - out.col(0)).squaredNorm()) / double(tokens);
                if (i == 0) err0 = e;
                if (e < bestErr) {
                    bestErr = e;
                    best = i;
                }
            }
            before[size_t(r)] += err0;
            after[size_t(r)] += bestErr;
            if (best > 0) {
                const float b = bound[size_t(best)];
                w.row(r).segment(g0, n) = wg.cwiseMax(-b).cwiseMin(b).transpose();
                ++clipped[size_t(r)];
                minRatio[size_t(r)] = std::min(minRatio[size_t(r)], double(b) / double(m));
            }
        }
    }
    if (!failure.empty()) return makeError("awq clip: " + failure);
    AwqClipResult res;
    res.groups = int64_t(w.rows()) * groups;
    for (size_t r = 0; r < before.size(); ++r) {
        res.errorBefore += before[r];
        res.errorAfter += after[r];
        res.groupsClipped += clipped[r];
        res.minRatio = std::min(res.minRatio, minRatio[r]);
    }
    return res;
}

} // namespace ql
