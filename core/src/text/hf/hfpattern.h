#pragma once

// Patterns and splitting as Hugging Face tokenizers' NormalizedString does them: a pattern
// yields spans covering the whole text, flagged match / no match, and a split behaviour
// decides which spans become pieces. Regexes use PCRE2 in place of Oniguruma.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ql::detail {

/// Internal parse failure; caught by HfTokenizer and turned into ql::Error with the file name.
class HfParseError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One span of a text: [begin, end) and whether the pattern matched it.
struct MatchSpan {
    size_t begin = 0;
    size_t end = 0;
    bool isMatch = false;
};

/// A compiled PCRE2 regex (UTF, Unicode properties, JIT when available); thread-safe to use.
class HfRegex {
public:
    /// Compiles pattern; throws HfParseError naming `where` when PCRE2 rejects it.
    HfRegex(const std::string& pattern, const std::string& where);
    ~HfRegex();
    HfRegex(const HfRegex&) = delete;
    HfRegex& operator=(const HfRegex&) = delete;
    /// Non-overlapping matches left to right; an empty match right after the previous match is
    /// skipped, as the onig crate's find_iter does. text must be valid UTF-8.
    std::vector<std::pair<size_t, size_t>> findAll(std::string_view text) const;

private:
    void* m_code = nullptr; // pcre2_code_8*, kept opaque so pcre2.h stays out of this header
};

/// What Split, Replace and friends look for.
class HfPattern {
public:
    enum class Kind { Literal, Regex, Predicate, CodePoint };
    /// A literal string (HF escapes String patterns into a regex; literal search is the same).
    static HfPattern literal(std::string s);
    /// A regex pattern.
    static HfPattern regex(const std::string& pattern, const std::string& where);
    /// Every single character for which pred is true is one match.
    static HfPattern predicate(bool (*pred)(char32_t));
    /// Every occurrence of one character is one match.
    static HfPattern codePoint(char32_t cp);
    /// Parses {"String": ...} or {"Regex": ...}.
    static HfPattern fromJson(const nlohmann::json& j, const std::string& where);

    /// Spans covering text, as HF's Pattern::find_matches (one empty non-match for empty text).
    std::vector<MatchSpan> findMatches(std::string_view text) const;

private:
    Kind m_kind = Kind::Literal;
    std::string m_literal;
    std::shared_ptr<const HfRegex> m_regex;
    bool (*m_pred)(char32_t) = nullptr;
    char32_t m_cp = 0;
};

/// HF's SplitDelimiterBehavior.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

/// Parses "Removed", "Isolated", ... ; throws HfParseError for anything else.
SplitBehavior parseSplitBehavior(const nlohmann::json& j, const std::string& where);

/// Flips the match flag of every span (HF's Invert pattern).
void invertSpans(std::vector<MatchSpan>& spans);

/// The [begin, end) ranges a split keeps, in order (empty ranges included; callers drop them).
std::vector<std::pair<size_t, size_t>> splitRanges(const std::vector<MatchSpan>& spans, SplitBehavior behavior);

/// j[key] as a bool; fallback when absent or null (nlohmann's value() throws on null).
bool jsonBool(const nlohmann::json& j, const char* key, bool fallback);
/// j[key] as an integer; fallback when absent or null.
int64_t jsonInt(const nlohmann::json& j, const char* key, int64_t fallback);

/// Replaces every match of pattern in text by content.
std::string replaceAll(std::string_view text, const HfPattern& pattern, std::string_view content);

} // namespace ql::detail
