#pragma once

// What `allocate` and `pareto` read the same way: the analysis, the budget and the allocator.

#include "quantlens/alloc/measuredoptions.h"
#include "quantlens/model/model.h"

#include <string>
#include <vector>

namespace ql::cli {

/// The analysis at path, refused when it was made from other weights than the model's.
Expected<AnalysisResult> readAnalysisFor(const Model& model, const std::string& path, const std::string& modelDir);

/// The linears' budget in bits: "3.0bpw" (bits per weight of the linears), or "2.5GB" / "800MB" /
/// "123456B" (the whole model, every weight that is not a linear's at 16 bits).
Expected<int64_t> parseBudget(const std::string& text, const Model& model);

} // namespace ql::cli
