#include "quantlens/analysis/statscollector.h"

#include "quantlens/model/model.h"

#include "analysis/siteaccumulator.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace ql {

namespace {

// ResidualStats::medianAbs takes the per-token medians of every kMedianStride-th token (by
// calibration-order index): a selection on every token measured ~15% of a plain forward pass
// at hidden 576 (SmolLM-135M's width), on every 8th token ~2%.
constexpr int64_t kMedianStride = 8;

int64_t medianSlots(int64_t tokens)
{
    return (tokens + kMedianStride - 1) / kMedianStride;
}

// Keeps the three largest values seen, descending; v is known to exceed top[2].
inline void insertTop3(std::array<float, 3>& top, float v)
{
    if (v > top[0]) {
        top = {v, top[0], top[1]};
    } else if (v > top[1]) {
        top[2] = top[1];
        top[1] = v;
    } else {
        top[2] = v;
    }
}

// The element at index size/2 of [first, last) in sorted order (the upper middle one for an even
// count); reorders the range. 0 for an empty range.
float upperMedian(std::vector<float>::iterator first, std::vector<float>::iterator last)
{
    if (first == last) return 0.f;
    const auto mid = first + (last - first) / 2;
    std::nth_element(first, mid, last);
    return *mid;
}

} // namespace

StatsCollector::StatsCollector(const ModelConfig& config, const std::vector<std::vector<int32_t>>& windows,
                               StatsOptions options)
    : m_config(config), m_windows(windows), m_opt(options)
{
    for (const auto& w : windows) {
        m_offsets.push_back(m_totalTokens);
        m_totalTokens += static_cast<int64_t>(w.size());
    }
    m_open.resize(kSiteCount);
    m_residuals.resize(config.layers);
    m_tokenMedians.resize(size_t(config.layers));
    for (int i = 0; i < config.layers; ++i) {
        m_residuals[i].layer = i;
        m_residuals[i].absmax = Eigen::VectorXf::Zero(config.hidden);
        m_residuals[i].tokenAbsmax.assign(static_cast<size_t>(m_totalTokens), 0.f);
    }
}

StatsCollector::~StatsCollector() = default;

ActivationObserver StatsCollector::observer()
{
    return [this](const Activation& a) { observe(a); };
}

void StatsCollector::observe(const Activation& a)
{
    if (a.layer < 0) return;
    if (a.layer != m_currentLayer) {
        if (m_currentLayer >= 0) finalizeLayer(m_currentLayer);
        m_currentLayer = a.layer;
    }
    const int64_t offset = m_offsets.at(static_cast<size_t>(a.sequence));
    if (const int k = siteIndex(a.point); k >= 0) {
        detail::SiteAccumulator& acc = m_open[size_t(k)];
        if (!acc.active()) acc.start(a.x.rows(), m_totalTokens);
        acc.add(offset, a.x);
        return;
    }
    if (a.point != BlockPoint::Output) return;
    // Residual stream after the block: streaming per-channel and per-token maxima, the top-3 |a|,
    // sampled tokens' median |a| (kept per layer until finish()) and massive activations.
    ResidualStats& r = m_residuals[a.layer];
    const Eigen::MatrixXf& x = a.x;
    r.absmax = r.absmax.cwiseMax(x.cwiseAbs().rowwise().maxCoeff());
    std::vector<float>& parked = m_tokenMedians[size_t(a.layer)];
    if (parked.empty()) parked.assign(size_t(medianSlots(m_totalTokens)), 0.f);
    std::array<float, 3> top = r.top3;
    std::vector<float> col(static_cast<size_t>(x.rows()));
    for (Eigen::Index t = 0; t < x.cols(); ++t) {
        const float* xt = x.col(t).data();
        float mx = 0;
        for (size_t c = 0; c < col.size(); ++c) {
            col[c] = std::abs(xt[c]);
            mx = std::max(mx, col[c]);
        }
        // Only a token whose maximum beats the running third value can change the top 3,
        // which after the first tokens is rare; the scan above stays a plain max.
        if (mx > top[2])
            for (float v : col)
                if (v > top[2]) insertTop3(top, v);
        r.tokenAbsmax[static_cast<size_t>(offset + t)] = mx;
        const bool sampled = (offset + t) % kMedianStride == 0;
        if (!sampled && mx <= m_opt.massiveAbs) continue;
        const float median = upperMedian(col.begin(), col.end());
        if (sampled) parked[size_t((offset + t) / kMedianStride)] = median;
        if (mx <= m_opt.massiveAbs) continue;
        for (Eigen::Index c = 0; c < x.rows(); ++c) {
            const float v = xt[c];
            if (std::abs(v) > m_opt.massiveAbs && std::abs(v) > m_opt.massiveRatio * median)
                m_massive.push_back({a.layer, offset + t, m_windows[a.sequence][t], int32_t(c), v});
        }
    }
    r.top3 = top;
}

void StatsCollector::finalizeLayer(int layer)
{
    for (int k = 0; k < kSiteCount; ++k) {
        if (!m_open[size_t(k)].active()) continue;
        const std::string name = siteName(layer, kSitePoints[k]);
        m_sites.push_back(m_open[size_t(k)].finish(name, layer, m_opt));
        if (m_onSite) m_onSite(m_sites.back());
    }
}

