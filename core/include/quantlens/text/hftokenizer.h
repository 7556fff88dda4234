#pragma once

#include "quantlens/text/tokenizer.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ql {

namespace detail {
struct HfTokenizerData;
}

/// A Hugging Face tokenizer.json with a BPE model (byte-level or SentencePiece-style with
/// byte fallback), its normalizers, pre-tokenizers, added/special tokens and decoder.
class HfTokenizer final : public Tokenizer {
public:
    /// Parses a tokenizer.json; errors name the file and the unsupported or malformed part.
    static Expected<std::shared_ptr<HfTokenizer>> fromFile(const std::string& path);
    /// Parses tokenizer.json content already in memory; origin names it in errors.
    static Expected<std::shared_ptr<HfTokenizer>> fromJson(std::string_view json, const std::string& origin);
    ~HfTokenizer() override;

    std::vector<int32_t> encode(std::string_view text) const override;
    std::string decode(std::span<const int32_t> ids) const override;
    std::string tokenText(int32_t id) const override;
    int32_t vocabSize() const override;
    std::string kind() const override { return "hf-bpe"; }
    /// Id of a vocabulary entry or added token, or -1.
    int32_t tokenId(std::string_view piece) const override;

    /// The BPE merges in rank order (for GGUF tokenizer.ggml.merges).
    const std::vector<std::pair<std::string, std::string>>& merges() const;
    /// True when id is an added token (special or not).
    bool isAdded(int32_t id) const;
    /// True when id is an added token marked special (GGUF token type "control").
    bool isSpecial(int32_t id) const;
    /// Id of the model's unk token, or -1.
    int32_t unkId() const;
    /// True when the pre-tokenizer is or contains ByteLevel (GPT-2-style byte-level BPE).
    bool isByteLevel() const;
    /// True when the model falls back to <0xNN> byte pieces (SentencePiece-style BPE).
    bool byteFallback() const;
    /// Ids the post_processor adds before a single sequence (e.g. BOS); encode() never adds them.
    const std::vector<int32_t>& postProcessorPrefix() const;
    /// Ids the post_processor adds after a single sequence (e.g. EOS); encode() never adds them.
    const std::vector<int32_t>& postProcessorSuffix() const;

private:
    HfTokenizer();
    std::unique_ptr<detail::HfTokenizerData> m_d;
};

} // namespace ql
