#include "quantlens/text/tokenizer.h"

#include "quantlens/text/hftokenizer.h"
#include "quantlens/text/sptokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace ql {

namespace {

nlohmann::json readJsonOrNull(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in) return nullptr;
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str(), nullptr, false);
}

// tokenizer_config.json spells a special token as a string or as {"content": ...}.
std::string tokenContent(const nlohmann::json& v)
{
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return {};
}

int intOr(const nlohmann::json& j, const char* key, int fallback)
{
    if (!j.is_object() || !j.contains(key)) return fallback;
    const auto& v = j[key];
    if (v.is_number_integer()) return v.get<int>();
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();
    return fallback;
}

} // namespace

Expected<std::shared_ptr<Tokenizer>> loadTokenizer(const std::string& modelDir)
{
    const fs::path dir(modelDir);
    const fs::path jsonPath = dir / "tokenizer.json";
    const fs::path spPath = dir / "tokenizer.model";
    const nlohmann::json cfg = readJsonOrNull(dir / "tokenizer_config.json");
    const nlohmann::json modelCfg = readJsonOrNull(dir / "config.json");

    std::shared_ptr<Tokenizer> tok;
    bool defaultAddBos = false;
    int32_t bos = -1, eos = -1;
    // transformers prefers the fast tokenizer.json whenever it exists.
    if (fs::exists(jsonPath)) {
        auto t = HfTokenizer::fromFile(jsonPath.string());
        if (!t) return t.error();
        // A post-processor template that puts a special token first means the model adds BOS.
        defaultAddBos = !(*t)->postProcessorPrefix().empty();
        if (defaultAddBos) bos = (*t)->postProcessorPrefix().front();
        tok = *t;
    } else if (fs::exists(spPath)) {
        auto t = SpTokenizer::fromFile(spPath.string());
        if (!t) return t.error();
        bos = (*t)->modelBosId();
        eos = (*t)->modelEosId();
        tok = *t;
        defaultAddBos = true; // LlamaTokenizer's default
    } else {
        return makeError(modelDir + ": no tokenizer (expected tokenizer.json or tokenizer.model)");
    }

    bos = intOr(modelCfg, "bos_token_id", bos);
    eos = intOr(modelCfg, "eos_token_id", eos);
    if (cfg.is_object()) {
        if (cfg.contains("bos_token")) {
            const std::string s = tokenContent(cfg["bos_token"]);
            if (!s.empty() && tok->tokenId(s) >= 0) bos = tok->tokenId(s);
        }
        if (cfg.contains("eos_token")) {
            const std::string s = tokenContent(cfg["eos_token"]);
            if (!s.empty() && tok->tokenId(s) >= 0) eos = tok->tokenId(s);
        }
        if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
            defaultAddBos = cfg["add_bos_token"].get<bool>();
    }
    if (bos >= tok->vocabSize()) bos = -1;
    if (eos >= tok->vocabSize()) eos = -1;
    tok->setSpecials(bos, eos, defaultAddBos);
    return tok;
}

} // namespace ql
