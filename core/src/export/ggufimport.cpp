#include "quantlens/export/ggufimport.h"

#include "export/modelfiles.h"

#include "export/ggufvocab.h"
#include "quantlens/export/ggufexport.h"
#include "quantlens/model/model.h"
#include "quantlens/model/safetensorswriter.h"
#include "quantlens/text/hftokenizer.h"
#include "quantlens/text/sptokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

namespace ql {

namespace {

std::optional<uint64_t> ggufUint(const GgufFile& f, const std::string& key)
{
    const GgufValue* v = f.value(key);
    if (!v) return std::nullopt;
    if (const auto* u = std::get_if<uint64_t>(v)) return *u;
    if (const auto* u = std::get_if<uint32_t>(v)) return *u;
    if (const auto* i = std::get_if<int32_t>(v); i && *i >= 0) return uint64_t(*i);
    return std::nullopt;
}

std::optional<float> ggufReal(const GgufFile& f, const std::string& key)
{
    const GgufValue* v = f.value(key);
    if (const auto* x = v ? std::get_if<float>(v) : nullptr) return *x;
    return std::nullopt;
}

std::optional<bool> ggufBool(const GgufFile& f, const std::string& key)
{
    const GgufValue* v = f.value(key);
    if (const auto* b = v ? std::get_if<bool>(v) : nullptr) return *b;
    return std::nullopt;
}

std::string ggufString(const GgufFile& f, const std::string& key)
{
    const GgufValue* v = f.value(key);
    const auto* s = v ? std::get_if<std::string>(v) : nullptr;
    return s ? *s : std::string();
}

Expected<uint64_t> ggufRequire(const GgufFile& f, const std::string& key)
{
    if (auto v = ggufUint(f, key)) return *v;
    return makeError(f.path() + ": metadata key " + key + " is missing or not an unsigned integer");
}

const std::vector<std::string>* ggufStrings(const GgufFile& f, const std::string& key)
{
    const GgufValue* v = f.value(key);
    return v ? std::get_if<std::vector<std::string>>(v) : nullptr;
}

// A token id key, or -1 when absent or outside the vocabulary.
int32_t ggufTokenId(const GgufFile& f, const char* key, size_t vocabulary)
{
    const auto u = ggufUint(f, key);
    return u && *u < vocabulary ? int32_t(*u) : -1;
}

// Whether the vocabulary puts BOS first: the file's key, else llama.cpp's default for its kind.
bool ggufAddsBos(const GgufFile& f)
{
    if (auto b = ggufBool(f, "tokenizer.ggml.add_bos_token")) return *b;
    if (ggufString(f, "tokenizer.ggml.model") == "llama") return true;
    const auto* pre = detail::ggufPreTokenizer(ggufString(f, "tokenizer.ggml.pre"));
    return pre && pre->addBos;
}

using Json = nlohmann::json;

// normalized false: llama.cpp matches control and user-defined tokens in the raw text, as the
// tokenizer.json files converted from SentencePiece models mark them.
Json ggufAddedToken(int32_t id, const std::string& content, bool special)
{
    return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
            {"rstrip", false}, {"normalized", false}, {"special", special}};
}

// The post_processor putting BOS before (and EOS after) a sequence; null when it adds nothing.
Json ggufTemplate(const std::vector<std::string>& tokens, int32_t bos, int32_t eos)
{
    if (bos < 0 && eos < 0) return nullptr;
    Json single = Json::array(), pair = Json::array(), specials = Json::object();
    const auto special = [&](int32_t id, int typeId) {
        specials[tokens[size_t(id)]] = {{"id", tokens[size_t(id)]}, {"ids", {id}}, {"tokens", {tokens[size_t(id)]}}};
        return Json{{"SpecialToken", {{"id", tokens[size_t(id)]}, {"type_id", typeId}}}};
    };
    for (int s = 0; s < 2; ++s) {
        Json& t = s == 0 ? single : pair;
        for (int part = 0; part <= s; ++part) {
            if (bos >= 0) t.push_back(special(bos, part));
            t.push_back({{"Sequence", {{"id", part == 0 ? "A" : "B"}, {"type_id", part}}}});
            if (eos >= 0) t.push_back(special(eos, part));
        }
    }
    return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

// The tokenizer.json that reproduces a "gpt2" vocabulary, or a "llama" one whose merges fit its
// tokens; nullopt for a "llama" vocabulary read by its scores (SentencePiece, tokenizer.model).
// A "llama" file with merges is read by its merges even though llama.cpp ignores them: they are
// the original tokenizer.json's BPE model (QuantLens writes them; gguf-py's SpecialVocab copies
// them), whose rank order is what transformers runs, while the scores of such files are derived
// from the ranks (QuantLens) or placeholders (llama.cpp's LlamaHfVocab writes -1000 for every
// token). Merges that do not fit the tokens, or remove_extra_whitespaces, which no tokenizer.json
// normalizer here says, fall back to the scores, as llama.cpp reads the file.
Expected<std::optional<std::string>> ggufTokenizerJson(const GgufFile& f)
{
    const std::string model = ggufString(f, "tokenizer.ggml.model");
    if (model != "llama" && model != "gpt2")
        return makeError(f.path() + ": tokenizer.ggml.model is '" + model +
                         "'; QuantLens reads 'llama' (SentencePiece, or BPE with merges) and 'gpt2' (byte-level "
                         "BPE) vocabularies from GGUF files");
    const bool spStyle = model == "llama";
    const auto* tokens = ggufStrings(f, "tokenizer.ggml.tokens");
    if (!tokens) return makeError(f.path() + ": tokenizer.ggml.tokens is missing or not a string array");
    const auto* merges = ggufStrings(f, "tokenizer.ggml.merges");
    if (spStyle && (!merges || ggufBool(f, "tokenizer.ggml.remove_extra_whitespaces").value_or(false)))
        return std::optional<std::string>();
    const detail::GgufPreTokenizer* pre = nullptr;
    if (!spStyle) {
        if (!merges) return makeError(f.path() + ": the 'gpt2' vocabulary has no tokenizer.ggml.merges");
        const std::string name = ggufString(f, "tokenizer.ggml.pre");
        pre = detail::ggufPreTokenizer(name);
        if (!pre)
            return makeError(f.path() + ": tokenizer.ggml.pre '" + name +
                             "' is not a pre-tokenizer QuantLens can rebuild (it knows " +
                             detail::ggufPreTokenizerNames() + ")");
    }
    std::vector<int32_t> types(tokens->size(), detail::kGgufNormal);
    const GgufValue* typeValue = f.value("tokenizer.ggml.token_type");
    if (const auto* ty = typeValue ? std::get_if<std::vector<int32_t>>(typeValue) : nullptr) {
        if (ty->size() != tokens->size())
            return makeError(f.path() + ": " + std::to_string(tokens->size()) + " tokens but " +
                             std::to_string(ty->size()) + " token types");
        types = *ty;
    }
    Json vocab = Json::object();
    for (size_t id = 0; id < tokens->size(); ++id) {
        vocab[(*tokens)[id]] = id;
        if (vocab.size() != id + 1)
            return makeError(f.path() + ": token " + std::to_string(id) + " '" + (*tokens)[id] + "' appears twice");
    }
    Json mergeList = Json::array();
    std::string a, b;
    for (const std::string& m : *merges) {
        if (!detail::splitGgufMerge(m, a, b) || !vocab.contains(a) || !vocab.contains(b) || !vocab.contains(a + b)) {
            if (spStyle) return std::optional<std::string>();
            return makeError(f.path() + ": merge '" + m + "' does not join two tokens into a third");
        }
        mergeList.push_back(Json::array({a, b}));
    }

    int32_t unk = ggufTokenId(f, "tokenizer.ggml.unknown_token_id", tokens->size());
    for (size_t id = 0; id < types.size() && unk < 0; ++id)
        if (types[id] == detail::kGgufUnknown) unk = int32_t(id);
    const bool addBos = ggufAddsBos(f), addEos = ggufBool(f, "tokenizer.ggml.add_eos_token").value_or(false);
    const int32_t bos = ggufTokenId(f, "tokenizer.ggml.bos_token_id", tokens->size());
    const int32_t eos = ggufTokenId(f, "tokenizer.ggml.eos_token_id", tokens->size());
    Json added = Json::array();
    for (size_t id = 0; id < tokens->size(); ++id)
        if (types[id] == detail::kGgufUnknown || types[id] == detail::kGgufControl ||
            types[id] == detail::kGgufUserDefined)
            added.push_back(ggufAddedToken(int32_t(id), (*tokens)[id], types[id] != detail::kGgufUserDefined));

    Json j = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
    const std::string metaSpace = "\xE2\x96\x81"; // ▁
    if (spStyle) { // what transformers' LlamaConverter writes (legacy: normalizer, no pre-tokenizer)
        const bool prefix = ggufBool(f, "tokenizer.ggml.add_space_prefix").value_or(true);
        const Json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", metaSpace}};
        Json norms = Json::array();
        if (prefix) norms.push_back({{"type", "Prepend"}, {"prepend", metaSpace}});
        norms.push_back(replace);
        j["normalizer"] = {{"type", "Sequence"}, {"normalizers", norms}};
        j["pre_tokenizer"] = nullptr;
        Json decoders = {{{"type", "Replace"}, {"pattern", {{"String", metaSpace}}}, {"content", " "}},
                         {{"type", "ByteFallback"}},
                         {{"type", "Fuse"}}};
        if (prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
        j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    } else { // what transformers' GPT2Converter, Qwen2Converter and TikTokenConverter write
        const Json byteLevel = {{"type", "ByteLevel"},
                                {"add_prefix_space", false},
                                {"trim_offsets", true},
                                {"use_regex", pre->regex == nullptr}};
        j["normalizer"] = pre->nfc ? Json{{"type", "NFC"}} : Json(nullptr);
        if (pre->regex)
            j["pre_tokenizer"] = {{"type", "Sequence"},
                                  {"pretokenizers",
                                   {{{"type", "Split"},
                                     {"pattern", {{"Regex", pre->regex}}},
                                     {"behavior", "Isolated"},
                                     {"invert", false}},
                                    byteLevel}}};
        else
            j["pre_tokenizer"] = byteLevel;
        j["decoder"] = byteLevel;
    }
    j["post_processor"] = ggufTemplate(*tokens, addBos ? bos : -1, addEos ? eos : -1);
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", spStyle && unk >= 0 ? Json((*tokens)[size_t(unk)]) : Json(nullptr)},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", spStyle},
                  {"byte_fallback", spStyle},
                  {"ignore_merges", pre && pre->ignoreMerges},
                  {"vocab", std::move(vocab)},
                  {"merges", std::move(mergeList)}};
    try {
        return std::optional<std::string>(j.dump(1));
    } catch (const nlohmann::json::exception&) {
        return makeError(f.path() + ": the vocabulary has tokens that are not valid UTF-8");
    }
}

// The tokenizer of a file and, when it is rebuilt as a Hugging Face tokenizer, its tokenizer.json.
Expected<std::pair<std::shared_ptr<Tokenizer>, std::optional<std::string>>> ggufTokenizerAndJson(const GgufFile& f)
{
    auto json = ggufTokenizerJson(f);
    if (!json) return json.error();
    std::shared_ptr<Tokenizer> tok;
    if (*json) {
        auto hf = HfTokenizer::fromJson(**json, f.path());
        if (!hf) return hf.error();
        tok = *hf;
    } else {
        SpVocabulary v;
        v.pieces = *ggufStrings(f, "tokenizer.ggml.tokens");
        const GgufValue* scores = f.value("tokenizer.ggml.scores");
        const GgufValue* types = f.value("tokenizer.ggml.token_type");
        if (const auto* s = scores ? std::get_if<std::vector<float>>(scores) : nullptr)
            v.scores = *s;
        else
            v.scores.assign(v.pieces.size(), 0.f);
        if (const auto* ty = types ? std::get_if<std::vector<int32_t>>(types) : nullptr)
            v.types = *ty;
        else
            v.types.assign(v.pieces.size(), 1);
        v.bpe = true; // llama.cpp merges SentencePiece pieces by score
        v.byteFallback = std::find(v.types.begin(), v.types.end(), 6) != v.types.end();
        // llama.cpp's defaults for the two splitting keys.
        v.addDummyPrefix = ggufBool(f, "tokenizer.ggml.add_space_prefix").value_or(true);
        v.removeExtraWhitespaces = ggufBool(f, "tokenizer.ggml.remove_extra_whitespaces").value_or(false);
        auto sp = SpTokenizer::fromVocabulary(v, f.path());
        if (!sp) return sp.error();
        tok = *sp;
    }
    const size_t n = size_t(tok->vocabSize());
    tok->setSpecials(ggufTokenId(f, "tokenizer.ggml.bos_token_id", n), ggufTokenId(f, "tokenizer.ggml.eos_token_id", n),
                     ggufAddsBos(f));
    return std::make_pair(std::move(tok), std::move(*json));
}

} // namespace

