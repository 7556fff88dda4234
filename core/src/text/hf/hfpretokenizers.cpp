#include "text/hf/hfpretokenizers.h"

#include "text/hf/hfpattern.h"
#include "text/hf/hfutf8.h"

#include <nlohmann/json.hpp>

namespace ql::detail {

namespace {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Replaces every piece by the non-empty sub-ranges a split keeps; only a sub-piece that starts
// at offset 0 of an at-origin piece stays at the origin.
template <class RangesOf>
void splitEach(std::vector<HfPiece>& pieces, RangesOf rangesOf)
{
    std::vector<HfPiece> out;
    out.reserve(pieces.size());
    for (auto& p : pieces) {
        for (const auto& [b, e] : rangesOf(p.text)) {
            if (e <= b) continue;
            out.push_back({p.text.substr(b, e - b), p.atOrigin && b == 0});
        }
    }
    pieces = std::move(out);
}

void splitWith(std::vector<HfPiece>& pieces, const HfPattern& pattern, SplitBehavior behavior, bool invert = false)
{
    splitEach(pieces, [&](const std::string& text) {
        auto spans = pattern.findMatches(text);
        if (invert) invertSpans(spans);
        return splitRanges(spans, behavior);
    });
}

class SequencePreTokenizer final : public HfPreTokenizer {
public:
    explicit SequencePreTokenizer(std::vector<std::unique_ptr<HfPreTokenizer>> parts) : m_parts(std::move(parts)) {}
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        for (const auto& p : m_parts) p->preTokenize(pieces);
    }
    bool isByteLevel() const override
    {
        for (const auto& p : m_parts)
            if (p->isByteLevel()) return true;
        return false;
    }

private:
    std::vector<std::unique_ptr<HfPreTokenizer>> m_parts;
};

class ByteLevelPreTokenizer final : public HfPreTokenizer {
public:
    ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex)
        : m_addPrefixSpace(addPrefixSpace),
          m_regex(useRegex ? HfPattern::regex(kGpt2Pattern, "ByteLevel") : HfPattern()), m_useRegex(useRegex)
    {}
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        if (m_addPrefixSpace)
            for (auto& p : pieces)
                if (!p.text.empty() && p.text[0] != ' ') p.text.insert(0, 1, ' ');
        if (m_useRegex) splitWith(pieces, m_regex, SplitBehavior::Isolated);
        for (auto& p : pieces) p.text = byteLevelEncode(p.text);
    }
    bool isByteLevel() const override { return true; }

private:
    bool m_addPrefixSpace;
    HfPattern m_regex;
    bool m_useRegex;
};

class SplitPreTokenizer final : public HfPreTokenizer {
public:
    SplitPreTokenizer(HfPattern pattern, SplitBehavior behavior, bool invert)
        : m_pattern(std::move(pattern)), m_behavior(behavior), m_invert(invert)
    {}
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        splitWith(pieces, m_pattern, m_behavior, m_invert);
    }

private:
    HfPattern m_pattern;
    SplitBehavior m_behavior;
    bool m_invert;
};

class MetaspacePreTokenizer final : public HfPreTokenizer {
public:
    enum class Prepend { Always, First, Never };
    MetaspacePreTokenizer(char32_t replacement, Prepend scheme, bool split)
        : m_replacement(utf8Of(replacement)), m_replacementCp(replacement), m_scheme(scheme), m_split(split)
    {}
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        const HfPattern space = HfPattern::codePoint(U' ');
        for (auto& p : pieces) {
            p.text = replaceAll(p.text, space, m_replacement);
            const bool startsWithRep = p.text.compare(0, m_replacement.size(), m_replacement) == 0;
            if (!startsWithRep && (m_scheme == Prepend::Always || (m_scheme == Prepend::First && p.atOrigin)))
                p.text.insert(0, m_replacement);
        }
        if (m_split) splitWith(pieces, HfPattern::codePoint(m_replacementCp), SplitBehavior::MergedWithNext);
    }

private:
    std::string m_replacement;
    char32_t m_replacementCp;
    Prepend m_scheme;
    bool m_split;
};

class PredicatePreTokenizer final : public HfPreTokenizer {
public:
    PredicatePreTokenizer(bool (*pred)(char32_t), SplitBehavior behavior)
        : m_pattern(HfPattern::predicate(pred)), m_behavior(behavior)
    {}
    void preTokenize(std::vector<HfPiece>& pieces) const override { splitWith(pieces, m_pattern, m_behavior); }

private:
    HfPattern m_pattern;
    SplitBehavior m_behavior;
};

class CharDelimiterPreTokenizer final : public HfPreTokenizer {
public:
    explicit CharDelimiterPreTokenizer(char32_t delimiter) : m_pattern(HfPattern::codePoint(delimiter)) {}
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        splitWith(pieces, m_pattern, SplitBehavior::Removed);
    }

