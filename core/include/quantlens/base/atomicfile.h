#pragma once

#include "quantlens/base/expected.h"

#include <string>
#include <string_view>

namespace ql {

/// Writes bytes to path through a temporary sibling renamed over it, so a reader, a full disk
/// or a kill sees the old file or the new one, never a part. Errors name path and the reason.
Expected<void> writeFileAtomically(const std::string& path, std::string_view bytes);

} // namespace ql
