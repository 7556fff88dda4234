#pragma once

// The analysis layout (docs/analysis-file.md) on top of h5util: writing and reading a whole
// AnalysisResult to/from an open HDF5 file. analysisstore.cpp adds files, temp-and-rename and
// hash checks. Messages name the HDF5 object; the caller prefixes the file path.

#include "store/h5util.h"

#include "quantlens/analysis/analysis.h"

#include <utility>

namespace ql::detail {

/// The layout version this code writes and the newest it reads.
constexpr int kSchemaVersion = 1;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Per-channel datasets of a site and the SiteStats member each holds.
inline const std::pair<const char*, Eigen::VectorXf SiteStats::*> kChannelStats[] = {
    {"absmax", &SiteStats::absmax},     {"mean", &SiteStats::mean}, {"var", &SiteStats::var},
    {"kurtosis", &SiteStats::kurtosis}, {"min", &SiteStats::min},   {"max", &SiteStats::max},
    {"p01", &SiteStats::p01},           {"p25", &SiteStats::p25},   {"p75", &SiteStats::p75},
    {"p99", &SiteStats::p99},
};

/// Writes the whole result (root attributes and every group) into a freshly created file.
Expected<void> writeAnalysis(hid_t file, const AnalysisResult& result);
/// Reads the root attributes; refuses a missing or newer schema_version.
Expected<AnalysisMeta> readAnalysisMeta(hid_t file);
/// Reads the whole result, with sites, weights and sensitivity in their written order.
Expected<AnalysisResult> readAnalysis(hid_t file);

} // namespace ql::detail
