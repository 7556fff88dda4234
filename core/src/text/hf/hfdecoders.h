#pragma once

// Hugging Face decoders: token strings -> text, each stage rewriting the list of strings.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ql::detail {

/// One decoder of a tokenizer.json "decoder" tree (HF's decode_chain).
class HfDecoder {
public:
    virtual ~HfDecoder() = default;
    /// Rewrites the token strings; the final text is their concatenation.
    virtual void decodeChain(std::vector<std::string>& tokens) const = 0;
};

/// Builds the decoder tree; null gives nullptr; unknown types throw HfParseError naming where.
std::unique_ptr<HfDecoder> parseDecoder(const nlohmann::json& j, const std::string& where);

} // namespace ql::detail
