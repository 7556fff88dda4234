#include "quantlens/text/hftokenizer.h"

#include "text/hf/hfaddedvocab.h"
#include "text/hf/hfbpe.h"
#include "text/hf/hfdecoders.h"
#include "text/hf/hfnormalizers.h"
#include "text/hf/hfpattern.h"
#include "text/hf/hfpretokenizers.h"
#include "text/hf/hfutf8.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ql {

namespace detail {

struct HfTokenizerData {
    std::unique_ptr<HfNormalizer> normalizer;
    std::unique_ptr<HfPreTokenizer> preTokenizer;
    std::unique_ptr<HfBpe> model;
    std::unique_ptr<HfDecoder> decoder;
    HfAddedVocabulary added;
    std::vector<int32_t> prefix;
    std::vector<int32_t> suffix;
    int32_t vocabSize = 0;
};

namespace {

// The model type HF infers for an untagged "model" block (old files carry no "type").
std::string modelType(const nlohmann::json& model)
{
    if (model.contains("type") && model["type"].is_string()) return model["type"].get<std::string>();
    if (model.contains("merges")) return "BPE";
    if (model.contains("vocab") && model["vocab"].is_array()) return "Unigram";
    if (model.contains("max_input_chars_per_word")) return "WordPiece";
    return "WordLevel";
}

// HF's AddedVocabulary::add_tokens id rule: a token in the model vocab keeps that id, any other
// gets the next id after the vocab and the added tokens so far (the file's "id" is only checked).
std::vector<HfAddedToken> parseAddedTokens(const nlohmann::json& list, const HfBpe& model)
{
    std::vector<HfAddedToken> tokens;
    if (list.is_null()) return tokens;
    if (!list.is_array()) throw HfParseError("added_tokens: not an array");
    const auto vocabSize = static_cast<int64_t>(model.vocabCount());
    int64_t maxAdded = -1;
    for (size_t k = 0; k < list.size(); ++k) {
        const auto& e = list[k];
        const std::string where = "added_tokens[" + std::to_string(k) + "]";
        if (!e.is_object() || !e.contains("content") || !e["content"].is_string())
            throw HfParseError(where + ": expected an object with a string \"content\"");
        HfAddedToken t;
        t.content = e["content"].get<std::string>();
        if (t.content.empty()) continue;
        t.special = jsonBool(e, "special", false);
        t.singleWord = jsonBool(e, "single_word", false);
        t.lstrip = jsonBool(e, "lstrip", false);
        t.rstrip = jsonBool(e, "rstrip", false);
        t.normalized = jsonBool(e, "normalized", !t.special);
        const auto existing = std::find_if(tokens.begin(), tokens.end(),
                                           [&](const auto& o) { return o.content == t.content; });
        if (existing != tokens.end()) {
            t.id = existing->id;
            *existing = t;
            continue;
        }
        if (const int32_t vid = model.tokenToId(t.content); vid >= 0) {
            t.id = vid;
        } else {
            int64_t next = vocabSize;
            if (maxAdded >= 0 && (maxAdded >= vocabSize || vocabSize == 0)) next = maxAdded + 1;
            t.id = static_cast<int32_t>(next);
        }
        maxAdded = std::max<int64_t>(maxAdded, t.id);
        tokens.push_back(std::move(t));
    }
    return tokens;
}

// Ids of the special tokens a TemplateProcessing "single" template puts around sequence A.
void templateSpecials(const nlohmann::json& pp, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix)
{
    if (!pp.is_object()) return;
    const std::string type = pp.value("type", std::string());
    if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
        for (const auto& p : pp["processors"]) templateSpecials(p, prefix, suffix);
        return;
    }
    if (type == "BertProcessing" || type == "RobertaProcessing") {
        if (pp.contains("cls") && pp["cls"].is_array() && pp["cls"].size() == 2 && pp["cls"][1].is_number_integer())
            prefix.push_back(pp["cls"][1].get<int32_t>());
        if (pp.contains("sep") && pp["sep"].is_array() && pp["sep"].size() == 2 && pp["sep"][1].is_number_integer())
            suffix.push_back(pp["sep"][1].get<int32_t>());
        return;
    }
    if (type != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array()) return;
    bool seenSequence = false;
    for (const auto& piece : pp["single"]) {
        if (piece.contains("Sequence")) {
            seenSequence = true;
            continue;
        }
        if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id")) continue;
        const auto name = piece["SpecialToken"]["id"];
        if (!name.is_string() || !pp.contains("special_tokens") ||
            !pp["special_tokens"].contains(name.get<std::string>()))
            continue;
        const auto& spec = pp["special_tokens"][name.get<std::string>()];
        if (!spec.contains("ids") || !spec["ids"].is_array()) continue;
        for (const auto& id : spec["ids"])
            if (id.is_number_integer()) (seenSequence ? suffix : prefix).push_back(id.get<int32_t>());
    }
}

} // namespace

} // namespace detail

HfTokenizer::HfTokenizer() : m_d(std::make_unique<detail::HfTokenizerData>()) {}

HfTokenizer::~HfTokenizer() = default;

Expected<std::shared_ptr<HfTokenizer>> HfTokenizer::fromFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open tokenizer file (" + std::strerror(errno) + ")");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return makeError(path + ": cannot read tokenizer file");
    return fromJson(ss.str(), path);
}

