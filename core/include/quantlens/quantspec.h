#pragma once

// What to do to one linear layer: the unit a recipe resolves to and a quantizer receives.

#include "quantlens/quantizedtensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace ql {

/// A method parameter's value: flag, integer, real or text.
using ParamValue = std::variant<bool, int64_t, double, std::string>;
/// Method parameters by name.
using ParamMap = std::map<std::string, ParamValue>;

/// Simulated activation quantization at a layer's input (bits 0: none).
struct ActQuantSpec {
    int bits = 0;
    bool perToken = true;  ///< one scale per token; false: one per tensor
    bool symmetric = true;

    bool operator==(const ActQuantSpec&) const = default;
};

/// Input channels of a layer kept in another format than the rest of the weight (salient
/// channels). Either an explicit list or a selector evaluated on the site statistics.
struct ChannelOverride {
    std::vector<int32_t> channels;  ///< explicit input channels
    std::string selector;           ///< "" or "top_absmax_percent" (by activation absmax at the site)
    double selectorValue = 0;       ///< e.g. 1.0 for the top 1 %
    FormatSpec weight;              ///< format of those columns

    bool operator==(const ChannelOverride&) const = default;
};

/// The resolved plan for one linear layer.
struct QuantSpec {
    std::string method = "rtn";   ///< a quantizer id (built-in or plugin)
    ParamMap params;              ///< that method's parameters (missing ones take defaults)
    FormatSpec weight;            ///< format, granularity and group of the weight
    std::vector<ChannelOverride> channels;
    ActQuantSpec activations;
    bool skip = false;            ///< leave this layer in float

    bool operator==(const QuantSpec&) const = default;
};

} // namespace ql
