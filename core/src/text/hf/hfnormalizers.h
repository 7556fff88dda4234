#pragma once

// Hugging Face normalizers. Offsets are not tracked: QuantLens only needs ids.

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace ql::detail {

/// One normalizer of a tokenizer.json "normalizer" tree.
class HfNormalizer {
public:
    virtual ~HfNormalizer() = default;
    /// Normalizes text in place (text is valid UTF-8 and stays so).
    virtual void normalize(std::string& text) const = 0;
};

/// Builds the normalizer tree; null gives nullptr; unknown types throw HfParseError naming where.
std::unique_ptr<HfNormalizer> parseNormalizer(const nlohmann::json& j, const std::string& where);

} // namespace ql::detail
