#include "text/hf/hfdecoders.h"

#include "text/hf/hfpattern.h"
#include "text/hf/hfutf8.h"

#include <nlohmann/json.hpp>

namespace ql::detail {

namespace {

class SequenceDecoder final : public HfDecoder {
public:
    explicit SequenceDecoder(std::vector<std::unique_ptr<HfDecoder>> parts) : m_parts(std::move(parts)) {}
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        for (const auto& p : m_parts) p->decodeChain(tokens);
    }

private:
    std::vector<std::unique_ptr<HfDecoder>> m_parts;
};

class ByteLevelDecoder final : public HfDecoder {
public:
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        std::string bytes;
        for (const auto& t : tokens) {
            // A token with any character outside the byte table contributes its raw UTF-8 instead.
            std::string mapped;
            bool allMapped = true;
            size_t i = 0;
            while (i < t.size()) {
                const int b = unicodeToByte(nextCodePoint(t, i));
                if (b < 0) {
                    allMapped = false;
                    break;
                }
                mapped.push_back(static_cast<char>(b));
            }
            bytes += allMapped ? mapped : t;
        }
        tokens.assign(1, sanitizeUtf8(bytes));
    }
};

class ReplaceDecoder final : public HfDecoder {
public:
    ReplaceDecoder(HfPattern pattern, std::string content)
        : m_pattern(std::move(pattern)), m_content(std::move(content))
    {}
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        for (auto& t : tokens) t = replaceAll(t, m_pattern, m_content);
    }

private:
    HfPattern m_pattern;
    std::string m_content;
};

int hexDigit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class ByteFallbackDecoder final : public HfDecoder {
public:
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        std::vector<std::string> out;
        std::string pending;
        const auto flush = [&] {
            if (pending.empty()) return;
            // Bytes that do not form valid UTF-8 become one U+FFFD each, as HF does.
            if (isValidUtf8(pending))
                out.push_back(pending);
            else
                out.insert(out.end(), pending.size(), "\xEF\xBF\xBD");
            pending.clear();
        };
        for (auto& t : tokens) {
            const bool isByte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hexDigit(t[3]) >= 0 &&
                                hexDigit(t[4]) >= 0;
            if (isByte) {
                pending.push_back(static_cast<char>(hexDigit(t[3]) * 16 + hexDigit(t[4])));
                continue;
            }
            flush();
            out.push_back(std::move(t));
        }
        flush();
        tokens = std::move(out);
    }
};

class FuseDecoder final : public HfDecoder {
public:
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, all);
    }
};

class StripDecoder final : public HfDecoder {
public:
    StripDecoder(char32_t content, size_t start, size_t stop) : m_content(content), m_start(start), m_stop(stop) {}
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        for (auto& t : tokens) {
            std::vector<char32_t> chars;
            for (size_t i = 0; i < t.size();) chars.push_back(nextCodePoint(t, i));
            size_t begin = 0, end = chars.size();
            while (begin < end && begin < m_start && chars[begin] == m_content) ++begin;
            for (size_t k = 0; k < m_stop && end > begin && chars[end - 1] == m_content; ++k) --end;
            std::string s;
            for (size_t k = begin; k < end; ++k) appendUtf8(s, chars[k]);
            t = std::move(s);
        }
    }

private:
    char32_t m_content;
    size_t m_start, m_stop;
};

class MetaspaceDecoder final : public HfDecoder {
public:
    MetaspaceDecoder(char32_t replacement, bool dropFirst) : m_replacement(replacement), m_dropFirst(dropFirst) {}
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        for (size_t k = 0; k < tokens.size(); ++k) {
            std::string s;
            for (size_t i = 0; i < tokens[k].size();) {
                const char32_t c = nextCodePoint(tokens[k], i);
                // HF drops every replacement char of the first token when a prefix was prepended.
                if (c == m_replacement) {
                    if (!(k == 0 && m_dropFirst)) s.push_back(' ');
                } else {
                    appendUtf8(s, c);
                }
            }
            tokens[k] = std::move(s);
        }
    }

private:
    char32_t m_replacement;
    bool m_dropFirst;
};

class BpeSuffixDecoder final : public HfDecoder {
public:
    explicit BpeSuffixDecoder(std::string suffix) : m_suffix(std::move(suffix)) {}
    void decodeChain(std::vector<std::string>& tokens) const override
    {
        const HfPattern p = HfPattern::literal(m_suffix);
        for (size_t k = 0; k < tokens.size(); ++k)
            tokens[k] = replaceAll(tokens[k], p, k + 1 == tokens.size() ? "" : " ");
    }

private:
    std::string m_suffix;
};

char32_t oneChar(const nlohmann::json& j, const char* key, char32_t fallback, const std::string& where)
{
    if (!j.contains(key)) return fallback;
    const std::string s = j.at(key).get<std::string>();
    size_t i = 0;
    const char32_t c = s.empty() ? 0 : nextCodePoint(s, i);
    if (s.empty() || i != s.size())
        throw HfParseError(where + ": '" + key + "' must be one character, got '" + s + "'");
    return c;
}

} // namespace

std::unique_ptr<HfDecoder> parseDecoder(const nlohmann::json& j, const std::string& where)
{
    if (j.is_null()) return nullptr;
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
        throw HfParseError(where + ": decoder must be an object with a \"type\"");
    const std::string type = j["type"].get<std::string>();
    if (type == "Sequence") {
        std::vector<std::unique_ptr<HfDecoder>> parts;
        const auto& list = j.at("decoders");
        for (size_t k = 0; k < list.size(); ++k)
            if (auto d = parseDecoder(list[k], where + ".decoders[" + std::to_string(k) + "]"))
                parts.push_back(std::move(d));
        return std::make_unique<SequenceDecoder>(std::move(parts));
    }
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "Replace")
        return std::make_unique<ReplaceDecoder>(HfPattern::fromJson(j.at("pattern"), where + ".pattern"),
                                                j.at("content").get<std::string>());
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip")
        return std::make_unique<StripDecoder>(oneChar(j, "content", U' ', where),
                                              static_cast<size_t>(jsonInt(j, "start", 0)),
                                              static_cast<size_t>(jsonInt(j, "stop", 0)));
    if (type == "Metaspace") {
        bool dropFirst = jsonBool(j, "add_prefix_space", true);
        if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string())
            dropFirst = j["prepend_scheme"].get<std::string>() != "never";
        return std::make_unique<MetaspaceDecoder>(oneChar(j, "replacement", U'\u2581', where), dropFirst);
    }
    if (type == "BPEDecoder")
        return std::make_unique<BpeSuffixDecoder>(j.contains("suffix") ? j["suffix"].get<std::string>() : "</w>");
    throw HfParseError(where + ": decoder type '" + type +
                       "' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                       "Metaspace, BPEDecoder)");
}

} // namespace ql::detail
