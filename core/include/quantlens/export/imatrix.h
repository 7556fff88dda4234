#pragma once

// Importance matrices as llama.cpp's imatrix tool writes them (docs/gguf.md): per weight, the sum
// over calibration tokens of each input feature's square, and the number of tokens. llama-quantize
// divides one by the other and weights its rounding errors with the result; QuantLens's encoders
// do the same, from its own calibration statistics or from a file llama.cpp made.

#include "quantlens/analysis/analysis.h"
#include "quantlens/base/expected.h"
#include "quantlens/model/model.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ql {

/// Σx² per input feature and the token count, by GGUF weight name (blk.3.ffn_down.weight).
struct ImportanceMatrix {
    struct Entry {
        std::vector<float> sumSquares;
        float count = 0;
    };
    std::map<std::string, Entry> entries;
    std::vector<std::string> datasets; ///< what the statistics were gathered on
    uint32_t chunkCount = 0, chunkSize = 0;

    /// E[x²] per input feature of a weight, as llama-quantize uses it (empty when absent; all 1
    /// when the count is 0, as llama-quantize does).
    std::vector<float> importance(const std::string& ggufName) const;
};

/// The matrix QuantLens's calibration statistics give: for each linear, the site feeding it,
/// Σx² = n·(var + mean²) per channel over its n tokens.
Expected<ImportanceMatrix> importanceFromAnalysis(const AnalysisResult& analysis, const Model& model);
/// Writes the GGUF imatrix format of llama.cpp's imatrix tool (general.type = imatrix,
/// <name>.in_sum2 and <name>.counts in F32), atomically.
Expected<void> writeImatrix(const ImportanceMatrix& m, const std::string& path);
/// Reads an imatrix file: the GGUF format, or the older binary one llama.cpp still reads.
Expected<ImportanceMatrix> readImatrix(const std::string& path);

} // namespace ql
