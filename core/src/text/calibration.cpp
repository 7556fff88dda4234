#include "quantlens/text/calibration.h"

#include "quantlens/model/safetensors.h"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <utf8proc.h>

#include <fstream>
#include <memory>
#include <random>
#include <sstream>

namespace ql {

namespace {

// SHA-256 of windows' token ids as little-endian int32, in order.
std::string hashWindows(const std::vector<std::vector<int32_t>>& windows)
{
    std::vector<unsigned char> bytes;
    for (const auto& w : windows)
        for (int32_t id : w)
            for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<unsigned char>(uint32_t(id) >> (8 * b)));
    return sha256Hex(bytes.data(), bytes.size());
}

} // namespace

const char* samplingName(Sampling s)
{
    return s == Sampling::Contiguous ? "contiguous" : "random";
}

std::optional<Sampling> parseSampling(std::string_view name)
{
    if (name == "contiguous") return Sampling::Contiguous;
    if (name == "random") return Sampling::Random;
    return std::nullopt;
}

Expected<void> checkText(std::string_view text, const std::string& path)
{
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    for (size_t i = 0; i < text.size();) {
        utf8proc_int32_t cp = 0;
        const utf8proc_ssize_t n = utf8proc_iterate(p + i, utf8proc_ssize_t(text.size() - i), &cp);
        if (n <= 0)
            return makeError(path + ": not text: invalid UTF-8 at byte " + std::to_string(i) + " (a binary file?)");
        if (cp == 0)
            return makeError(path + ": not text: a NUL byte at byte " + std::to_string(i) + " (a binary file?)");
        i += size_t(n);
    }
    return {};
}

Expected<std::string> readCalibrationText(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open the calibration file");
    const bool jsonl = path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
    if (!jsonl) {
        std::stringstream ss;
        ss << in.rdbuf();
        if (ss.str().empty()) return makeError(path + ": the calibration file is empty");
        if (auto ok = checkText(ss.str(), path); !ok) return ok.error();
        return ss.str();
    }
    std::string out, line;
    int lineNo = 0;
    while (std::getline(in, line)) {
        ++lineNo;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) return makeError(path + ":" + std::to_string(lineNo) + ": not a JSON object");
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
            return makeError(path + ":" + std::to_string(lineNo) + ": line has no \"text\" string field");
        if (!out.empty()) out += "\n\n";
        out += j["text"].get<std::string>();
    }
    if (out.empty()) return makeError(path + ": the calibration file has no text");
    return out;
}

Expected<CalibrationSet> makeCalibrationSet(const std::string& text, const Tokenizer& tokenizer,
                                            const CalibrationSpec& spec)
{
    if (spec.samples <= 0) return makeError("--samples must be positive, got " + std::to_string(spec.samples));
    if (spec.seqlen <= 1) return makeError("--seqlen must be at least 2, got " + std::to_string(spec.seqlen));
    if (spec.heldOut < 0) return makeError("held-out windows must be 0 or more, got " + std::to_string(spec.heldOut));
    const std::vector<int32_t> all = tokenizer.encode(text);
    CalibrationSet set;
    set.spec = spec;
    set.sourceTokens = static_cast<int64_t>(all.size());
    // Held-out windows are the tail of the text; calibration windows come only from before it.
    const int64_t heldTokens = int64_t(spec.heldOut) * spec.seqlen;
    const int64_t n = set.sourceTokens - heldTokens;
    const std::string heldNote = spec.heldOut ? " (after keeping " + std::to_string(heldTokens) +
                                                    " tokens apart for held-out windows)"
                                              : std::string();
    if (n < 0)
        return makeError("the calibration text has " + std::to_string(set.sourceTokens) + " tokens, fewer than the " +
                         std::to_string(heldTokens) + " of " + std::to_string(spec.heldOut) + " held-out windows");
    for (int i = 0; i < spec.heldOut; ++i)
        set.heldOutWindows.emplace_back(all.begin() + n + int64_t(i) * spec.seqlen,
                                        all.begin() + n + int64_t(i + 1) * spec.seqlen);
    const std::vector<int32_t> ids(all.begin(), all.begin() + n);
    if (spec.sampling == Sampling::Contiguous) {
        const int64_t need = int64_t(spec.samples) * spec.seqlen;
        if (n < need)
            return makeError("the calibration text has " + std::to_string(n) + " tokens" + heldNote + "; " +
                             std::to_string(spec.samples) + " contiguous windows of " + std::to_string(spec.seqlen) +
                             " need " + std::to_string(need));
        for (int i = 0; i < spec.samples; ++i)
            set.windows.emplace_back(ids.begin() + int64_t(i) * spec.seqlen,
                                     ids.begin() + int64_t(i + 1) * spec.seqlen);
    } else {
        if (n < spec.seqlen)
            return makeError("the calibration text has " + std::to_string(n) + " tokens" + heldNote +
                             ", fewer than one window of " + std::to_string(spec.seqlen));
        std::mt19937_64 rng(spec.seed);
        std::uniform_int_distribution<int64_t> start(0, n - spec.seqlen);
        for (int i = 0; i < spec.samples; ++i) {
            const int64_t s = start(rng);
            set.windows.emplace_back(ids.begin() + s, ids.begin() + s + spec.seqlen);
        }
    }
    set.heldOutSha256 = hashWindows(set.heldOutWindows);
    set.sha256 = hashWindows(set.windows);
    set.textSha256 = sha256Hex(text.data(), text.size());
    return set;
}

namespace {

struct DigestDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string hex(const unsigned char* d, unsigned n)
{
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < n; ++i) {
        s += digits[d[i] >> 4];
        s += digits[d[i] & 15];
    }
    return s;
}

} // namespace

std::string sha256Hex(const void* data, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data, size, md, &len, EVP_sha256(), nullptr);
    return hex(md, len);
}

Expected<std::string> sha256OfFiles(const std::vector<std::string>& paths)
{
    std::unique_ptr<EVP_MD_CTX, DigestDeleter> ctx(EVP_MD_CTX_new());
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    for (const auto& p : paths) {
        auto f = MappedFile::open(p);
        if (!f) return f.error();
        EVP_DigestUpdate(ctx.get(), (*f)->data(), (*f)->size());
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    return hex(md, len);
}

} // namespace ql