Expected<std::string> ggufConfigJson(const GgufFile& f)
{
    const std::string arch = ggufString(f, "general.architecture");
    if (arch != "llama")
        return makeError(f.path() + ": general.architecture is '" + arch +
                         "'; QuantLens reads GGUF files of the llama architecture");
    nlohmann::json j;
    j["model_type"] = "llama";
    j["architectures"] = {"LlamaForCausalLM"};
    const std::pair<const char*, const char*> required[] = {{"hidden_size", "llama.embedding_length"},
                                                            {"intermediate_size", "llama.feed_forward_length"},
                                                            {"num_hidden_layers", "llama.block_count"},
                                                            {"num_attention_heads", "llama.attention.head_count"}};
    for (const auto& [hf, key] : required) {
        auto v = ggufRequire(f, key);
        if (!v) return v.error();
        j[hf] = *v;
    }
    j["num_key_value_heads"] = ggufUint(f, "llama.attention.head_count_kv").value_or(j["num_attention_heads"]);
    const uint64_t hidden = j["hidden_size"], heads = j["num_attention_heads"];
    if (auto kl = ggufUint(f, "llama.attention.key_length"); kl && heads > 0 && *kl != hidden / heads)
        j["head_dim"] = *kl;
    const GgufFile::Tensor* emb = f.tensor("token_embd.weight");
    if (!emb || emb->dims.size() != 2) return makeError(f.path() + ": no 2-D tensor token_embd.weight");
    j["vocab_size"] = emb->dims[1];
    j["max_position_embeddings"] = ggufUint(f, "llama.context_length").value_or(2048);
    j["rms_norm_eps"] = ggufReal(f, "llama.attention.layer_norm_rms_epsilon").value_or(1e-5f);
    j["rope_theta"] = ggufReal(f, "llama.rope.freq_base").value_or(10000.f);
    const std::string scaling = ggufString(f, "llama.rope.scaling.type");
    if (scaling == "linear") {
        j["rope_scaling"] = {{"type", "linear"}, {"factor", ggufReal(f, "llama.rope.scaling.factor").value_or(1.f)}};
    } else if (!scaling.empty() && scaling != "none") {
        return makeError(f.path() + ": rope scaling '" + scaling + "' is not supported (none and linear are)");
    }
    if (f.tensor("rope_freqs.weight"))
        return makeError(f.path() + ": rope_freqs.weight (Llama 3.1 frequency factors) is not supported");
    j["tie_word_embeddings"] = f.tensor("output.weight") == nullptr;
    if (auto b = ggufUint(f, "tokenizer.ggml.bos_token_id")) j["bos_token_id"] = *b;
    if (auto e = ggufUint(f, "tokenizer.ggml.eos_token_id")) j["eos_token_id"] = *e;
    j["torch_dtype"] = "float32";
    return j.dump(2) + "\n";
}

