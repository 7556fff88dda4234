#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/base/expected.h"

#include <string>

namespace ql {

/// What an analysis must hold to be reused: its inputs and the measures asked for.
struct AnalysisRequest {
    std::string modelSha256;
    std::string calibSha256;
    SensitivityMode sensitivity = SensitivityMode::Proxy;
    std::string heldOutSha256;              ///< of the held-out windows end-to-end KL is measured on (Full)
    std::vector<SensitivityOption> options; ///< sensitivity options asked for (empty: any)
    std::string klContext;                  ///< Full: the plan around each measured layer ("": float)
};

/// Reads and writes an AnalysisResult as one HDF5 file (layout in docs/analysis-file.md).
class AnalysisStore {
public:
    /// Writes result to path through a temporary file renamed into place, so an interrupted
    /// write never leaves a partial file under the final name. Hessians are written when present.
    static Expected<void> write(const std::string& path, const AnalysisResult& result);
    /// Reads a whole analysis file.
    static Expected<AnalysisResult> read(const std::string& path);
    /// Reads only the root attributes.
    static Expected<AnalysisMeta> readMeta(const std::string& path);
    /// Opens an existing store for a model and calibration; refuses (with a message naming
    /// both hashes) a store made from another model or calibration set.
    static Expected<AnalysisResult> openFor(const std::string& path, const std::string& modelSha256,
                                            const std::string& calibSha256);
    /// The one rule for reusing an analysis, in the command line and the window alike: it must
    /// come from the same weights and calibration windows and hold every measure the request
    /// asks for (per-layer sensitivity unless None; for Full, end-to-end KL on the same held-out
    /// windows). Returns what is missing, empty when `result` serves `request`.
    static std::string missing(const AnalysisResult& result, const AnalysisRequest& request);
    /// True when missing() is empty.
    static bool covers(const AnalysisResult& result, const AnalysisRequest& request)
    {
        return missing(result, request).empty();
    }
};

} // namespace ql
