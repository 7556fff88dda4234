#include "quantlens/text/sptokenizer.h"

#include "spproto.h"

#include <sentencepiece_processor.h>
#include <stdexcept>

namespace ql {

SpTokenizer::SpTokenizer() : m_sp(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SpTokenizer::~SpTokenizer() = default;

Expected<std::shared_ptr<SpTokenizer>> SpTokenizer::fromFile(const std::string& path)
{
    std::shared_ptr<SpTokenizer> t(new SpTokenizer);
    // libsentencepiece throws from its trie builder on some malformed piece lists, instead of
    // returning a status.
    try {
        const auto status = t->m_sp->Load(path);
        if (!status.ok()) return makeError(path + ": not a loadable SentencePiece model: " + status.ToString());
    } catch (const std::exception& e) {
        return makeError(path + ": not a loadable SentencePiece model: " + e.what());
    }
    return t;
}

Expected<std::shared_ptr<SpTokenizer>> SpTokenizer::fromVocabulary(const SpVocabulary& v, const std::string& origin)
{
    if (v.pieces.empty()) return makeError(origin + ": the vocabulary has no pieces");
    if (v.scores.size() != v.pieces.size() || v.types.size() != v.pieces.size())
        return makeError(origin + ": " + std::to_string(v.pieces.size()) + " pieces but " +
                         std::to_string(v.scores.size()) + " scores and " + std::to_string(v.types.size()) +
                         " token types");
    std::shared_ptr<SpTokenizer> t(new SpTokenizer);
    try {
        const auto status = t->m_sp->LoadFromSerializedProto(writeSpModelProto(v));
        if (!status.ok())
            return makeError(origin + ": the vocabulary is not a valid SentencePiece model: " + status.ToString());
    } catch (const std::exception& e) {
        return makeError(origin + ": the vocabulary is not a valid SentencePiece model: " + e.what());
    }
    return t;
}

std::string SpTokenizer::modelProto() const
{
    return m_sp->serialized_model_proto();
}

SpVocabulary SpTokenizer::vocabulary() const
{
    SpVocabulary v;
    const int n = vocabSize();
    v.pieces.reserve(size_t(n));
    for (int id = 0; id < n; ++id) {
        v.pieces.push_back(m_sp->IdToPiece(id));
        v.scores.push_back(pieceScore(id));
        v.types.push_back(pieceType(id));
    }
    readSpModelFlags(m_sp->serialized_model_proto(), v);
    return v;
}

std::vector<int32_t> SpTokenizer::encode(std::string_view text) const
{
    std::vector<int> ids;
    m_sp->Encode(text, &ids);
    return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string SpTokenizer::decode(std::span<const int32_t> ids) const
{
    std::string out;
    m_sp->Decode(std::vector<int>(ids.begin(), ids.end()), &out);
    return out;
}

std::string SpTokenizer::tokenText(int32_t id) const
{
    if (id < 0 || id >= vocabSize()) return {};
    return m_sp->IdToPiece(id);
}

int32_t SpTokenizer::vocabSize() const
{
    return m_sp->GetPieceSize();
}

int32_t SpTokenizer::tokenId(std::string_view piece) const
{
    const int id = m_sp->PieceToId(piece);
    // PieceToId answers unk for unknown pieces; only a real match counts.
    return m_sp->IdToPiece(id) == piece ? id : -1;
}

int32_t SpTokenizer::modelBosId() const
{
    return m_sp->bos_id();
}
int32_t SpTokenizer::modelEosId() const
{
    return m_sp->eos_id();
}

float SpTokenizer::pieceScore(int32_t id) const
{
    return m_sp->GetScore(id);
}

int32_t SpTokenizer::pieceType(int32_t id) const
{
    if (m_sp->IsUnknown(id)) return 2;
    if (m_sp->IsControl(id)) return 3;
    if (m_sp->IsUnused(id)) return 5;
    if (m_sp->IsByte(id)) return 6;
    return 1;
}

} // namespace ql
