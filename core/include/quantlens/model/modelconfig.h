#pragma once

#include "quantlens/base/expected.h"

#include <string>
#include <string_view>
#include <vector>

namespace ql {

/// Decoder architectures the engine runs; the differences are data in the descriptor.
enum class Arch { Llama, Mistral, Qwen2 };

/// RoPE frequency scaling variants from config.json's rope_scaling.
enum class RopeScaling { None, Linear, Llama3 };

/// Hyper-parameters of a decoder-only model, read from a Hugging Face config.json.
struct ModelConfig {
    std::string modelType;
    Arch arch = Arch::Llama;
    int hidden = 0;
    int intermediate = 0;
    int layers = 0;
    int heads = 0;
    int kvHeads = 0;
    int headDim = 0;
    int vocab = 0;
    int maxPositions = 0;
    float rmsEps = 1e-6f;
    double ropeTheta = 10000.0;
    RopeScaling ropeScaling = RopeScaling::None;
    double ropeFactor = 1.0;
    double ropeLowFreqFactor = 1.0;
    double ropeHighFreqFactor = 4.0;
    int ropeOriginalMaxPositions = 8192;
    bool tieEmbeddings = false;
    bool qkvBias = false;
    bool oBias = false;
    bool mlpBias = false;
    int bosId = -1;
    int eosId = -1;
    int slidingWindow = 0;
    std::string torchDtype;

    /// Parses config.json; errors name the file and the missing or invalid key.
    static Expected<ModelConfig> fromFile(const std::string& path);
    /// Parses config.json content; origin names it in errors.
    static Expected<ModelConfig> fromJson(std::string_view json, const std::string& origin);
    /// Inverse frequencies of the rotary embedding (headDim / 2 values), scaling applied.
    std::vector<float> ropeInvFreq() const;
};

/// Refuses sequences longer than the model's trained positions (max_position_embeddings), where
/// its outputs mean nothing, unless force is set; `what` names the length in the message.
Expected<void> checkSequenceLength(const ModelConfig& config, int64_t length, bool force, const std::string& what);

/// The name architectures are reported under ("llama", "mistral", "qwen2").
const char* archName(Arch a);

} // namespace ql
