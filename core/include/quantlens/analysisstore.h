#pragma once

#include "quantlens/analysis.h"
#include "quantlens/expected.h"

#include <string>

namespace ql {

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
};

} // namespace ql
