#pragma once

// Hugging Face pre-tokenizers: they cut a normalized piece into words for the model.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ql::detail {

/// A piece of normalized text; atOrigin when it starts at offset 0 of the input (Metaspace "first").
struct HfPiece {
    std::string text;
    bool atOrigin = false;
};

/// One pre-tokenizer of a tokenizer.json "pre_tokenizer" tree.
class HfPreTokenizer {
public:
    virtual ~HfPreTokenizer() = default;
    /// Splits and transforms the pieces; empty pieces are dropped, as HF does.
    virtual void preTokenize(std::vector<HfPiece>& pieces) const = 0;
    /// True when this (or a part of a Sequence) is a ByteLevel pre-tokenizer.
    virtual bool isByteLevel() const { return false; }
};

/// Builds the pre-tokenizer tree; null gives nullptr; unknown types throw HfParseError naming where.
std::unique_ptr<HfPreTokenizer> parsePreTokenizer(const nlohmann::json& j, const std::string& where);

} // namespace ql::detail
