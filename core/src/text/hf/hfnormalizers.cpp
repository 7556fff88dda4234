#include "text/hf/hfnormalizers.h"

#include "text/hf/hfpattern.h"
#include "text/hf/hfutf8.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstdlib>
#include <vector>

namespace ql::detail {

namespace {

class SequenceNormalizer final : public HfNormalizer {
public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<HfNormalizer>> parts) : m_parts(std::move(parts)) {}
    void normalize(std::string& text) const override
    {
        for (const auto& p : m_parts) p->normalize(text);
    }

private:
    std::vector<std::unique_ptr<HfNormalizer>> m_parts;
};

class PrependNormalizer final : public HfNormalizer {
public:
    explicit PrependNormalizer(std::string prefix) : m_prefix(std::move(prefix)) {}
    void normalize(std::string& text) const override
    {
        // HF prepends to non-empty strings only.
        if (!text.empty()) text.insert(0, m_prefix);
    }

private:
    std::string m_prefix;
};

class ReplaceNormalizer final : public HfNormalizer {
public:
    ReplaceNormalizer(HfPattern pattern, std::string content)
        : m_pattern(std::move(pattern)), m_content(std::move(content))
    {}
    void normalize(std::string& text) const override { text = replaceAll(text, m_pattern, m_content); }

private:
    HfPattern m_pattern;
    std::string m_content;
};

class UnicodeNormalizer final : public HfNormalizer {
public:
    explicit UnicodeNormalizer(int options) : m_options(options) {}
    void normalize(std::string& text) const override
    {
        if (text.empty()) return;
        utf8proc_uint8_t* out = nullptr;
        const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &out,
                                    static_cast<utf8proc_option_t>(m_options));
        if (n >= 0 && out) text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
        std::free(out);
    }

private:
    int m_options;
};

class LowercaseNormalizer final : public HfNormalizer {
public:
    void normalize(std::string& text) const override
    {
        std::string out;
        out.reserve(text.size());
        size_t i = 0;
        while (i < text.size()) {
            const char32_t c = nextCodePoint(text, i);
            if (c == 0x130) { // the one unconditional multi-character lowercase mapping (Rust to_lowercase)
                out.append("i\xCC\x87");
                continue;
            }
            appendUtf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
        }
        text = std::move(out);
    }
};

class StripNormalizer final : public HfNormalizer {
public:
    StripNormalizer(bool left, bool right) : m_left(left), m_right(right) {}
    void normalize(std::string& text) const override
    {
        size_t begin = 0, end = text.size();
        if (m_left) {
            size_t i = 0;
            while (i < end) {
                const size_t at = i;
                if (!isRustWhitespace(nextCodePoint(text, i))) {
                    begin = at;
                    break;
                }
                begin = i;
            }
        }
        if (m_right) {
            while (end > begin) {
                size_t start = end - 1;
                while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
                size_t i = start;
                if (!isRustWhitespace(nextCodePoint(text, i))) break;
                end = start;
            }
        }
        text = text.substr(begin, end - begin);
    }

private:
    bool m_left, m_right;
};

class StripAccentsNormalizer final : public HfNormalizer {
public:
    void normalize(std::string& text) const override
    {
        std::string out;
        out.reserve(text.size());
        size_t i = 0;
        while (i < text.size()) {
            const size_t at = i;
            const char32_t c = nextCodePoint(text, i);
            const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
            if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME) continue;
            out.append(text, at, i - at);
        }
        text = std::move(out);
    }
};

class ByteLevelNormalizer final : public HfNormalizer {
public:
    void normalize(std::string& text) const override { text = byteLevelEncode(text); }
};

std::string stringField(const nlohmann::json& j, const char* key, const std::string& where)
{
    if (!j.contains(key) || !j[key].is_string()) throw HfParseError(where + ": missing string field '" + key + "'");
    return j[key].get<std::string>();
}

} // namespace

std::unique_ptr<HfNormalizer> parseNormalizer(const nlohmann::json& j, const std::string& where)
{
    if (j.is_null()) return nullptr;
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
        throw HfParseError(where + ": normalizer must be an object with a \"type\"");
    const std::string type = j["type"].get<std::string>();
    if (type == "Sequence") {
        std::vector<std::unique_ptr<HfNormalizer>> parts;
        const auto& list = j.at("normalizers");
        for (size_t k = 0; k < list.size(); ++k)
            if (auto n = parseNormalizer(list[k], where + ".normalizers[" + std::to_string(k) + "]"))
                parts.push_back(std::move(n));
        return std::make_unique<SequenceNormalizer>(std::move(parts));
    }
    if (type == "Prepend") return std::make_unique<PrependNormalizer>(stringField(j, "prepend", where));
    if (type == "Replace")
        return std::make_unique<ReplaceNormalizer>(HfPattern::fromJson(j.at("pattern"), where + ".pattern"),
                                                   stringField(j, "content", where));
    if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    if (type == "NFKC")
        return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (type == "NFKD")
        return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
    if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
    if (type == "Strip") // HF writes strip_left / strip_right; "left" / "right" are the Python argument names
        return std::make_unique<StripNormalizer>(jsonBool(j, "strip_left", jsonBool(j, "left", true)),
                                                 jsonBool(j, "strip_right", jsonBool(j, "right", true)));
    if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
    if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
    throw HfParseError(where + ": normalizer type '" + type +
                       "' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, "
                       "Lowercase, Strip, StripAccents, ByteLevel)");
}

} // namespace ql::detail
