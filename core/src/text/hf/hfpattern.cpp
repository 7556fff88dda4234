#include "text/hf/hfpattern.h"

#include "text/hf/hfutf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace ql::detail {

namespace {

// JIT matching needs more stack than PCRE2's 32 KiB default for patterns such as
// `\s+(?!\S)` on long runs of whitespace; one stack per thread keeps matching thread-safe.
struct PcreThreadState {
    pcre2_match_context* context = nullptr;
    pcre2_jit_stack* stack = nullptr;
    PcreThreadState()
    {
        context = pcre2_match_context_create(nullptr);
        stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
        if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
    }
    ~PcreThreadState()
    {
        if (stack) pcre2_jit_stack_free(stack);
        if (context) pcre2_match_context_free(context);
    }
};

pcre2_match_context* threadMatchContext()
{
    thread_local PcreThreadState state;
    return state.context;
}

} // namespace

HfRegex::HfRegex(const std::string& pattern, const std::string& where)
{
    int errorCode = 0;
    PCRE2_SIZE errorOffset = 0;
    // Oniguruma's Ruby syntax (what HF uses) treats ^ and $ as line anchors: hence MULTILINE.
    const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &errorCode,
                                     &errorOffset, nullptr);
    if (!code) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(errorCode, buffer, sizeof buffer);
        throw HfParseError(where + ": regex '" + pattern + "' is not supported (" +
                           reinterpret_cast<const char*>(buffer) + " at offset " + std::to_string(errorOffset) + ")");
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); // falls back to the interpreter when JIT is absent
    m_code = code;
}

HfRegex::~HfRegex()
{
    pcre2_code_free(static_cast<pcre2_code*>(m_code));
}

std::vector<std::pair<size_t, size_t>> HfRegex::findAll(std::string_view text) const
{
    std::vector<std::pair<size_t, size_t>> out;
    auto* code = static_cast<pcre2_code*>(m_code);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    if (!md) return out;
    pcre2_match_context* ctx = threadMatchContext();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    size_t lastMatchEnd = static_cast<size_t>(-1);
    while (pos <= text.size()) {
        // The text was made valid UTF-8 once up front; re-checking it per call would be quadratic.
        const int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, ctx);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t s = ov[0], e = ov[1];
        if (s == e && e == lastMatchEnd) {
            if (e >= text.size()) break;
            pos = e + utf8Len(static_cast<unsigned char>(text[e]));
            continue;
        }
        out.emplace_back(s, e);
        pos = e;
        lastMatchEnd = e;
    }
    pcre2_match_data_free(md);
    return out;
}

HfPattern HfPattern::literal(std::string s)
{
    HfPattern p;
    p.m_kind = Kind::Literal;
    p.m_literal = std::move(s);
    return p;
}

HfPattern HfPattern::regex(const std::string& pattern, const std::string& where)
{
    HfPattern p;
    p.m_kind = Kind::Regex;
    p.m_regex = std::make_shared<const HfRegex>(pattern, where);
    return p;
}

HfPattern HfPattern::predicate(bool (*pred)(char32_t))
{
    HfPattern p;
    p.m_kind = Kind::Predicate;
    p.m_pred = pred;
    return p;
}

HfPattern HfPattern::codePoint(char32_t cp)
{
    HfPattern p;
    p.m_kind = Kind::CodePoint;
    p.m_cp = cp;
    return p;
}

