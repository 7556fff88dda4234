#pragma once

// A run as a GPTQ-format Hugging Face checkpoint (REFERENCE.md, "GPTQ-format safetensors") that
// vLLM, transformers and GPTQModel load: per quantized linear its packed codes (qweight), packed
// zeros minus one (qzeros, the v1 "gptq" checkpoint format), fp16 scales and group index; every
// other weight in fp16 under its Hugging Face name; quantize_config.json and config.json's
// quantization_config, with GPTQModel's `dynamic` map for layers that differ from the default.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/model.h"
#include "quantlens/quant/quantizedmodel.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// What to write.
struct GptqExportOptions {
    bool overwrite = false;     ///< replace an existing folder (only once the new one is complete)
    double dampPercent = -1;    ///< damp_percent to record; < 0: the run's GPTQ "damp" (0.01 without one)
    bool trueSequential = true; ///< true_sequential to record (the pipeline's sequential mode)
    bool dryRun = false;        ///< check and plan every layer (the report), write nothing
};

/// What was written.
struct GptqExportReport {
    /// One quantized linear as the loaders see it.
    struct Layer {
        std::string module; ///< HF module name, e.g. model.layers.0.self_attn.q_proj
        int bits = 4;
        int groupSize = 128;  ///< -1: one group per output channel
        bool descAct = false; ///< g_idx is not i / group_size (act-order), or a fused partner's is
        bool sym = true;
        std::string note; ///< what the checkpoint leaves out (simulated activation quantization)
    };
    std::vector<Layer> layers;             ///< quantized linears in block order
    std::vector<std::string> floatModules; ///< linears written in fp16 (in `-:` entries)
    Layer defaults;                        ///< the config's top-level bits, group_size, desc_act, sym
    int dynamicEntries = 0;                ///< entries of the `dynamic` map
    bool tied = false;                     ///< lm_head is still the embedding (no lm_head.weight)
    uint64_t bytes = 0;                    ///< all files of the folder
    double seconds = 0;
};

/// Writes run (quantized layers over the model's own or transformed float weights) as a GPTQ
/// checkpoint folder outDir: model.safetensors, config.json (the model's, with
/// quantization_config and torch_dtype float16), quantize_config.json and the tokenizer files.
/// The folder appears only when complete. Refuses, naming the layer, what the loaders cannot
/// run: formats other than int2/3/4/8 sym or asym, per-tensor parameters, shapes whose sides are
/// not multiples of 32 or groups that do not divide the input, zero points that v1's stored
/// zero - 1 cannot hold, q/k/v or gate/up (fused by vLLM) with different bits or group sizes or
/// partly float, layers without a single-format result, and online rotations.
Expected<GptqExportReport> exportGptq(const Model& model, const QuantizedModel& run, const std::string& outDir,
                                      const GptqExportOptions& options = {}, Feedback* feedback = nullptr);

} // namespace ql
