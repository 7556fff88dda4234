#include "spproto.h"

#include <cstdint>
#include <cstring>

namespace ql {

namespace {

// Field numbers of sentencepiece_model.proto.
constexpr int kModelPieces = 1, kModelTrainer = 2, kModelNormalizer = 3;
constexpr int kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr int kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerByteFallback = 35, kTrainerUnkId = 40,
              kTrainerBosId = 41, kTrainerEosId = 42, kTrainerPadId = 43;
constexpr int kNormName = 1, kNormAddDummyPrefix = 3, kNormRemoveExtraWs = 4, kNormEscapeWs = 5;

void spVarint(std::string& out, uint64_t v)
{
    while (v >= 0x80) {
        out += char(uint8_t(v | 0x80));
        v >>= 7;
    }
    out += char(uint8_t(v));
}

void spTag(std::string& out, int field, int wire)
{
    spVarint(out, uint64_t(field) << 3 | uint64_t(wire));
}

void spInt(std::string& out, int field, int64_t v)
{
    spTag(out, field, 0);
    spVarint(out, uint64_t(v)); // negative int32 values take ten bytes, as protobuf encodes them
}

void spBytes(std::string& out, int field, std::string_view s)
{
    spTag(out, field, 2);
    spVarint(out, s.size());
    out.append(s);
}

void spFloat(std::string& out, int field, float f)
{
    spTag(out, field, 5);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int b = 0; b < 4; ++b) out += char(uint8_t(u >> (8 * b)));
}

// A cursor over one message; every read checks bounds and stops the walk on malformed input.
struct SpReader {
    std::string_view s;
    size_t i = 0;
    bool ok = true;

    bool varint(uint64_t& v)
    {
        v = 0;
        for (int shift = 0; shift < 64 && i < s.size(); shift += 7) {
            const uint8_t c = uint8_t(s[i++]);
            v |= uint64_t(c & 0x7f) << shift;
            if (c < 0x80) return true;
        }
        return ok = false;
    }
    // Next field: its number, wire type, varint value or length-delimited payload.
    bool next(int& field, int& wire, uint64_t& value, std::string_view& payload)
    {
        if (!ok || i >= s.size()) return false;
        uint64_t key;
        if (!varint(key)) return false;
        field = int(key >> 3);
        wire = int(key & 7);
        switch (wire) {
        case 0: return varint(value);
        case 1:
        case 5: {
            const size_t n = wire == 1 ? 8 : 4;
            if (s.size() - i < n) return ok = false;
            i += n;
            return true;
        }
        case 2:
            if (!varint(value) || value > s.size() - i) return ok = false;
            payload = s.substr(i, size_t(value));
            i += size_t(value);
            return true;
        default: return ok = false;
        }
    }
};

} // namespace

std::string writeSpModelProto(const SpVocabulary& v)
{
    std::string out;
    int unk = 0, bos = -1, eos = -1;
    for (size_t id = 0; id < v.pieces.size(); ++id) {
        std::string piece;
        spBytes(piece, kPieceText, v.pieces[id]);
        spFloat(piece, kPieceScore, id < v.scores.size() ? v.scores[id] : 0.f);
        const int type = id < v.types.size() ? v.types[id] : 1;
        if (type != 1) spInt(piece, kPieceType, type);
        spBytes(out, kModelPieces, piece);
        if (type == 2) unk = int(id);
        if (type == 3 && v.pieces[id] == "<s>") bos = int(id);
        if (type == 3 && v.pieces[id] == "</s>") eos = int(id);
    }
    std::string trainer;
    spInt(trainer, kTrainerModelType, v.bpe ? 2 : 1);
    spInt(trainer, kTrainerVocabSize, int64_t(v.pieces.size()));
    if (v.byteFallback) spInt(trainer, kTrainerByteFallback, 1);
    spInt(trainer, kTrainerUnkId, unk);
    spInt(trainer, kTrainerBosId, bos);
    spInt(trainer, kTrainerEosId, eos);
    spInt(trainer, kTrainerPadId, -1);
    spBytes(out, kModelTrainer, trainer);
    std::string norm;
    spBytes(norm, kNormName, "identity");
    spInt(norm, kNormAddDummyPrefix, v.addDummyPrefix ? 1 : 0);
    spInt(norm, kNormRemoveExtraWs, v.removeExtraWhitespaces ? 1 : 0);
    spInt(norm, kNormEscapeWs, 1);
    spBytes(out, kModelNormalizer, norm);
    return out;
}

void readSpModelFlags(std::string_view proto, SpVocabulary& v)
{
    // Declared defaults of the proto: unigram, no byte fallback, dummy prefix and whitespace
    // removal on.
    v.bpe = false;
    v.byteFallback = false;
    v.addDummyPrefix = true;
    v.removeExtraWhitespaces = true;
    SpReader top{proto};
    int field, wire;
    uint64_t value;
    std::string_view payload;
    while (top.next(field, wire, value, payload)) {
        if (wire != 2 || (field != kModelTrainer && field != kModelNormalizer)) continue;
        SpReader sub{payload};
        int f, w;
        uint64_t x;
        std::string_view p;
        while (sub.next(f, w, x, p)) {
            if (w != 0) continue;
            if (field == kModelTrainer && f == kTrainerModelType) v.bpe = x == 2;
            if (field == kModelTrainer && f == kTrainerByteFallback) v.byteFallback = x != 0;
            if (field == kModelNormalizer && f == kNormAddDummyPrefix) v.addDummyPrefix = x != 0;
            if (field == kModelNormalizer && f == kNormRemoveExtraWs) v.removeExtraWhitespaces = x != 0;
        }
    }
}

} // namespace ql
