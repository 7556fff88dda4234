#pragma once

// A GGUF file read back as a model (docs/gguf.md): the hyper-parameters from its llama
// metadata, the tokenizer from its vocabulary, and every tensor decoded to fp32 in Hugging
// Face's names and row order, so a model a user only has as llama.cpp weights can be analysed,
// evaluated and compared with its float original.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/text/tokenizer.h"

#include <memory>
#include <string>

namespace ql {

/// config.json for the model a GGUF file describes (llama architecture only; errors name the
/// file and the missing or unsupported key).
Expected<std::string> ggufConfigJson(const GgufFile& f);
/// The tokenizer of a GGUF file's vocabulary ("llama": SentencePiece, or BPE by its merges when
/// the file has them; "gpt2": byte-level BPE with the pre-tokenizer its name stands for).
Expected<std::shared_ptr<Tokenizer>> ggufTokenizer(const GgufFile& f);
/// Writes the model as a Hugging Face folder: config.json, model.safetensors (fp32, Q/K rows
/// back in HF order), tokenizer.model or tokenizer.json, and tokenizer_config.json. Tensors the llama graph does
/// not have are refused, naming them.
Expected<void> importGguf(const GgufFile& f, const std::string& outDir, Feedback* feedback = nullptr);

} // namespace ql
