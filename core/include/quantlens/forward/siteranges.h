#pragma once

#include "quantlens/analysis/analysis.h"
#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <vector>

namespace ql {

/// Per-channel min, max and absmax of every site (attn_in, o_in, mlp_in, down_in of each block)
/// over the windows, from one forward pass of `weights`: the statistics transforms such as
/// SmoothQuant need, cheap enough to recompute after each transform. Other SiteStats fields stay empty.
Expected<std::vector<SiteStats>> siteRanges(const ModelConfig& config, const WeightSource& weights,
                                            const std::vector<std::vector<int32_t>>& windows, int threads = 0,
                                            Feedback* feedback = nullptr);

} // namespace ql
