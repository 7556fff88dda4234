#pragma once

#include "quantlens/text/tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ql {

/// A SentencePiece model as a GGUF vocabulary holds it: the pieces with their scores and types
/// (llama.cpp's numbering, the same as SentencePiece's) and the few settings that change how
/// text is split.
struct SpVocabulary {
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<int32_t> types;
    bool bpe = true;                    ///< BPE merges by score (false: unigram)
    bool byteFallback = false;          ///< unknown characters become <0xXX> byte pieces
    bool addDummyPrefix = true;         ///< a space is put before the text
    bool removeExtraWhitespaces = true; ///< runs of spaces collapse, leading and trailing ones go
};

/// A SentencePiece tokenizer.model, run by the SentencePiece library itself.
class SpTokenizer final : public Tokenizer {
public:
    /// Loads a tokenizer.model; errors name the file.
    static Expected<std::shared_ptr<SpTokenizer>> fromFile(const std::string& path);
    /// Builds the model from a vocabulary (a GGUF file's); origin names it in errors.
    static Expected<std::shared_ptr<SpTokenizer>> fromVocabulary(const SpVocabulary& v, const std::string& origin);
    /// The model as tokenizer.model bytes (a serialized ModelProto).
    std::string modelProto() const;
    /// The pieces, scores, types and settings of the model.
    SpVocabulary vocabulary() const;
    ~SpTokenizer() override;

    std::vector<int32_t> encode(std::string_view text) const override;
    std::string decode(std::span<const int32_t> ids) const override;
    std::string tokenText(int32_t id) const override;
    int32_t vocabSize() const override;
    int32_t tokenId(std::string_view piece) const override;
    std::string kind() const override { return "sentencepiece"; }
    /// The model's own BOS id (-1 when it has none).
    int32_t modelBosId() const;
    /// The model's own EOS id (-1 when it has none).
    int32_t modelEosId() const;
    /// The piece's score (its log probability in a unigram model, its merge rank in BPE).
    float pieceScore(int32_t id) const;
    /// What the piece is, in llama.cpp's numbering: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte.
    int32_t pieceType(int32_t id) const;

private:
    SpTokenizer();
    std::unique_ptr<sentencepiece::SentencePieceProcessor> m_sp;
};

} // namespace ql
