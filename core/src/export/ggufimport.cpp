#include "quantlens/export/ggufimport.h"

#include "quantlens/export/ggufexport.h"
#include "quantlens/model/model.h"
#include "quantlens/model/safetensorswriter.h"
#include "quantlens/text/sptokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
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
    const std::string model = ggufString(f, "tokenizer.ggml.model");
    if (model != "llama")
        return makeError(f.path() + ": tokenizer.ggml.model is '" + model +
                         "'; QuantLens reads SentencePiece ('llama') vocabularies from GGUF files");
    SpVocabulary v;
    const GgufValue* tokens = f.value("tokenizer.ggml.tokens");
    const GgufValue* scores = f.value("tokenizer.ggml.scores");
    const GgufValue* types = f.value("tokenizer.ggml.token_type");
    const auto* t = tokens ? std::get_if<std::vector<std::string>>(tokens) : nullptr;
    if (!t) return makeError(f.path() + ": tokenizer.ggml.tokens is missing or not a string array");
    v.pieces = *t;
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
    const auto id = [&](const char* key) {
        auto u = ggufUint(f, key);
        return u && *u < v.pieces.size() ? int32_t(*u) : -1;
    };
    (*sp)->setSpecials(id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id"),
                       ggufBool(f, "tokenizer.ggml.add_bos_token").value_or(true));
    return std::shared_ptr<Tokenizer>(*sp);
}

Expected<void> importGguf(const GgufFile& f, const std::string& outDir, Feedback* fb)
{
    auto configJson = ggufConfigJson(f);
    if (!configJson) return configJson.error();
    auto config = ModelConfig::fromJson(*configJson, f.path());
    if (!config) return config.error();
    const ModelConfig& c = *config;
    auto tok = ggufTokenizer(f);
    if (!tok) return tok.error();

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
    auto writeText = [&](const std::string& name, const std::string& text) -> Expected<void> {
        const fs::path p = fs::path(outDir) / name;
        std::ofstream out(p, std::ios::binary);
        out << text;
        out.close();
        if (!out) return makeError(p.string() + ": cannot write");
        return {};
    };
    QL_TRY(writeText("config.json", *configJson));
    const auto* sp = dynamic_cast<const SpTokenizer*>(tok->get());
    QL_TRY(writeText("tokenizer.model", sp->modelProto()));
    nlohmann::json tc;
    tc["add_bos_token"] = (*tok)->addsBos();
    if ((*tok)->bosId() >= 0) tc["bos_token"] = (*tok)->tokenText((*tok)->bosId());
    if ((*tok)->eosId() >= 0) tc["eos_token"] = (*tok)->tokenText((*tok)->eosId());
    tc["tokenizer_class"] = "LlamaTokenizer";
    QL_TRY(writeText("tokenizer_config.json", tc.dump(2) + "\n"));
    return writeSafetensorsFile((fs::path(outDir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
}

} // namespace ql
