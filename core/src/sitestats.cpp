#include "quantlens/statscollector.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// numpy.percentile's default ("linear"): value at rank q·(n-1), interpolated. The column is
// partially reordered; ranks are taken in increasing order so each selection shrinks the range.
void percentiles(float* v, Eigen::Index n, const double* qs, int nq, float* out)
{
    Eigen::Index from = 0;
    for (int i = 0; i < nq; ++i) {
        const double pos = qs[i] * double(n - 1);
        const Eigen::Index k = static_cast<Eigen::Index>(std::floor(pos));
        const double frac = pos - double(k);
        std::nth_element(v + from, v + k, v + n);
        float next = v[k];
        if (frac > 0 && k + 1 < n) next = *std::min_element(v + k + 1, v + n);
        out[i] = static_cast<float>(v[k] + frac * (double(next) - double(v[k])));
        from = k;
    }
}

} // namespace

SiteStats siteStatsFromValues(const std::string& name, int layer, const Eigen::MatrixXf& x, const StatsOptions& opt)
{
    // x: tokens × channels, column-major, so each channel's values are contiguous.
    SiteStats s;
    s.name = name;
    s.layer = layer;
    s.outlierThreshold = opt.outlierThreshold;
    const Eigen::Index n = x.rows(), c = x.cols();
    s.nTokens = n;
    for (Eigen::VectorXf* v : {&s.absmax, &s.mean, &s.var, &s.kurtosis, &s.min, &s.max, &s.p01, &s.p25, &s.p75, &s.p99})
        v->resize(c);
    Eigen::VectorXd m2(c), sum(c);
    static constexpr double qs[4] = {0.01, 0.25, 0.75, 0.99};
#pragma omp parallel
    {
        std::vector<float> tmp(static_cast<size_t>(n));
#pragma omp for schedule(dynamic, 8)
        for (Eigen::Index j = 0; j < c; ++j) {
            const float* col = x.col(j).data();
            const Eigen::Map<const Eigen::ArrayXf> v(col, n);
            const double s1 = v.cast<double>().sum();
            const float mn = v.minCoeff(), mx = v.maxCoeff();
            const double mean = s1 / double(n);
            const Eigen::ArrayXd d2 = (v.cast<double>() - mean).square();
            const double c2 = d2.sum() / double(n), c4 = d2.square().sum() / double(n);
            sum[j] = s1;
            m2[j] = c2;
            s.mean[j] = float(mean);
            s.var[j] = float(c2);
            s.kurtosis[j] = c2 > 0 ? float(c4 / (c2 * c2) - 3.0) : 0.f;
            s.min[j] = mn;
            s.max[j] = mx;
            s.absmax[j] = std::max(std::abs(mn), std::abs(mx));
            std::copy(col, col + n, tmp.begin());
            float p[4];
            percentiles(tmp.data(), n, qs, 4, p);
            s.p01[j] = p[0], s.p25[j] = p[1], s.p75[j] = p[2], s.p99[j] = p[3];
        }
    }
    // Per-token max over channels, column by column so every read is contiguous.
    s.tokenAbsmax.assign(static_cast<size_t>(n), 0.f);
    Eigen::Map<Eigen::ArrayXf> tokenMax(s.tokenAbsmax.data(), n);
    for (Eigen::Index j = 0; j < c; ++j) tokenMax = tokenMax.max(x.col(j).array().abs());
    s.absmaxSite = c ? s.absmax.maxCoeff() : 0.0;

    // Energy entropy (llama.cpp imatrix): p_c ∝ E[x_c²] = var_c + mean_c².
    Eigen::VectorXd energy(c);
    for (Eigen::Index j = 0; j < c; ++j) energy[j] = m2[j] + (sum[j] / double(n)) * (sum[j] / double(n));
    const double etot = energy.sum();
    s.energyEntropyBits = 0;
    for (Eigen::Index j = 0; j < c; ++j)
        if (energy[j] > 0) s.energyEntropyBits -= energy[j] / etot * std::log2(energy[j] / etot);

    // Site-wide moments of all values pooled.
    const double total = double(n) * double(c);
    const double gmean = sum.sum() / total;
    double g2 = 0, g4 = 0;
#pragma omp parallel for reduction(+ : g2, g4) schedule(static)
    for (Eigen::Index j = 0; j < c; ++j) {
        const Eigen::ArrayXd d2 = (x.col(j).array().cast<double>() - gmean).square();
        g2 += d2.sum();
        g4 += d2.square().sum();
    }
    g2 /= total;
    g4 /= total;
    s.kurtosisSite = g2 > 0 ? g4 / (g2 * g2) - 3.0 : 0.0;

    // Value histogram on uniform bins over [min, max]; its Shannon entropy is the value entropy.
    const int bins = std::max(1, opt.histogramBins);
    const float lo = c ? s.min.minCoeff() : 0.f, hi = c ? s.max.maxCoeff() : 0.f;
    s.histEdges.resize(bins + 1);
    for (int b = 0; b <= bins; ++b) s.histEdges[b] = lo + (hi - lo) * float(b) / float(bins);
    s.histCounts.assign(bins, 0.0);
    const double scale = hi > lo ? bins / double(hi - lo) : 0.0;
    std::vector<int64_t> counts(bins, 0);
#pragma omp parallel
    {
        // Four interleaved sub-histograms: consecutive values often hit the same bin, and
        // separate counters keep those increments from waiting on each other.
        std::vector<int64_t> local(size_t(bins) * 4, 0);
        Eigen::ArrayXi idx(n);
#pragma omp for schedule(static) nowait
        for (Eigen::Index j = 0; j < c; ++j) {
            // Bin indices computed vectorised; only the increments are scalar.
            idx = ((x.col(j).array() - lo) * float(scale)).cast<int>().max(0).min(bins - 1);
            Eigen::Index t = 0;
            for (; t + 4 <= n; t += 4) {
                local[idx[t]]++;
                local[bins + idx[t + 1]]++;
                local[2 * bins + idx[t + 2]]++;
                local[3 * bins + idx[t + 3]]++;
            }
            for (; t < n; ++t) local[idx[t]]++;
        }
#pragma omp critical
        for (int b = 0; b < bins; ++b) counts[b] += local[b] + local[bins + b] + local[2 * bins + b] + local[3 * bins + b];
    }
    s.valueEntropyBits = 0;
    for (int b = 0; b < bins; ++b) {
        s.histCounts[b] = double(counts[b]);
        if (counts[b]) {
            const double p = double(counts[b]) / total;
            s.valueEntropyBits -= p * std::log2(p);
        }
    }

    // Outlier channels: absmax above threshold × the median channel absmax.
    if (c) {
        std::vector<float> a(s.absmax.data(), s.absmax.data() + c);
        std::nth_element(a.begin(), a.begin() + c / 2, a.end());
        double median = a[c / 2];
        if (c % 2 == 0) median = 0.5 * (median + *std::max_element(a.begin(), a.begin() + c / 2));
        for (Eigen::Index j = 0; j < c; ++j)
            if (median > 0 && s.absmax[j] / median > opt.outlierThreshold) s.outlierChannels.push_back(int32_t(j));
    }

    if (opt.hessian) {
        // Σ x xᵀ: float GEMM over chunks of tokens, accumulated in double.
        s.hessian = Eigen::MatrixXd::Zero(c, c);
        Eigen::MatrixXf part(c, c);
        for (Eigen::Index t0 = 0; t0 < n; t0 += 4096) {
            const Eigen::Index len = std::min<Eigen::Index>(4096, n - t0);
            part.noalias() = x.middleRows(t0, len).transpose() * x.middleRows(t0, len);
            s.hessian += part.cast<double>();
        }
    }
    return s;
}

} // namespace ql
