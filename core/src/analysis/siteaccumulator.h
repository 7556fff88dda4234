#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/analysis/statscollector.h"

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

namespace ql::detail {

/// One site's values over one block, stored channel-major (tokens × channels) as the chunks
/// arrive, plus the statistics that are cheapest while a chunk is still in cache (per-channel
/// range, per-token max). finish() computes the rest one channel at a time, each channel's
/// values contiguous so its passes stay in L2.
class SiteAccumulator {
public:
    /// Prepares for `tokens` values of `channels` channels; keeps the allocation when the shape
    /// repeats from block to block (no page faults on the next block).
    void start(Eigen::Index channels, int64_t tokens);
    /// Stores a chunk (channels × T, one column per token) at calibration-order token `offset`.
    void add(int64_t offset, const Eigen::Ref<const Eigen::MatrixXf>& chunk);
    /// All statistics of the stored values (see SiteStats); leaves the buffer for reuse.
    SiteStats finish(const std::string& name, int layer, const StatsOptions& opt);
    bool active() const { return m_active; }

private:
    Eigen::MatrixXf m_values; ///< tokens × channels: each channel's values contiguous
    Eigen::VectorXf m_min, m_max;
    std::vector<float> m_tokenAbsmax;
    bool m_active = false;
};

} // namespace ql::detail
