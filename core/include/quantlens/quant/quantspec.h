#pragma once

// What to do to one linear layer: the unit a recipe resolves to and a quantizer receives.

#include "quantlens/base/params.h"
#include "quantlens/quant/actquant.h"
#include "quantlens/quant/quantizedtensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// Input channels of a layer kept in another format than the rest of the weight (salient
/// channels). Either an explicit list or a selector evaluated on the site statistics.
struct ChannelOverride {
    std::vector<int32_t> channels; ///< explicit input channels
    std::string selector;          ///< "" or "top_absmax_percent" (by activation absmax at the site)
    double selectorValue = 0;      ///< e.g. 1.0 for the top 1 %
    FormatSpec weight;             ///< format of those columns

    bool operator==(const ChannelOverride&) const = default;
};

/// The resolved plan for one linear layer.
struct QuantSpec {
    std::string method = "rtn"; ///< a quantizer id (built-in or plugin)
    ParamMap params;            ///< that method's parameters (missing ones take defaults)
    FormatSpec weight;          ///< format, granularity and group of the weight
    std::vector<ChannelOverride> channels;
    ActQuantSpec activations;
    bool skip = false; ///< leave this layer in float

    bool operator==(const QuantSpec&) const = default;
};

} // namespace ql