SiteStats siteStatsFromValues(const std::string& name, int layer, const Eigen::MatrixXf& x, const StatsOptions& opt)
{
    detail::SiteAccumulator acc;
    acc.start(x.cols(), x.rows());
    acc.add(0, x.transpose());
    return acc.finish(name, layer, opt);
}

void StatsCollector::finish(std::vector<SiteStats>& sites, std::vector<ResidualStats>& residuals,
                            std::vector<MassiveActivation>& massive)
{
    if (m_currentLayer >= 0) finalizeLayer(m_currentLayer);
    m_currentLayer = -1;
    m_open.assign(kSiteCount, detail::SiteAccumulator()); // the block buffers are no longer needed
    sites = std::move(m_sites);
    for (size_t i = 0; i < m_residuals.size(); ++i) {
        std::vector<float>& medians = m_tokenMedians[i];
        if (!medians.empty()) m_residuals[i].medianAbs = upperMedian(medians.begin(), medians.end());
    }
    m_tokenMedians.clear();
    residuals = std::move(m_residuals);
    massive = std::move(m_massive);
}

std::vector<WeightStats> computeWeightStats(const Model& model)
{
    std::vector<WeightStats> out;
    BlockWeights b;
    for (int i = 0; i < model.config().layers; ++i) {
        if (!model.block(i, b)) continue;
        for (int k = 0; k < kLinearCount; ++k) {
            const auto w = b[static_cast<LinearKind>(k)];
            WeightStats s;
            s.name = Model::linearName(i, static_cast<LinearKind>(k)) + ".weight";
            s.rowAbsmax = w.cwiseAbs().rowwise().maxCoeff();
            const Eigen::VectorXf rowMean = w.rowwise().mean();
            s.rowStd = ((w.colwise() - rowMean).array().square().rowwise().mean()).sqrt().matrix();
            const double n = double(w.size());
            const double mean = w.cast<double>().sum() / n;
            double m2 = 0, m4 = 0;
            for (Eigen::Index r = 0; r < w.rows(); ++r)
                for (Eigen::Index c = 0; c < w.cols(); ++c) {
                    const double d = w(r, c) - mean, d2 = d * d;
                    m2 += d2;
                    m4 += d2 * d2;
                }
            m2 /= n;
            m4 /= n;
            s.kurtosis = m2 > 0 ? m4 / (m2 * m2) - 3.0 : 0.0;
            const double sd = std::sqrt(m2);
            int64_t beyond = 0;
            for (Eigen::Index r = 0; r < w.rows(); ++r)
                for (Eigen::Index c = 0; c < w.cols(); ++c) beyond += std::abs(w(r, c) - mean) > 3.0 * sd;
            s.fracBeyond3Sigma = double(beyond) / n;
            weightHistogram(w, s);
            out.push_back(std::move(s));
        }
    }
    return out;
}

// Bins of the weight histograms (WeightStats::histCounts).
constexpr int kWeightBins = 256;

// Histogram of the finite values of w on kWeightBins uniform bins over their [min, max]. Bin b
// holds edges[b] <= w < edges[b + 1], the last bin also w == max (so a constant matrix lands
// there); counts follow the stored float edges exactly, so a reader rebinning with the edges
// gets the same counts.
void weightHistogram(const Eigen::Ref<const RowMatrix>& w, WeightStats& s)
{
    float lo = INFINITY, hi = -INFINITY;
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index c = 0; c < w.cols(); ++c)
            if (std::isfinite(w(r, c))) lo = std::min(lo, w(r, c)), hi = std::max(hi, w(r, c));
    s.histCounts.clear();
    s.histEdges.clear();
    if (!(lo <= hi)) return; // no finite weight
    const int bins = kWeightBins;
    s.histEdges.resize(size_t(bins) + 1);
    for (int b = 0; b <= bins; ++b) s.histEdges[size_t(b)] = float(double(lo) + (double(hi) - double(lo)) * b / bins);
    s.histEdges.front() = lo;
    s.histEdges.back() = hi;
    const float* e = s.histEdges.data();
    const float scale = hi > lo ? float(bins / (double(hi) - double(lo))) : 0.f;
    std::vector<int64_t> total(size_t(bins), 0);
#pragma omp parallel
    {
        std::vector<int64_t> counts(size_t(bins), 0);
#pragma omp for schedule(static)
        for (Eigen::Index r = 0; r < w.rows(); ++r)
            for (Eigen::Index c = 0; c < w.cols(); ++c) {
                const float x = w(r, c);
                if (!std::isfinite(x)) continue;
                // The scaled position is at most a rounding away from the true bin; the edge
                // comparisons settle it.
                int b = static_cast<int>(std::min((x - lo) * scale, float(bins - 1))); // x - lo may overflow to inf
                while (b > 0 && x < e[b]) --b;
                while (b < bins - 1 && x >= e[b + 1]) ++b;
                ++counts[size_t(b)];
            }
#pragma omp critical
        for (int b = 0; b < bins; ++b) total[size_t(b)] += counts[size_t(b)];
    }
    s.histCounts.assign(total.begin(), total.end());
}

} // namespace ql