Expected<std::shared_ptr<HfTokenizer>> HfTokenizer::fromJson(std::string_view json, const std::string& origin)
{
    using namespace detail;
    std::shared_ptr<HfTokenizer> tok(new HfTokenizer());
    HfTokenizerData& d = *tok->m_d;
    std::string part = "top level"; // which part of the file is being read, for error messages
    try {
        const nlohmann::json j = nlohmann::json::parse(json.begin(), json.end());
        if (!j.is_object()) return makeError(origin + ": not a tokenizer.json (top level is not a JSON object)");

        part = "model";
        if (!j.contains("model") || !j["model"].is_object()) return makeError(origin + ": no \"model\" object");
        const auto& model = j["model"];
        const std::string type = modelType(model);
        if (type != "BPE")
            return makeError(origin + ": model type '" + type +
                             "' is not supported (only BPE tokenizer.json files are)");
        d.model = HfBpe::fromJson(model, "model");

        part = "normalizer";
        if (j.contains("normalizer")) d.normalizer = parseNormalizer(j["normalizer"], "normalizer");
        part = "pre_tokenizer";
        if (j.contains("pre_tokenizer")) d.preTokenizer = parsePreTokenizer(j["pre_tokenizer"], "pre_tokenizer");
        part = "decoder";
        if (j.contains("decoder")) d.decoder = parseDecoder(j["decoder"], "decoder");
        part = "added_tokens";
        if (j.contains("added_tokens"))
            d.added.build(parseAddedTokens(j["added_tokens"], *d.model), d.normalizer.get());
        part = "post_processor";
        if (j.contains("post_processor")) {
            // Only informative (encode never adds these), so an odd post_processor must not block loading.
            try {
                templateSpecials(j["post_processor"], d.prefix, d.suffix);
            } catch (const std::exception&) {
                d.prefix.clear();
                d.suffix.clear();
            }
        }

        d.vocabSize = d.model->maxId() + 1;
        for (const auto& t : d.added.tokens()) d.vocabSize = std::max(d.vocabSize, t.id + 1);
    } catch (const nlohmann::json::parse_error& e) {
        return makeError(origin + ": invalid JSON (" + e.what() + ")");
    } catch (const nlohmann::json::exception& e) {
        return makeError(origin + ": malformed \"" + part + "\" (" + e.what() + ")");
    } catch (const HfParseError& e) {
        return makeError(origin + ": " + e.what());
    } catch (const std::exception& e) {
        return makeError(origin + ": cannot read \"" + part + "\" (" + e.what() + ")");
    }
    return tok;
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text) const
{
    // Python hands the reference valid Unicode; ill-formed bytes become U+FFFD as errors="replace" does.
    std::string cleaned;
    if (!detail::isValidUtf8(text)) {
        cleaned = detail::sanitizeUtf8(text);
        text = cleaned;
    }
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    std::vector<detail::HfPiece> pieces;
    for (auto& seg : m_d->added.extractAndNormalize(text, m_d->normalizer.get())) {
        if (seg.id >= 0) {
            ids.push_back(seg.id);
            continue;
        }
        pieces.clear();
        pieces.push_back({std::move(seg.text), seg.atOrigin});
        if (m_d->preTokenizer) m_d->preTokenizer->preTokenize(pieces);
        for (const auto& p : pieces) m_d->model->tokenize(p.text, ids);
    }
    return ids;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids) const
{
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const int32_t id : ids) {
        if (const auto* added = m_d->added.byId(id))
            tokens.push_back(added->content);
        else if (const std::string* piece = m_d->model->idToToken(id))
            tokens.push_back(*piece);
    }
    std::string out;
    if (!m_d->decoder) { // HF joins undecoded tokens with spaces
        for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
        return out;
    }
    m_d->decoder->decodeChain(tokens);
    for (const auto& t : tokens) out += t;
    return out;
}

std::string HfTokenizer::tokenText(int32_t id) const
{
    if (const auto* added = m_d->added.byId(id)) return added->content;
    if (const std::string* piece = m_d->model->idToToken(id)) return *piece;
    return {};
}

int32_t HfTokenizer::vocabSize() const
{
    return m_d->vocabSize;
}

int32_t HfTokenizer::tokenId(std::string_view piece) const
{
    const int32_t added = m_d->added.idOf(piece);
    return added >= 0 ? added : m_d->model->tokenToId(piece);
}

const std::vector<std::pair<std::string, std::string>>& HfTokenizer::merges() const
{
    return m_d->model->merges();
}

bool HfTokenizer::isAdded(int32_t id) const
{
    return m_d->added.byId(id) != nullptr;
}

bool HfTokenizer::isSpecial(int32_t id) const
{
    const auto* t = m_d->added.byId(id);
    return t && t->special;
}

int32_t HfTokenizer::unkId() const
{
    return m_d->model->unkId();
}

bool HfTokenizer::isByteLevel() const
{
    return m_d->preTokenizer && m_d->preTokenizer->isByteLevel();
}

bool HfTokenizer::byteFallback() const
{
    return m_d->model->byteFallback();
}

const std::vector<int32_t>& HfTokenizer::postProcessorPrefix() const
{
    return m_d->prefix;
}

const std::vector<int32_t>& HfTokenizer::postProcessorSuffix() const
{
    return m_d->suffix;
}

} // namespace ql
