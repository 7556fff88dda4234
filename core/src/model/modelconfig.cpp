#include "quantlens/model/modelconfig.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

namespace ql {

const char* archName(Arch a)
{
    switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Mistral: return "mistral";
    case Arch::Qwen2: return "qwen2";
    }
    return "?";
}

Expected<ModelConfig> ModelConfig::fromFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open (is this a Hugging Face model folder with a config.json?)");
    std::stringstream ss;
    ss << in.rdbuf();
    return fromJson(ss.str(), path);
}

namespace {

// Reads a required positive integer key.
Expected<int> requireInt(const nlohmann::json& j, const char* key, const std::string& origin)
{
    if (!j.contains(key) || !j[key].is_number_integer())
        return makeError(origin + ": missing or non-integer key '" + key + "'");
    const auto v = j[key].get<int64_t>();
    if (v <= 0) return makeError(origin + ": key '" + key + "' must be positive, found " + std::to_string(v));
    return static_cast<int>(v);
}

int firstId(const nlohmann::json& v)
{
    if (v.is_number_integer()) return v.get<int>();
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();
    return -1;
}

} // namespace

Expected<ModelConfig> ModelConfig::fromJson(std::string_view text, const std::string& origin)
{
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        return makeError(origin + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) return makeError(origin + ": expected a JSON object");
    ModelConfig c;
    try {
        c.modelType = j.value("model_type", std::string());
        if (c.modelType == "llama")
            c.arch = Arch::Llama;
        else if (c.modelType == "mistral")
            c.arch = Arch::Mistral;
        else if (c.modelType == "qwen2")
            c.arch = Arch::Qwen2;
        else
            return makeError(origin + ": unsupported architecture model_type '" + c.modelType +
                             "' (supported: llama, mistral, qwen2)");

        auto hidden = requireInt(j, "hidden_size", origin);
        if (!hidden) return hidden.error();
        auto inter = requireInt(j, "intermediate_size", origin);
        if (!inter) return inter.error();
        auto layers = requireInt(j, "num_hidden_layers", origin);
        if (!layers) return layers.error();
        auto heads = requireInt(j, "num_attention_heads", origin);
        if (!heads) return heads.error();
        auto vocab = requireInt(j, "vocab_size", origin);
        if (!vocab) return vocab.error();
        c.hidden = *hidden;
        c.intermediate = *inter;
        c.layers = *layers;
        c.heads = *heads;
        c.vocab = *vocab;
        c.kvHeads = c.heads;
        if (j.contains("num_key_value_heads") && j["num_key_value_heads"].is_number_integer())
            c.kvHeads = j["num_key_value_heads"].get<int>();
        if (c.kvHeads <= 0 || c.heads % c.kvHeads != 0)
            return makeError(origin + ": num_attention_heads " + std::to_string(c.heads) +
                             " is not a multiple of num_key_value_heads " + std::to_string(c.kvHeads));
        c.headDim = c.hidden / c.heads;
        if (j.contains("head_dim") && j["head_dim"].is_number_integer()) c.headDim = j["head_dim"].get<int>();
        if (c.headDim <= 0 || c.headDim % 2 != 0)
            return makeError(origin + ": head dimension " + std::to_string(c.headDim) + " must be positive and even");
        if (!j.contains("head_dim") && c.hidden % c.heads != 0)
            return makeError(origin + ": hidden_size is not divisible by num_attention_heads");
        c.maxPositions = j.value("max_position_embeddings", 0);
        c.rmsEps = static_cast<float>(j.value("rms_norm_eps", 1e-6));
        c.ropeTheta = j.value("rope_theta", 10000.0);
        c.tieEmbeddings = j.value("tie_word_embeddings", false);
        c.torchDtype = j.contains("torch_dtype") && j["torch_dtype"].is_string() ? j["torch_dtype"].get<std::string>()
                                                                                 : "";
        if (j.contains("bos_token_id")) c.bosId = firstId(j["bos_token_id"]);
        if (j.contains("eos_token_id")) c.eosId = firstId(j["eos_token_id"]);
        const bool attentionBias = j.value("attention_bias", false);
        c.mlpBias = j.value("mlp_bias", false);
        switch (c.arch) {
        case Arch::Llama:
            c.qkvBias = attentionBias;
            c.oBias = attentionBias;
            break;
        case Arch::Mistral: break;
        case Arch::Qwen2: // q/k/v carry biases, o_proj does not
            c.qkvBias = true;
            c.mlpBias = false;
            break;
        }
        if (j.contains("sliding_window") && j["sliding_window"].is_number_integer())
            c.slidingWindow = j["sliding_window"].get<int>();
        if (c.arch == Arch::Qwen2 && !j.value("use_sliding_window", false)) c.slidingWindow = 0;

        if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
            const auto& rs = j["rope_scaling"];
            std::string type = rs.value("rope_type", rs.value("type", std::string()));
            if (type == "linear") {
                c.ropeScaling = RopeScaling::Linear;
                c.ropeFactor = rs.value("factor", 1.0);
            } else if (type == "llama3") {
                c.ropeScaling = RopeScaling::Llama3;
                c.ropeFactor = rs.value("factor", 8.0);
                c.ropeLowFreqFactor = rs.value("low_freq_factor", 1.0);
                c.ropeHighFreqFactor = rs.value("high_freq_factor", 4.0);
                c.ropeOriginalMaxPositions = rs.value("original_max_position_embeddings", 8192);
            } else if (type != "default") {
                return makeError(origin + ": unsupported rope_scaling type '" + type +
                                 "' (supported: none, linear, llama3)");
            }
        }
    } catch (const std::exception& e) {
        return makeError(origin + ": invalid value: " + e.what());
    }
    return c;
}

std::vector<float> ModelConfig::ropeInvFreq() const
{
    const int half = headDim / 2;
    std::vector<float> inv(half);
    for (int i = 0; i < half; ++i) {
        // As transformers computes it: base ** (arange(0, dim, 2) / dim) in fp32.
        const float expo = static_cast<float>(2 * i) / static_cast<float>(headDim);
        double f = 1.0 / std::pow(ropeTheta, static_cast<double>(expo));
        if (ropeScaling == RopeScaling::Linear) {
            f /= ropeFactor;
        } else if (ropeScaling == RopeScaling::Llama3) {
            const double lowWave = ropeOriginalMaxPositions / ropeLowFreqFactor;
            const double highWave = ropeOriginalMaxPositions / ropeHighFreqFactor;
            const double wave = 2.0 * std::numbers::pi / f;
            if (wave > lowWave) {
                f /= ropeFactor;
            } else if (wave >= highWave) {
                const double smooth = (ropeOriginalMaxPositions / wave - ropeLowFreqFactor) /
                                      (ropeHighFreqFactor - ropeLowFreqFactor);
                f = (1.0 - smooth) * f / ropeFactor + smooth * f;
            }
        }
        inv[i] = static_cast<float>(f);
    }
    return inv;
}

Expected<void> checkSequenceLength(const ModelConfig& config, int64_t length, bool force, const std::string& what)
{
    if (force || config.maxPositions <= 0 || length <= config.maxPositions) return {};
    return makeError(what + " " + std::to_string(length) +
                     " is longer than the model's trained positions "
                     "(max_position_embeddings " +
                     std::to_string(config.maxPositions) +
                     " in config.json), where its predictions mean nothing; use at most " +
                     std::to_string(config.maxPositions));
}

} // namespace ql
