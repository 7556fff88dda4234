#include "quantlens/statscollector.h"

#include "quantlens/model.h"

#include "siteaccumulator.h"

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// The sites in block order; event names end in these suffixes.
constexpr const char* kSites[] = {"attn_in", "o_in", "mlp_in", "down_in"};

bool endsWith(const std::string& s, const char* suffix)
{
    const size_t n = std::char_traits<char>::length(suffix);
    return s.size() > n && s.compare(s.size() - n, n, suffix) == 0 && s[s.size() - n - 1] == '.';
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
    m_open.resize(std::size(kSites));
    m_residuals.resize(config.layers);
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
    for (size_t k = 0; k < std::size(kSites); ++k) {
        if (!endsWith(a.name, kSites[k])) continue;
        detail::SiteAccumulator& acc = m_open[k];
        if (!acc.active()) acc.start(a.x.rows(), m_totalTokens);
        acc.add(offset, a.x);
        return;
    }
    if (!endsWith(a.name, "output")) return;
    // Residual stream after the block: streaming per-channel and per-token maxima, massive activations.
    ResidualStats& r = m_residuals[a.layer];
    const Eigen::MatrixXf& x = a.x;
    r.absmax = r.absmax.cwiseMax(x.cwiseAbs().rowwise().maxCoeff());
    std::vector<float> col(static_cast<size_t>(x.rows()));
    for (Eigen::Index t = 0; t < x.cols(); ++t) {
        float mx = 0;
        for (Eigen::Index c = 0; c < x.rows(); ++c) {
            col[c] = std::abs(x(c, t));
            mx = std::max(mx, col[c]);
        }
        r.tokenAbsmax[static_cast<size_t>(offset + t)] = mx;
        if (mx <= m_opt.massiveAbs) continue;
        auto mid = col.begin() + col.size() / 2;
        std::nth_element(col.begin(), mid, col.end());
        const float median = *mid;
        for (Eigen::Index c = 0; c < x.rows(); ++c) {
            const float v = x(c, t);
            if (std::abs(v) > m_opt.massiveAbs && std::abs(v) > m_opt.massiveRatio * median)
                m_massive.push_back({a.layer, offset + t, m_windows[a.sequence][t], int32_t(c), v});
        }
    }
}

void StatsCollector::finalizeLayer(int layer)
{
    for (size_t k = 0; k < std::size(kSites); ++k) {
        if (!m_open[k].active()) continue;
        const std::string name = "layers." + std::to_string(layer) + "." + kSites[k];
        m_sites.push_back(m_open[k].finish(name, layer, m_opt));
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
    m_open.assign(std::size(kSites), detail::SiteAccumulator()); // the block buffers are no longer needed
    sites = std::move(m_sites);
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
            out.push_back(std::move(s));
        }
    }
    return out;
}

} // namespace ql
