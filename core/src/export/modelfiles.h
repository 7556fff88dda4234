#pragma once

// Reading and writing the small text files of a Hugging Face folder (internal to the exporters).

#include "quantlens/base/expected.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>

namespace ql {

/// A model folder's config.json as a JSON object; the error names the file.
Expected<nlohmann::json> readConfigJson(const std::string& folder);
/// Writes text to path; the error names the file.
Expected<void> writeTextFile(const std::filesystem::path& path, std::string_view text);

} // namespace ql
