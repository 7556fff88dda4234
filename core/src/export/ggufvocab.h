#pragma once

// The vocabulary of a GGUF file as llama.cpp reads it (docs/gguf.md). Internal to the core
// library: exportGguf writes it with writeGgufVocabulary, and the import (ggufimport.cpp) turns a
// file's vocabulary back into a tokenizer.json through the same pre-tokenizer table.

#include "quantlens/base/expected.h"
#include "quantlens/export/ggufwriter.h"
#include "quantlens/text/tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace ql::detail {

/// llama.cpp's token types (tokenizer.ggml.token_type), the same numbers as SentencePiece's.
enum GgufTokenType : int32_t {
    kGgufNormal = 1,
    kGgufUnknown = 2,
    kGgufControl = 3,
    kGgufUserDefined = 4,
    kGgufUnused = 5,
    kGgufByte = 6
};

/// A tokenizer.ggml.pre name of a byte-level ("gpt2") vocabulary and the Hugging Face
/// pre-tokenizer it stands for.
struct GgufPreTokenizer {
    const char* name;  ///< the name QuantLens writes
    const char* regex; ///< the Split regex of the original tokenizer.json; nullptr: ByteLevel's own (GPT-2's)
    bool ignoreMerges; ///< llama.cpp sets ignore_merges for this name (a whole word in the vocabulary is one token)
    bool nfc;          ///< the original tokenizer.json normalizes to NFC first (llama.cpp itself does not)
    bool addBos;       ///< llama.cpp's add_bos when the file has no tokenizer.ggml.add_bos_token
};

/// The entry of a tokenizer.ggml.pre value (aliases llama.cpp reads the same way included), or nullptr.
const GgufPreTokenizer* ggufPreTokenizer(std::string_view name);
/// The names ggufPreTokenizer knows, comma-separated, for error messages.
std::string ggufPreTokenizerNames();

/// Splits a tokenizer.ggml.merges entry "a b" as llama.cpp does (at the first space after the
/// first byte); false when there is none.
bool splitGgufMerge(std::string_view merge, std::string& left, std::string& right);

/// Writes the tokenizer.ggml.* keys of tokenizer: a SentencePiece model as "llama" with its own
/// scores; a Hugging Face BPE as "llama" (SentencePiece-style, merges by score) or as "gpt2"
/// (byte-level, with the pre-tokenizer's llama.cpp name). folder holds the tokenizer.json an
/// HfTokenizer was read from: its normalizer and pre-tokenizer, which the tokenizer object does
/// not expose, decide add_space_prefix and tokenizer.ggml.pre. Anything a GGUF vocabulary cannot
/// say is refused with the reason, never written approximately.
Expected<void> writeGgufVocabulary(GgufWriter& w, const Tokenizer& tokenizer, const std::string& folder);

} // namespace ql::detail