Expected<std::shared_ptr<Tokenizer>> ggufTokenizer(const GgufFile& f)
{
    auto tok = ggufTokenizerAndJson(f);
    if (!tok) return tok.error();
    return std::move(tok->first);
}

Expected<void> importGguf(const GgufFile& f, const std::string& outDir, Feedback* fb)
{
    auto configJson = ggufConfigJson(f);
    if (!configJson) return configJson.error();
    auto config = ModelConfig::fromJson(*configJson, f.path());
    if (!config) return config.error();
    const ModelConfig& c = *config;
    auto vocabulary = ggufTokenizerAndJson(f);
    if (!vocabulary) return vocabulary.error();
    const std::shared_ptr<Tokenizer>& tok = vocabulary->first;

    // HF name, and for Q/K the head count whose rotary rows are un-permuted, of each GGUF tensor.
    std::map<std::string, std::pair<std::string, int>> names{{"token_embd.weight", {"model.embed_tokens.weight", 0}},
                                                             {"output_norm.weight", {"model.norm.weight", 0}},
                                                             {"output.weight", {"lm_head.weight", 0}}};
    for (int i = 0; i < c.layers; ++i) {
        const std::string blk = "blk." + std::to_string(i) + ".";
        names[blk + "attn_norm.weight"] = {Model::attnNormName(i), 0};
        names[blk + "ffn_norm.weight"] = {Model::mlpNormName(i), 0};
        for (int k = 0; k < kLinearCount; ++k) {
            const LinearKind kind = LinearKind(k);
            names[ggufLinearName(i, kind)] = {Model::linearName(i, kind) + ".weight", kind == LinearKind::Q ? c.heads
                                                                                      : kind == LinearKind::K
                                                                                          ? c.kvHeads
                                                                                          : 0};
        }
    }
    std::vector<TensorData> tensors;
    size_t done = 0;
    for (const GgufFile::Tensor& t : f.tensors()) {
        if (fb && fb->isCanceled()) return makeError("canceled");
        const auto it = names.find(t.name);
        if (it == names.end())
            return makeError(f.path() + ": tensor " + t.name + " is not part of the llama graph QuantLens reads");
        auto values = f.readFloat(t.name);
        if (!values) return values.error();
        std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());
        if (const int heads = it->second.second; heads > 0 && shape.size() == 2) {
            if (shape[0] % (2 * heads) != 0)
                return makeError(f.path() + ": tensor " + t.name + " has " + std::to_string(shape[0]) +
                                 " rows, not a whole number of rotary heads (" + std::to_string(heads) + ")");
            const auto order = rotaryRowOrder(shape[0], heads);
            std::vector<float> hf(values->size());
            const size_t cols = size_t(shape[1]);
            for (size_t r = 0; r < order.size(); ++r)
                std::copy_n(values->data() + r * cols, cols, hf.data() + size_t(order[r]) * cols);
            *values = std::move(hf);
        }
        tensors.push_back(
            makeTensorData(it->second.first, DType::F32, std::move(shape), values->data(), values->size()));
        if (fb) fb->progress(double(++done) / double(f.tensors().size()));
    }

    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(outDir, ec);
    if (ec) return makeError(outDir + ": cannot create the folder: " + ec.message());
    auto writeText = [&](const std::string& name, const std::string& text) {
        return writeTextFile(fs::path(outDir) / name, text);
    };
    QL_TRY(writeText("config.json", *configJson));
    // A rebuilt tokenizer.json is used as it is (PreTrainedTokenizerFast: transformers adds no
    // post-processing of its own); a vocabulary read by its scores is a tokenizer.model.
    const auto& json = vocabulary->second;
    if (json)
        QL_TRY(writeText("tokenizer.json", *json));
    else
        QL_TRY(writeText("tokenizer.model", static_cast<const SpTokenizer&>(*tok).modelProto()));
    nlohmann::json tc;
    tc["add_bos_token"] = tok->addsBos();
    if (tok->bosId() >= 0) tc["bos_token"] = tok->tokenText(tok->bosId());
    if (tok->eosId() >= 0) tc["eos_token"] = tok->tokenText(tok->eosId());
    tc["tokenizer_class"] = json ? "PreTrainedTokenizerFast" : "LlamaTokenizer";
    QL_TRY(writeText("tokenizer_config.json", tc.dump(2) + "\n"));
    return writeSafetensorsFile((fs::path(outDir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

} // namespace ql
