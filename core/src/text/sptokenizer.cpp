#include "quantlens/text/sptokenizer.h"

#include <sentencepiece_processor.h>

namespace ql {

SpTokenizer::SpTokenizer() : m_sp(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SpTokenizer::~SpTokenizer() = default;

Expected<std::shared_ptr<SpTokenizer>> SpTokenizer::fromFile(const std::string& path)
{
    std::shared_ptr<SpTokenizer> t(new SpTokenizer);
    const auto status = t->m_sp->Load(path);
    if (!status.ok()) return makeError(path + ": not a loadable SentencePiece model: " + status.ToString());
    return t;
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
