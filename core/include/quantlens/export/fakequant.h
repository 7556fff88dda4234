#pragma once

// A fake-quant checkpoint (docs/export.md): the model's Hugging Face folder with every weight
// replaced by what a run computes with (dequantized codes, transformed norms and embeddings), in
// the original dtype and layout, so any Hugging Face tool loads the quantized model as floats.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/model.h"

#include <cstdint>
#include <string>

namespace ql {

/// What to write.
struct FakeQuantOptions {
    std::string dtype;      ///< F32, F16 or BF16; "" keeps the model's (its embedding's) dtype
    bool overwrite = false; ///< replace an existing folder (only once the new one is complete)
};

/// What was written.
struct FakeQuantReport {
    int tensors = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    std::string dtype;
    bool tied = false; ///< the lm_head is still the embedding
};

/// Writes weights (the model's own, or a run's QuantizedModel) with the model's names and
/// shapes into outDir: model.safetensors, config.json (tie_word_embeddings and torch_dtype as
/// written) and the tokenizer files. The folder appears only when complete. Online rotations,
/// which a Hugging Face model cannot run, are refused.
Expected<FakeQuantReport> exportFakeQuant(const Model& model, const WeightSource& weights, const std::string& outDir,
                                          const FakeQuantOptions& options = {}, Feedback* feedback = nullptr);

} // namespace ql
