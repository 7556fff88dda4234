#pragma once

#include <string>

namespace ql::detail {

/// Metadata "format" of a run state file, and its layout version.
inline constexpr const char* kRunStateFormat = "quantlens-state";
inline constexpr int kRunStateVersion = 2;

} // namespace ql::detail
