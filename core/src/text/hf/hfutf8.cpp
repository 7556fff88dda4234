#include "text/hf/hfutf8.h"

#include <utf8proc.h>

namespace ql::detail {

char32_t nextCodePoint(std::string_view s, size_t& i)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    const size_t n = utf8Len(b0);
    if (n == 1 || i + n > s.size()) {
        ++i;
        return b0;
    }
    char32_t cp = (n == 2) ? (b0 & 0x1F) : (n == 3) ? (b0 & 0x0F) : (b0 & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += n;
    return cp;
}

void appendUtf8(std::string& out, char32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string utf8Of(char32_t cp)
{
    std::string s;
    appendUtf8(s, cp);
    return s;
}

namespace {

// Length of the well-formed sequence at s[i], or 0 with `consumed` set to the length of the
// maximal ill-formed prefix that one U+FFFD replaces (Unicode "maximal subpart" practice).
size_t wellFormedAt(std::string_view s, size_t i, size_t& consumed)
{
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return 1;
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF)
        need = 1;
    else if (b0 == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF)
        need = 2;
    else if (b0 == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (b0 == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (b0 >= 0xF1 && b0 <= 0xF3)
        need = 3;
    else if (b0 == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else {
        consumed = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; ++k) {
        if (i + k >= s.size()) {
            consumed = k;
            return 0;
        }
        const auto b = static_cast<unsigned char>(s[i + k]);
        const unsigned char l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
        if (b < l || b > h) {
            consumed = k;
            return 0;
        }
    }
    return need + 1;
}

} // namespace

std::string sanitizeUtf8(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size());
    size_t i = 0;
    while (i < bytes.size()) {
        size_t consumed = 0;
        const size_t n = wellFormedAt(bytes, i, consumed);
        if (n > 0) {
            out.append(bytes.substr(i, n));
            i += n;
        } else {
            out.append("\xEF\xBF\xBD");
            i += consumed;
        }
    }
    return out;
}

bool isValidUtf8(std::string_view bytes)
{
    size_t i = 0;
    while (i < bytes.size()) {
        size_t consumed = 0;
        const size_t n = wellFormedAt(bytes, i, consumed);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

bool isRustWhitespace(char32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool isRustNumeric(char32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9';
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool isRustAlphabetic(char32_t c)
{
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || cat == UTF8PROC_CATEGORY_NL;
}

bool isHfPunctuation(char32_t c)
{
    if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

const std::array<char32_t, 256>& byteToUnicode()
{
    // GPT-2: printable Latin-1 bytes map to themselves, the rest to 256, 257, ... in byte order.
    static const std::array<char32_t, 256> table = [] {
        std::array<char32_t, 256> t{};
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            t[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
        }
        return t;
    }();
    return table;
}

int unicodeToByte(char32_t cp)
{
    static const std::array<int, 324> inverse = [] {
        std::array<int, 324> inv{};
        inv.fill(-1);
        const auto& fwd = byteToUnicode();
        for (int b = 0; b < 256; ++b) inv[fwd[static_cast<size_t>(b)]] = b;
        return inv;
    }();
    return cp < inverse.size() ? inverse[cp] : -1;
}

std::string byteLevelEncode(std::string_view text)
{
    const auto& table = byteToUnicode();
    std::string out;
    out.reserve(text.size() * 2);
    for (const char ch : text) appendUtf8(out, table[static_cast<unsigned char>(ch)]);
    return out;
}

} // namespace ql::detail
