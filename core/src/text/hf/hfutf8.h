#pragma once

// UTF-8 and Unicode helpers shared by the Hugging Face tokenizer pieces. The character
// predicates mirror Rust's `char` methods, because that is what the reference uses.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ql::detail {

/// Byte length of the UTF-8 sequence that starts with lead byte b (1 for stray bytes).
inline size_t utf8Len(unsigned char b)
{
    if (b < 0x80) return 1;
    if ((b & 0xE0) == 0xC0) return 2;
    if ((b & 0xF0) == 0xE0) return 3;
    if ((b & 0xF8) == 0xF0) return 4;
    return 1;
}

/// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
char32_t nextCodePoint(std::string_view s, size_t& i);
/// Appends the UTF-8 encoding of cp.
void appendUtf8(std::string& out, char32_t cp);
/// The UTF-8 encoding of cp.
std::string utf8Of(char32_t cp);

/// Replaces every ill-formed UTF-8 subsequence with U+FFFD (maximal-subpart rule, as Rust's
/// from_utf8_lossy and Python's errors="replace" do), so later stages see valid UTF-8.
std::string sanitizeUtf8(std::string_view bytes);
/// True when bytes are well-formed UTF-8.
bool isValidUtf8(std::string_view bytes);

/// Rust char::is_whitespace (Unicode White_Space).
bool isRustWhitespace(char32_t c);
/// Rust char::is_numeric (general categories Nd, Nl, No).
bool isRustNumeric(char32_t c);
/// Rust char::is_alphabetic, approximated by letters and letter numbers.
bool isRustAlphabetic(char32_t c);
/// Rust char::is_alphanumeric.
inline bool isRustAlphanumeric(char32_t c)
{
    return isRustAlphabetic(c) || isRustNumeric(c);
}
/// The BERT-style punctuation test HF uses: ASCII punctuation or a Unicode P* category.
bool isHfPunctuation(char32_t c);

/// The GPT-2 bytes-to-unicode table: byte -> printable code point.
const std::array<char32_t, 256>& byteToUnicode();
/// Inverse of byteToUnicode: code point -> byte, or -1 when cp is not in the table.
int unicodeToByte(char32_t cp);
/// Maps every byte of text to its GPT-2 printable code point (UTF-8 encoded).
std::string byteLevelEncode(std::string_view text);

} // namespace ql::detail
