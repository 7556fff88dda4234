#pragma once

// llama.cpp importance matrices as a sensitivity input. An imatrix keeps, per linear, only Σx² per
// input feature: the diagonal of the Hessian H = Σxxᵀ the analysis's proxy uses. So the proxy it
// gives is tr(ΔW diag(H) ΔWᵀ)/n, the error llama-quantize itself minimises, and it ranks layers
// for the allocator where only a GGUF's imatrix (no calibration text) is at hand.

#include "quantlens/analysis/analysis.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/export/imatrix.h"
#include "quantlens/model/model.h"

#include <string>
#include <vector>

namespace ql {

/// An analysis made from an importance matrix instead of a calibration pass: weight statistics
/// and every linear's diagonal sensitivity; no activation sites. meta.sampling is "imatrix",
/// calibSha256 the hash of the imatrix file, samples and seqlen its chunk count and size.
Expected<AnalysisResult> analyzeImatrix(const Model& model, const ImportanceMatrix& imatrix,
                                        const std::string& imatrixSha256, const AnalyzeOptions& options,
                                        Feedback* feedback = nullptr);

} // namespace ql