HfPattern HfPattern::fromJson(const nlohmann::json& j, const std::string& where)
{
    if (j.is_object() && j.contains("String") && j["String"].is_string())
        return literal(j["String"].get<std::string>());
    if (j.is_object() && j.contains("Regex") && j["Regex"].is_string())
        return regex(j["Regex"].get<std::string>(), where);
    throw HfParseError(where + ": pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + j.dump());
}

std::vector<MatchSpan> HfPattern::findMatches(std::string_view text) const
{
    std::vector<MatchSpan> spans;
    if (text.empty()) {
        spans.push_back({0, 0, false});
        return spans;
    }
    if (m_kind == Kind::Predicate || m_kind == Kind::CodePoint) {
        // Each matching character is a match of its own, as HF's Fn(char) -> bool pattern.
        size_t last = 0, i = 0;
        while (i < text.size()) {
            const size_t start = i;
            const char32_t c = nextCodePoint(text, i);
            const bool hit = (m_kind == Kind::CodePoint) ? (c == m_cp) : m_pred(c);
            if (!hit) continue;
            if (last < start) spans.push_back({last, start, false});
            spans.push_back({start, i, true});
            last = i;
        }
        if (last < text.size()) spans.push_back({last, text.size(), false});
        return spans;
    }
    std::vector<std::pair<size_t, size_t>> hits;
    if (m_kind == Kind::Regex) {
        hits = m_regex->findAll(text);
    } else if (!m_literal.empty()) {
        for (size_t at = text.find(m_literal); at != std::string_view::npos;
             at = text.find(m_literal, at + m_literal.size()))
            hits.emplace_back(at, at + m_literal.size());
    }
    size_t prev = 0;
    for (const auto& [s, e] : hits) {
        if (prev != s) spans.push_back({prev, s, false});
        spans.push_back({s, e, true});
        prev = e;
    }
    if (prev != text.size()) spans.push_back({prev, text.size(), false});
    return spans;
}

SplitBehavior parseSplitBehavior(const nlohmann::json& j, const std::string& where)
{
    const std::string s = j.is_string() ? j.get<std::string>() : j.dump();
    if (s == "Removed") return SplitBehavior::Removed;
    if (s == "Isolated") return SplitBehavior::Isolated;
    if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
    if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
    if (s == "Contiguous") return SplitBehavior::Contiguous;
    throw HfParseError(where + ": unknown split behavior '" + s + "'");
}

void invertSpans(std::vector<MatchSpan>& spans)
{
    for (auto& s : spans) s.isMatch = !s.isMatch;
}

std::vector<std::pair<size_t, size_t>> splitRanges(const std::vector<MatchSpan>& spans, SplitBehavior behavior)
{
    std::vector<std::pair<size_t, size_t>> out;
    out.reserve(spans.size());
    bool previousMatch = false;
    switch (behavior) {
    case SplitBehavior::Isolated:
        for (const auto& s : spans) out.emplace_back(s.begin, s.end);
        break;
    case SplitBehavior::Removed:
        for (const auto& s : spans)
            if (!s.isMatch) out.emplace_back(s.begin, s.end);
        break;
    case SplitBehavior::Contiguous:
        for (const auto& s : spans) {
            if (s.isMatch == previousMatch && !out.empty())
                out.back().second = s.end;
            else
                out.emplace_back(s.begin, s.end);
            previousMatch = s.isMatch;
        }
        break;
    case SplitBehavior::MergedWithPrevious:
        for (const auto& s : spans) {
            if (s.isMatch && !previousMatch && !out.empty())
                out.back().second = s.end;
            else
                out.emplace_back(s.begin, s.end);
            previousMatch = s.isMatch;
        }
        break;
    case SplitBehavior::MergedWithNext:
        // HF folds from the right: a match joins the piece that follows it.
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
            if (it->isMatch && !previousMatch && !out.empty())
                out.back().first = it->begin;
            else
                out.emplace_back(it->begin, it->end);
            previousMatch = it->isMatch;
        }
        std::reverse(out.begin(), out.end());
        break;
    }
    return out;
}

bool jsonBool(const nlohmann::json& j, const char* key, bool fallback)
{
    if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_boolean())
        throw HfParseError(std::string("'") + key + "' must be true or false, got " + j[key].dump());
    return j[key].get<bool>();
}

int64_t jsonInt(const nlohmann::json& j, const char* key, int64_t fallback)
{
    if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_number_integer())
        throw HfParseError(std::string("'") + key + "' must be an integer, got " + j[key].dump());
    return j[key].get<int64_t>();
}

std::string replaceAll(std::string_view text, const HfPattern& pattern, std::string_view content)
{
    std::string out;
    out.reserve(text.size());
    for (const auto& s : pattern.findMatches(text)) {
        if (s.isMatch)
            out.append(content);
        else
            out.append(text.substr(s.begin, s.end - s.begin));
    }
    return out;
}

} // namespace ql::detail
