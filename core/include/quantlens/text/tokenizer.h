#pragma once

#include "quantlens/base/expected.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ql {

/// Converts text to token ids exactly as a model's reference tokenizer library does.
class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    /// Token ids of text with no special tokens added (BOS/EOS are the caller's choice).
    virtual std::vector<int32_t> encode(std::string_view text) const = 0;
    /// Text of a sequence of ids, as the reference decoder renders it.
    virtual std::string decode(std::span<const int32_t> ids) const = 0;
    /// The vocabulary entry of one id (raw piece, e.g. "▁the" or "Ġthe").
    virtual std::string tokenText(int32_t id) const = 0;
    /// Number of ids the tokenizer can produce.
    virtual int32_t vocabSize() const = 0;
    /// Id of a vocabulary piece or added token, or -1 when absent.
    virtual int32_t tokenId(std::string_view piece) const = 0;
    /// "sentencepiece" or "hf-bpe".
    virtual std::string kind() const = 0;

    /// BOS id, or -1 when the model has none.
    int32_t bosId() const { return m_bos; }
    /// EOS id, or -1 when the model has none.
    int32_t eosId() const { return m_eos; }
    /// Whether the model's reference pipeline puts BOS at the start of a sequence.
    bool addsBos() const { return m_addBos && m_bos >= 0; }
    /// Sets the special-token facts read from tokenizer_config.json / config.json.
    void setSpecials(int32_t bos, int32_t eos, bool addBos)
    {
        m_bos = bos;
        m_eos = eos;
        m_addBos = addBos;
    }

private:
    int32_t m_bos = -1;
    int32_t m_eos = -1;
    bool m_addBos = false;
};

/// Loads a model folder's tokenizer: tokenizer.json when present, else tokenizer.model,
/// with BOS/EOS and add-BOS from tokenizer_config.json and config.json.
Expected<std::shared_ptr<Tokenizer>> loadTokenizer(const std::string& modelDir);

} // namespace ql
