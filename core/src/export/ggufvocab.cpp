#include "export/ggufvocab.h"

#include "quantlens/text/hftokenizer.h"
#include "quantlens/text/sptokenizer.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ql::detail {

namespace {

using Json = nlohmann::json;

const char* const kVocabMetaSpace = "\xE2\x96\x81"; // ▁, SentencePiece's visible space

// The regexes exactly as the models' tokenizer.json files spell them; llama-vocab.cpp
// (llm_tokenizer_bpe) quotes each as the "original regex" behind its own adapted copy, and sets
// ignore_merges and add_bos per name as the flags say.
const GgufPreTokenizer kPreTokenizers[] = {
    {"gpt-2", nullptr, false, false, false},
    {"llama-bpe",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     true, false, true},
    {"qwen2",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     false, true, false},
    {"tekken",
     R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     true, false, true},
    {"gpt-4o",
     R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     false, false, false},
};

// Names llama-vocab.cpp reads in the same branch as one above (same regex, same flags).
const std::pair<std::string_view, std::string_view> kPreAliases[] = {{"llama3", "llama-bpe"},
                                                                     {"llama-v3", "llama-bpe"}};

// llama.cpp's SPM tokenizer repeatedly merges the two adjacent symbols whose concatenation is the
// vocabulary piece of highest score (the leftmost on ties); HF's BPE applies the listed merge of
// lowest rank. Giving the piece merge r produces the score -r makes the two orders the same
// whenever each piece comes from one merge. Pieces no merge produces (characters, <0xNN> bytes,
// added tokens) get a score below every merge's, so the SPM order never prefers them to a ranked
// merge (a single character is never the result of a merge at all). Ranks are exact floats up to
// 2^24 merges. What still differs: SPM joins any adjacent pair that spells a piece, HF only the
// pair its merge lists (tst_ggufvocab measures this on WikiText-2).
constexpr float kNoMergeScore = -1e9f;

std::string vocabTypeOf(const Json& j)
{
    return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : std::string();
}

bool vocabBool(const Json& j, const char* key, bool fallback)
{
    return j.is_object() && j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

std::string vocabString(const Json& j, const char* key, const std::string& fallback = {})
{
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

const Json& vocabChild(const Json& j, const char* key)
{
    static const Json null;
    return j.is_object() && j.contains(key) ? j[key] : null;
}

// A JSON part short enough for an error message.
std::string vocabBrief(const Json& j)
{
    const std::string s = j.dump();
    return s.size() > 160 ? s.substr(0, 160) + "..." : s;
}

// {"String": s}: a literal pattern equal to s.
bool isLiteralPattern(const Json& p, const char* s)
{
    return p.is_object() && p.contains("String") && p["String"].is_string() && p["String"].get<std::string>() == s;
}

// The tokenizer.json behind t, for the parts the tokenizer object does not expose.
Expected<Json> tokenizerJsonOf(const HfTokenizer& t, const std::string& folder)
{
    const std::string path = (std::filesystem::path(folder) / "tokenizer.json").string();
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return makeError(path +
                         ": cannot read it; GGUF export takes the normalizer and pre-tokenizer from the tokenizer.json "
                         "the tokenizer was loaded from");
    std::stringstream ss;
    ss << in.rdbuf();
    Json j = Json::parse(ss.str(), nullptr, false);
    const Json& merges = vocabChild(vocabChild(j, "model"), "merges");
    if (j.is_discarded() || !merges.is_array() || merges.size() != t.merges().size())
        return makeError(path + ": does not match the tokenizer being exported (" +
                         std::to_string(merges.is_array() ? merges.size() : 0) + " merges, the tokenizer has " +
                         std::to_string(t.merges().size()) + ")");
    return j;
}

// The model options a GGUF vocabulary has no key for must be the ones its reader assumes.
Expected<void> checkBpeModel(const Json& model, bool ignoreMerges, bool fuseUnk, const std::string& what)
{
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (!vocabString(model, key).empty())
            return makeError("the BPE model's " + std::string(key) + " '" + vocabString(model, key) +
                             "' has no GGUF key");
    if (vocabBool(model, "ignore_merges", false) != ignoreMerges)
        return makeError(std::string("the BPE model has ignore_merges ") + (ignoreMerges ? "false" : "true") +
                         ", but llama.cpp reads " + what + " vocabularies with ignore_merges " +
                         (ignoreMerges ? "true" : "false"));
    if (fuseUnk && !vocabBool(model, "fuse_unk", false))
        return makeError("the BPE model has fuse_unk false; " + what +
                         " vocabularies are read back with runs of unknown characters fused into one unknown token, "
                         "as SentencePiece does");
    return {};
}

// add_space_prefix of a SentencePiece-style tokenizer.json: spaces become ▁ (a Replace normalizer or
// a Metaspace pre-tokenizer) and ▁ may be put first; anything else has no GGUF "llama" key.
Expected<bool> spacePrefixOf(const Json& j, const std::vector<std::pair<std::string, std::string>>& merges)
{
    const Json& norm = vocabChild(j, "normalizer");
    std::vector<const Json*> parts;
    if (vocabTypeOf(norm) == "Sequence" && vocabChild(norm, "normalizers").is_array())
        for (const Json& p : norm["normalizers"]) parts.push_back(&p);
    else if (!norm.is_null())
        parts.push_back(&norm);
    bool prepends = false, replaces = false;
    for (const Json* p : parts) {
        const std::string type = vocabTypeOf(*p);
        if (type == "Prepend" && vocabString(*p, "prepend") == kVocabMetaSpace && !prepends)
            prepends = true;
        else if (type == "Replace" && isLiteralPattern(vocabChild(*p, "pattern"), " ") &&
                 vocabString(*p, "content") == kVocabMetaSpace)
            replaces = true;
        else
            return makeError("normalizer " + vocabBrief(*p) +
                             " has no GGUF key: a 'llama' vocabulary only turns spaces into '▁' and may put one first");
    }
    const Json& pre = vocabChild(j, "pre_tokenizer");
    if (pre.is_null()) {
        if (!replaces)
            return makeError("the tokenizer does not turn spaces into '▁' (no Replace normalizer, no Metaspace), "
                             "which a GGUF 'llama' vocabulary always does");
        return prepends;
    }
    if (vocabTypeOf(pre) != "Metaspace" || !parts.empty() ||
        vocabString(pre, "replacement", kVocabMetaSpace) != kVocabMetaSpace)
        return makeError("pre-tokenizer " + vocabBrief(pre) +
                         " has no GGUF key: a 'llama' vocabulary merges over the whole text after spaces become '▁'");
    // Splitting before each ▁ changes nothing when no merge makes a piece with ▁ past its start.
    if (vocabBool(pre, "split", true))
        for (const auto& [a, b] : merges)
            if ((a + b).find(kVocabMetaSpace, 1) != std::string::npos)
                return makeError("the Metaspace pre-tokenizer splits words, but merge '" + a + " " + b +
                                 "' joins across a '▁', which a GGUF 'llama' vocabulary would then do");
    // prepend_scheme "first" puts ▁ only at the start of the text, llama.cpp also after each special
    // token met in the text: the two differ only on text that spells special tokens.
    const std::string scheme = vocabString(pre, "prepend_scheme",
                                           vocabBool(pre, "add_prefix_space", true) ? "always" : "never");
    return scheme != "never";
}

// The llama.cpp pre-tokenizer name of a byte-level tokenizer.json's pre-tokenizer.
Expected<const GgufPreTokenizer*> preTokenizerOf(const Json& pre)
{
    if (vocabTypeOf(pre) == "ByteLevel") {
        if (vocabBool(pre, "add_prefix_space", true))
            return makeError("the ByteLevel pre-tokenizer adds a prefix space, which llama.cpp's 'gpt2' "
                             "vocabularies never do");
        if (!vocabBool(pre, "use_regex", true))
            return makeError("the ByteLevel pre-tokenizer splits nothing (use_regex false), which no llama.cpp "
                             "pre-tokenizer name says");
        return &kPreTokenizers[0];
    }
    const Json& parts = vocabChild(pre, "pretokenizers");
    if (vocabTypeOf(pre) == "Sequence" && parts.is_array() && parts.size() == 2) {
        const Json &split = parts[0], &byteLevel = parts[1];
        const Json& pattern = vocabChild(split, "pattern");
        if (vocabTypeOf(split) == "Split" && pattern.is_object() && pattern.contains("Regex") &&
            pattern["Regex"].is_string() && vocabString(split, "behavior") == "Isolated" &&
            !vocabBool(split, "invert", false) && vocabTypeOf(byteLevel) == "ByteLevel" &&
            !vocabBool(byteLevel, "add_prefix_space", true) && !vocabBool(byteLevel, "use_regex", true)) {
            const std::string regex = pattern["Regex"].get<std::string>();
            for (const auto& p : kPreTokenizers)
                if (p.regex && regex == p.regex) return &p;
            return makeError("the pre-tokenizer regex '" + regex + "' is not one llama.cpp has a name for (" +
                             ggufPreTokenizerNames() + ")");
        }
    }
    return makeError("pre-tokenizer " + vocabBrief(pre) +
                     " has no llama.cpp name; GGUF export knows ByteLevel with its own regex, and a Split regex "
                     "(Isolated) followed by ByteLevel without one");
}

Expected<std::vector<std::string>> mergeStrings(const HfTokenizer& t)
{
    std::vector<std::string> out;
    out.reserve(t.merges().size());
    for (const auto& [a, b] : t.merges()) {
        if (a.empty() || b.empty() || a.find(' ', 1) != std::string::npos)
            return makeError("merge ['" + a + "', '" + b +
                             "'] cannot be written as a GGUF \"a b\" string "
                             "(llama.cpp splits it at the first space)");
        out.push_back(a + " " + b);
    }
    return out;
}

// Tokens in id order with their types; ids no token has become [PADn] of type unused, as
// llama.cpp's converter writes them.
std::pair<std::vector<std::string>, std::vector<int32_t>> hfTokens(const HfTokenizer& t, bool spStyle)
{
    std::vector<std::string> tokens(size_t(t.vocabSize()));
    std::vector<int32_t> types(tokens.size(), kGgufNormal);
    for (int32_t id = 0; id < t.vocabSize(); ++id) {
        std::string& s = tokens[size_t(id)];
        int32_t& type = types[size_t(id)];
        s = t.tokenText(id);
        const bool byte = s.size() == 6 && s.starts_with("<0x") && s.back() == '>' &&
                          std::isxdigit(static_cast<unsigned char>(s[3])) &&
                          std::isxdigit(static_cast<unsigned char>(s[4]));
        if (s.empty()) {
            s = "[PAD" + std::to_string(id) + "]";
            type = kGgufUnused;
        } else if (spStyle && id == t.unkId()) {
            type = kGgufUnknown;
        } else if (t.isAdded(id)) {
            type = t.isSpecial(id) ? kGgufControl : kGgufUserDefined;
        } else if (spStyle && byte) {
            type = kGgufByte;
        }
    }
    return {std::move(tokens), std::move(types)};
}

void writeSpecials(GgufWriter& w, const Tokenizer& tokenizer, int32_t unknown)
{
    if (tokenizer.bosId() >= 0) w.set("tokenizer.ggml.bos_token_id", uint32_t(tokenizer.bosId()));
    if (tokenizer.eosId() >= 0) w.set("tokenizer.ggml.eos_token_id", uint32_t(tokenizer.eosId()));
    if (unknown >= 0) w.set("tokenizer.ggml.unknown_token_id", uint32_t(unknown));
    w.set("tokenizer.ggml.add_bos_token", tokenizer.addsBos());
    w.set("tokenizer.ggml.add_eos_token", false);
}

void writeSentencePiece(GgufWriter& w, const SpTokenizer& sp)
{
    SpVocabulary vocabulary = sp.vocabulary();
    int32_t unknown = -1;
    for (size_t i = 0; i < vocabulary.types.size() && unknown < 0; ++i)
        if (vocabulary.types[i] == kGgufUnknown) unknown = int32_t(i);
    w.set("tokenizer.ggml.model", std::string("llama"));
    w.set("tokenizer.ggml.tokens", std::move(vocabulary.pieces));
    w.set("tokenizer.ggml.scores", std::move(vocabulary.scores));
    w.set("tokenizer.ggml.token_type", std::move(vocabulary.types));
    // How the text is split before the merges: llama.cpp's keys, so the vocabulary read back
    // tokenizes as the original did.
    w.set("tokenizer.ggml.add_space_prefix", vocabulary.addDummyPrefix);
    w.set("tokenizer.ggml.remove_extra_whitespaces", vocabulary.removeExtraWhitespaces);
    writeSpecials(w, sp, unknown);
}

// A SentencePiece-style BPE (spaces as ▁, byte fallback) as a "llama" vocabulary, merges kept too.
Expected<void> writeSentencePieceStyle(GgufWriter& w, const HfTokenizer& t, const Json& j)
{
    QL_TRY(checkBpeModel(vocabChild(j, "model"), false, t.unkId() >= 0, "'llama'"));
    auto prefix = spacePrefixOf(j, t.merges());
    if (!prefix) return prefix.error();
    auto merges = mergeStrings(t);
    if (!merges) return merges.error();
    auto [tokens, types] = hfTokens(t, true);
    std::unordered_map<std::string, size_t> rank; // piece -> the first merge that makes it
    for (size_t r = 0; r < t.merges().size(); ++r) rank.try_emplace(t.merges()[r].first + t.merges()[r].second, r);
    std::vector<float> scores(tokens.size(), kNoMergeScore);
    for (size_t id = 0; id < tokens.size(); ++id)
        if (const auto it = rank.find(tokens[id]); it != rank.end() && !t.isAdded(int32_t(id)))
            scores[id] = -float(it->second);
    w.set("tokenizer.ggml.model", std::string("llama"));
    w.set("tokenizer.ggml.pre", std::string("default")); // as llama.cpp's converter writes for "llama"
    w.set("tokenizer.ggml.tokens", std::move(tokens));
    w.set("tokenizer.ggml.scores", std::move(scores));
    w.set("tokenizer.ggml.token_type", std::move(types));
    // llama.cpp ignores merges in a "llama" vocabulary; QuantLens reads them back to rebuild the
    // tokenizer.json exactly (docs/gguf.md).
    w.set("tokenizer.ggml.merges", std::move(*merges));
    w.set("tokenizer.ggml.add_space_prefix", *prefix);
    w.set("tokenizer.ggml.remove_extra_whitespaces", false);
    writeSpecials(w, t, t.unkId());
    return {};
}

// A GPT-2-style byte-level BPE as a "gpt2" vocabulary.
Expected<void> writeByteLevel(GgufWriter& w, const HfTokenizer& t, const Json& j)
{
    auto pre = preTokenizerOf(vocabChild(j, "pre_tokenizer"));
    if (!pre) return pre.error();
    const std::string name = (*pre)->name;
    const Json& norm = vocabChild(j, "normalizer");
    const bool nfc = vocabTypeOf(norm) == "NFC";
    if (!norm.is_null() && !nfc)
        return makeError("normalizer " + vocabBrief(norm) + " has no GGUF key in a 'gpt2' vocabulary");
    if (nfc != (*pre)->nfc)
        return makeError((*pre)->nfc
                             ? "'" + name + "' tokenizers normalize to NFC first and this one does not"
                             : "the NFC normalizer goes with no llama.cpp name but 'qwen2'; this tokenizer is '" +
                                   name + "'");
    QL_TRY(checkBpeModel(vocabChild(j, "model"), (*pre)->ignoreMerges, false, "'" + name + "'"));
    auto merges = mergeStrings(t);
    if (!merges) return merges.error();
    auto [tokens, types] = hfTokens(t, false);
    w.set("tokenizer.ggml.model", std::string("gpt2"));
    w.set("tokenizer.ggml.pre", name);
    w.set("tokenizer.ggml.tokens", std::move(tokens));
    w.set("tokenizer.ggml.token_type", std::move(types));
    w.set("tokenizer.ggml.merges", std::move(*merges));
    writeSpecials(w, t, t.unkId());
    return {};
}

} // namespace

const GgufPreTokenizer* ggufPreTokenizer(std::string_view name)
{
    for (const auto& [alias, target] : kPreAliases)
        if (name == alias) name = target;
    for (const auto& p : kPreTokenizers)
        if (name == p.name) return &p;
    return nullptr;
}

std::string ggufPreTokenizerNames()
{
    std::string out;
    for (const auto& p : kPreTokenizers) out += (out.empty() ? "" : ", ") + std::string(p.name);
    return out;
}

bool splitGgufMerge(std::string_view merge, std::string& left, std::string& right)
{
    const size_t space = merge.find(' ', 1);
    if (space == std::string_view::npos) return false;
    left = merge.substr(0, space);
    right = merge.substr(space + 1);
    return true;
}

Expected<void> writeGgufVocabulary(GgufWriter& w, const Tokenizer& tokenizer, const std::string& folder)
{
    if (const auto* sp = dynamic_cast<const SpTokenizer*>(&tokenizer)) {
        writeSentencePiece(w, *sp);
        return {};
    }
    const auto* hf = dynamic_cast<const HfTokenizer*>(&tokenizer);
    if (!hf)
        return makeError(
            "GGUF export writes SentencePiece and Hugging Face BPE vocabularies; this model's tokenizer is " +
            tokenizer.kind());
    auto j = tokenizerJsonOf(*hf, folder);
    if (!j) return j.error();
    return hf->isByteLevel() ? writeByteLevel(w, *hf, *j) : writeSentencePieceStyle(w, *hf, *j);
}

} // namespace ql::detail
