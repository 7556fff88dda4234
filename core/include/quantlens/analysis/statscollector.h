#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/modelconfig.h"

#include <functional>
#include <vector>

namespace ql {

namespace detail {
class SiteAccumulator;
} // namespace detail

/// What the statistics pass records, and its thresholds.
struct StatsOptions {
    int histogramBins = 1024;     ///< uniform bins over the site's [min, max]
    double outlierThreshold = 20; ///< channel absmax / median channel absmax
    bool hessian = false;         ///< accumulate Σ x xᵀ per site
    float massiveAbs = 100.f;     ///< massive activation: |a| above this ...
    float massiveRatio = 1000.f;  ///< ... and above this multiple of its hidden state's median |a|
};

/// Subscribes to the forward pass and computes per-site, residual-stream and massive-activation
/// statistics. Sequences must be run as one batch so each block sees every calibration token
/// before the next block starts; a site's exact percentiles come from that one block's values,
/// which are the only per-token activations held.
class StatsCollector {
public:
    /// windows are the token ids run through the model, in order (for massive-activation token ids).
    StatsCollector(const ModelConfig& config, const std::vector<std::vector<int32_t>>& windows,
                   StatsOptions options = {});
    ~StatsCollector();

    /// The observer to install on the ForwardEngine.
    ActivationObserver observer();
    /// Called with each site as soon as its block is finished (e.g. to use and drop its Hessian).
    void setSiteCallback(std::function<void(SiteStats&)> callback) { m_onSite = std::move(callback); }
    /// Finishes the last block and hands over the statistics (sites in block order, q/k/v site first).
    void finish(std::vector<SiteStats>& sites, std::vector<ResidualStats>& residuals,
                std::vector<MassiveActivation>& massive);

private:
    void observe(const Activation& a);
    void finalizeLayer(int layer);

    const ModelConfig& m_config;
    const std::vector<std::vector<int32_t>>& m_windows;
    StatsOptions m_opt;
    int64_t m_totalTokens = 0;
    std::vector<int64_t> m_offsets; ///< first calibration-order token index of each window
    int m_currentLayer = -1;
    std::vector<detail::SiteAccumulator> m_open; ///< this block's sites, reused block after block
    std::vector<SiteStats> m_sites;
    std::vector<ResidualStats> m_residuals;
    std::vector<std::vector<float>> m_tokenMedians; ///< per layer: median |a| of every 8th token
    std::vector<MassiveActivation> m_massive;
    std::function<void(SiteStats&)> m_onSite;
};

/// Per-row absmax and std, kurtosis and the 3σ tail fraction of every linear weight of a model.
std::vector<WeightStats> computeWeightStats(const class Model& model);

/// Histogram of the finite values of w on 256 uniform bins over their [min, max], into s's
/// histCounts and histEdges (the weight statistics' histogram, for any matrix).
void weightHistogram(const Eigen::Ref<const RowMatrix>& w, WeightStats& s);

/// Statistics of one site computed from its values (tokens × channels): the definitions the
/// collector implements, for code that has the values at hand.
SiteStats siteStatsFromValues(const std::string& name, int layer, const Eigen::MatrixXf& valuesTokensByChannels,
                              const StatsOptions& options);

} // namespace ql