private:
    HfPattern m_pattern;
};

class WhitespacePreTokenizer final : public HfPreTokenizer {
public:
    // HF's \w+|[^\w\s]+ with Oniguruma's Unicode \w (L, M, N, Pc), which is wider than PCRE2's.
    WhitespacePreTokenizer()
        : m_pattern(HfPattern::regex(R"([\p{L}\p{M}\p{N}\p{Pc}]+|[^\p{L}\p{M}\p{N}\p{Pc}\s]+)", "Whitespace"))
    {}
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        splitWith(pieces, m_pattern, SplitBehavior::Removed, /*invert=*/true);
    }

private:
    HfPattern m_pattern;
};

class BertPreTokenizer final : public HfPreTokenizer {
public:
    void preTokenize(std::vector<HfPiece>& pieces) const override
    {
        splitWith(pieces, HfPattern::predicate(isRustWhitespace), SplitBehavior::Removed);
        splitWith(pieces, HfPattern::predicate(isHfPunctuation), SplitBehavior::Isolated);
    }
};

char32_t singleChar(const nlohmann::json& j, const char* key, const std::string& where, char32_t fallback)
{
    if (!j.contains(key)) return fallback;
    if (!j[key].is_string()) throw HfParseError(where + ": '" + key + "' must be a one-character string");
    const std::string s = j[key].get<std::string>();
    size_t i = 0;
    const char32_t c = s.empty() ? 0 : nextCodePoint(s, i);
    if (s.empty() || i != s.size())
        throw HfParseError(where + ": '" + key + "' must be exactly one character, got '" + s + "'");
    return c;
}

std::unique_ptr<HfPreTokenizer> parseMetaspace(const nlohmann::json& j, const std::string& where)
{
    using P = MetaspacePreTokenizer::Prepend;
    P scheme = P::Always;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
        const std::string s = j["prepend_scheme"].get<std::string>();
        if (s == "always")
            scheme = P::Always;
        else if (s == "first")
            scheme = P::First;
        else if (s == "never")
            scheme = P::Never;
        else
            throw HfParseError(where + ": unknown Metaspace prepend_scheme '" + s + "'");
    } else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean()) {
        scheme = j["add_prefix_space"].get<bool>() ? P::Always : P::Never; // pre-0.19 files
    }
    return std::make_unique<MetaspacePreTokenizer>(singleChar(j, "replacement", where, U'\u2581'), scheme,
                                                   jsonBool(j, "split", true));
}

} // namespace

std::unique_ptr<HfPreTokenizer> parsePreTokenizer(const nlohmann::json& j, const std::string& where)
{
    if (j.is_null()) return nullptr;
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
        throw HfParseError(where + ": pre-tokenizer must be an object with a \"type\"");
    const std::string type = j["type"].get<std::string>();
    if (type == "Sequence") {
        std::vector<std::unique_ptr<HfPreTokenizer>> parts;
        const auto& list = j.at("pretokenizers");
        for (size_t k = 0; k < list.size(); ++k)
            if (auto p = parsePreTokenizer(list[k], where + ".pretokenizers[" + std::to_string(k) + "]"))
                parts.push_back(std::move(p));
        return std::make_unique<SequencePreTokenizer>(std::move(parts));
    }
    if (type == "ByteLevel")
        return std::make_unique<ByteLevelPreTokenizer>(jsonBool(j, "add_prefix_space", true),
                                                       jsonBool(j, "use_regex", true));
    if (type == "Split") {
        const std::string w = where + " (Split)";
        return std::make_unique<SplitPreTokenizer>(HfPattern::fromJson(j.at("pattern"), w + ".pattern"),
                                                   parseSplitBehavior(j.at("behavior"), w),
                                                   jsonBool(j, "invert", false));
    }
    if (type == "Metaspace") return parseMetaspace(j, where);
    if (type == "Digits")
        return std::make_unique<PredicatePreTokenizer>(isRustNumeric, jsonBool(j, "individual_digits", false)
                                                                          ? SplitBehavior::Isolated
                                                                          : SplitBehavior::Contiguous);
    if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
    if (type == "WhitespaceSplit")
        return std::make_unique<PredicatePreTokenizer>(isRustWhitespace, SplitBehavior::Removed);
    if (type == "Punctuation") {
        const SplitBehavior b = j.contains("behavior") ? parseSplitBehavior(j["behavior"], where)
                                                       : SplitBehavior::Isolated;
        return std::make_unique<PredicatePreTokenizer>(isHfPunctuation, b);
    }
    if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
    if (type == "CharDelimiterSplit")
        return std::make_unique<CharDelimiterPreTokenizer>(singleChar(j, "delimiter", where, U' '));
    throw HfParseError(where + ": pre-tokenizer type '" + type +
                       "' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, "
                       "WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit)");
}

} // namespace ql::detail
