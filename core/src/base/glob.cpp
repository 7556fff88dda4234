#include "quantlens/base/glob.h"

#include <string>

namespace ql {

namespace {

// Parses the set starting at pattern[i] == '['. Returns the index one past its closing ']',
// or npos when the set is not closed. `hit` tells whether c is in the set.
size_t matchSet(std::string_view p, size_t i, char c, bool& hit)
{
    size_t j = i + 1;
    bool negate = false;
    if (j < p.size() && (p[j] == '!' || p[j] == '^')) {
        negate = true;
        ++j;
    }
    bool in = false;
    // A ']' right after '[' or '[!' is a member, as in POSIX shells, so "[]]" matches "]".
    bool first = true;
    for (; j < p.size(); ++j) {
        if (p[j] == ']' && !first) {
            hit = in != negate;
            return j + 1;
        }
        first = false;
        if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
            if (p[j] <= c && c <= p[j + 2]) in = true;
            j += 2;
        } else if (p[j] == c) {
            in = true;
        }
    }
    return std::string_view::npos;
}

} // namespace

bool globMatch(std::string_view p, std::string_view t)
{
    // Iterative matching with one backtrack point (the last '*'): linear in practice and never
    // exponential, unlike naive recursion on patterns with many stars.
    size_t pi = 0, ti = 0;
    size_t starP = std::string_view::npos, starT = 0;
    while (ti < t.size()) {
        if (pi < p.size() && p[pi] == '*') {
            starP = pi++;
            starT = ti;
            continue;
        }
        if (pi < p.size()) {
            if (p[pi] == '?') {
                ++pi;
                ++ti;
                continue;
            }
            if (p[pi] == '[') {
                bool hit = false;
                const size_t next = matchSet(p, pi, t[ti], hit);
                if (next == std::string_view::npos) return false; // malformed: checkGlob reports it
                if (hit) {
                    pi = next;
                    ++ti;
                    continue;
                }
            } else if (p[pi] == t[ti]) {
                ++pi;
                ++ti;
                continue;
            }
        }
        if (starP == std::string_view::npos) return false;
        pi = starP + 1;
        ti = ++starT;
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

Expected<void> checkGlob(std::string_view p)
{
    if (p.empty()) return makeError("empty pattern");
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] != '[') continue;
        bool hit = false;
        const size_t next = matchSet(p, i, '\0', hit);
        if (next == std::string_view::npos)
            return makeError("unclosed '[' at position " + std::to_string(i) + " in glob '" + std::string(p) + "'");
        i = next - 1;
    }
    return {};
}

bool isGlobPattern(std::string_view p)
{
    return p.find_first_of("*?[") != std::string_view::npos;
}

} // namespace ql
