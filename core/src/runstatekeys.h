#pragma once

#include "quantlens/quantizedtensor.h"

#include <string>

namespace ql::detail {

/// Metadata "format" of a run state file, and its layout version.
inline constexpr const char* kRunStateFormat = "quantlens-state";
inline constexpr int kRunStateVersion = 2;

/// Spelling of a granularity in the state file (as in recipes).
inline const char* granularityKey(Granularity g)
{
    switch (g) {
    case Granularity::PerTensor: return "per_tensor";
    case Granularity::PerChannel: return "per_channel";
    case Granularity::PerGroup: return "per_group";
    }
    return "per_group";
}

} // namespace ql::detail
