#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <cstdint>
#include <span>
#include <string>

namespace ql {

/// The raw activations entering a site ("layers.<i>.attn_in|o_in|mlp_in|down_in") for one token
/// window, [tokens, channels] row-major; runs blocks 0..i only and stops at the site.
Expected<RowMatrix> captureSite(const WeightSource& weights, const ModelConfig& config, std::span<const int32_t> tokens,
                                const std::string& site, int threads = 0, Feedback* feedback = nullptr);

} // namespace ql
