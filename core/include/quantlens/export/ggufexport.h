#pragma once

// A model as a GGUF file llama.cpp loads (docs/gguf.md): `llama` architecture metadata, the
// vocabulary (SentencePiece, or tokenizer.json BPE), HF tensor names mapped to llama.cpp's with Q/K rows permuted to
// its rotary layout, and each weight encoded in its chosen ggml type.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/export/ggmltype.h"
#include "quantlens/export/imatrix.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <string>
#include <vector>

namespace ql {

/// What to write.
struct GgufExportOptions {
    GgmlType type = GgmlType::F16;             ///< type of every 2-D weight without an override
    std::map<std::string, GgmlType> overrides; ///< by GGUF tensor name, e.g. blk.0.ffn_down.weight
    /// llama-quantize's --tensor-type rules: the first whose pattern (ECMAScript regex) is found
    /// in a tensor's name sets its type, unless overrides names the tensor.
    std::vector<std::pair<std::string, GgmlType>> tensorTypes;
    std::string name;    ///< general.name ("" : the model folder's name)
    bool dryRun = false; ///< decide every tensor's type (the report), write nothing
    /// Weights the rounding of directly encoded tensors as llama-quantize --imatrix does (null: none).
    std::shared_ptr<const ImportanceMatrix> importance;
};

/// What was written, tensor by tensor.
struct GgufExportReport {
    struct Entry {
        std::string name;      ///< GGUF tensor name
        GgmlType asked;        ///< the type the options gave
        GgmlType written;      ///< the type in the file (differs only with a fallback note)
        std::string note;      ///< why a fallback was needed
        bool runCodes = false; ///< the run's codes written unchanged (ggmlmapping.h)
    };
    std::vector<Entry> tensors;
    uint64_t bytes = 0; ///< file size
    double seconds = 0;
};

/// llama-quantize's --tensor-type-file lines that reproduce a report's types: one anchored
/// pattern per 2-D tensor (^blk\.0\.attn_q\.weight$=q4_0), 1-D tensors left out (always f32).
std::string tensorTypeRules(const GgufExportReport& report);

/// llama.cpp's name of the weight of linear k in block i, e.g. "blk.3.attn_q.weight".
std::string ggufLinearName(int block, LinearKind k);

/// Q/K rows permuted from the HF rotary layout (rows h·d + i·d/2 + j, i ∈ {0, 1}) to llama.cpp's
/// interleaved one (rows h·d + 2j + i), as source rows: file row r is HF row order[r]; heads is
/// n_head for Q and n_head_kv for K.
std::vector<Eigen::Index> rotaryRowOrder(Eigen::Index rows, int heads);

/// Writes weights (the model's own, or a transformed or quantized source with the model's
/// shapes) as a GGUF file. A type whose blocks do not divide a row falls back as llama-quantize
/// does, else to f16 (1-D tensors are always f32), and the report names each such tensor and why. When weights is a
/// QuantizedModel, a layer whose codes a ggml type holds exactly is written with those codes in
/// that type (losslessGgmlType); its other layers are encoded from their dequantized weights,
/// with a note saying why. Online rotations, which llama.cpp cannot run, are refused. Only the llama
/// architecture without biases is written for now, with a SentencePiece or tokenizer.json BPE
/// vocabulary; other models are refused with the reason.
Expected<GgufExportReport> exportGguf(const Model& model, const WeightSource& weights, const Tokenizer& tokenizer,
                                      const GgufExportOptions& options, const std::string& path,
                                      Feedback* feedback = nullptr);

} // namespace ql
