#include "text/hf/hfaddedvocab.h"

#include "text/hf/hfnormalizers.h"
#include "text/hf/hfutf8.h"

#include <utf8proc.h>

#include <algorithm>
#include <cctype>

namespace ql::detail {

namespace {

// Rust regex's Unicode \w: letters, marks, decimal digits, connector punctuation, joiners.
bool isWordChar(char32_t c)
{
    if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == U'_';
    if (c == 0x200C || c == 0x200D) return true;
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ND) || cat == UTF8PROC_CATEGORY_NL ||
           cat == UTF8PROC_CATEGORY_PC;
}

char32_t lastChar(std::string_view s)
{
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    return nextCodePoint(s, start);
}

// Byte offset where the trailing whitespace of s begins.
size_t trailingSpaceStart(std::string_view s)
{
    size_t end = s.size();
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!isRustWhitespace(nextCodePoint(s, i))) break;
        end = start;
    }
    return end;
}

// Byte length of the leading whitespace of s.
size_t leadingSpaceLength(std::string_view s)
{
    size_t i = 0;
    while (i < s.size()) {
        const size_t at = i;
        if (!isRustWhitespace(nextCodePoint(s, i))) return at;
    }
    return s.size();
}

} // namespace

void HfAddedVocabulary::build(std::vector<HfAddedToken> tokens, const HfNormalizer* normalizer)
{
    m_tokens = std::move(tokens);
    std::vector<std::pair<std::string, size_t>> raw, normalized;
    for (size_t k = 0; k < m_tokens.size(); ++k) {
        m_byId[m_tokens[k].id] = k;
        m_byContent[m_tokens[k].content] = m_tokens[k].id;
    }
    // HF lists special tokens before the others; the first of two equal patterns wins.
    std::vector<size_t> order(m_tokens.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_partition(order.begin(), order.end(), [&](size_t k) { return m_tokens[k].special; });
    for (const size_t k : order) {
        const auto& t = m_tokens[k];
        if (!t.normalized) {
            raw.emplace_back(t.content, k);
        } else {
            // HF matches normalized tokens by their normalized form (e.g. "<unk>" -> "▁<unk>" under Prepend).
            std::string pattern = t.content;
            if (normalizer) normalizer->normalize(pattern);
            normalized.emplace_back(std::move(pattern), k);
        }
    }
    buildMatcher(m_raw, std::move(raw));
    buildMatcher(m_normalized, std::move(normalized));
}

void HfAddedVocabulary::buildMatcher(Matcher& m, std::vector<std::pair<std::string, size_t>> patterns) const
{
    for (auto& [pattern, index] : patterns) {
        if (pattern.empty()) continue;
        m.byFirstByte[static_cast<unsigned char>(pattern[0])].push_back(m.patterns.size());
        m.patterns.push_back(std::move(pattern));
        m.tokenIndex.push_back(index);
    }
    for (auto& list : m.byFirstByte)
        std::stable_sort(list.begin(), list.end(),
                         [&](size_t a, size_t b) { return m.patterns[a].size() > m.patterns[b].size(); });
}

std::vector<HfAddedVocabulary::Split> HfAddedVocabulary::findMatches(std::string_view text, const Matcher& m) const
{
    std::vector<Split> out;
    if (m.patterns.empty()) {
        out.push_back({0, text.size(), -1});
        return out;
    }
    size_t startOffset = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        const auto& candidates = m.byFirstByte[static_cast<unsigned char>(text[pos])];
        size_t hit = SIZE_MAX;
        for (const size_t c : candidates) {
            if (text.compare(pos, m.patterns[c].size(), m.patterns[c]) == 0) {
                hit = c;
                break; // longest first: leftmost-longest
            }
        }
        if (hit == SIZE_MAX) {
            ++pos;
            continue;
        }
        size_t start = pos, stop = pos + m.patterns[hit].size();
        pos = stop; // like Aho-Corasick's iterator, the search resumes after the match
        const HfAddedToken& tok = m_tokens[m.tokenIndex[hit]];
        if (tok.singleWord) {
            const bool spaceBefore = start == 0 || !isWordChar(lastChar(text.substr(0, start)));
            size_t i = stop;
            const bool spaceAfter = stop == text.size() || !isWordChar(nextCodePoint(text, i));
            if (!spaceBefore || !spaceAfter) continue;
        }
        if (tok.lstrip) start = std::max(trailingSpaceStart(text.substr(0, start)), startOffset);
        if (tok.rstrip) stop += leadingSpaceLength(text.substr(stop));
        start = std::max(start, startOffset);
        if (startOffset < start) out.push_back({startOffset, start, -1});
        out.push_back({start, stop, tok.id});
        startOffset = stop;
        pos = std::max(pos, stop); // never re-match inside whitespace an rstrip swallowed
    }
    if (startOffset != text.size()) out.push_back({startOffset, text.size(), -1});
    return out;
}

std::vector<HfSegment> HfAddedVocabulary::extractAndNormalize(std::string_view text,
                                                              const HfNormalizer* normalizer) const
{
    std::vector<HfSegment> out;
    if (text.empty()) return out;
    for (const Split& raw : findMatches(text, m_raw)) {
        if (raw.end <= raw.begin) continue;
        if (raw.id >= 0) {
            out.push_back({std::string(text.substr(raw.begin, raw.end - raw.begin)), raw.id, raw.begin == 0});
            continue;
        }
        std::string piece(text.substr(raw.begin, raw.end - raw.begin));
        if (normalizer) normalizer->normalize(piece);
        if (piece.empty()) continue;
        for (const Split& s : findMatches(piece, m_normalized)) {
            if (s.end <= s.begin) continue;
            out.push_back({piece.substr(s.begin, s.end - s.begin), s.id, raw.begin == 0 && s.begin == 0});
        }
    }
    return out;
}

const HfAddedToken* HfAddedVocabulary::byId(int32_t id) const
{
    const auto it = m_byId.find(id);
    return it == m_byId.end() ? nullptr : &m_tokens[it->second];
}

int32_t HfAddedVocabulary::idOf(std::string_view content) const
{
    const auto it = m_byContent.find(std::string(content));
    return it == m_byContent.end() ? -1 : it->second;
}

} // namespace ql::detail
