#pragma once

// The tensor types of GGUF files (ggml's block layouts, docs/gguf.md): what each costs, and a
// row encoder and decoder per type. Encoders round as llama.cpp's quantizers do, so a tensor
// QuantLens writes directly is the one llama-quantize would write: without an importance matrix
// its reference quantizers, with one (q4_0 … q5_1 and the K-quants) its imatrix path.

#include "quantlens/base/expected.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ql {

/// ggml type ids as GGUF stores them.
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    BF16 = 30,
};

/// Elements per block and bytes per block of a type (K-quants: super-blocks of 256).
struct GgmlTypeInfo {
    GgmlType type;
    const char* name; ///< as llama.cpp spells it: "f32", "q4_0", ...
    int blockSize;
    int blockBytes;
};

/// The row of the type table for t, or nullptr for a type QuantLens does not handle.
const GgmlTypeInfo* ggmlTypeInfo(GgmlType t);
/// A type by its name (case-insensitive: "Q4_0", "q8_0", "Q4_K", "f16"); the error lists the known ones.
Expected<GgmlType> parseGgmlType(std::string_view name);
/// Bytes of a row of n elements (n a multiple of the block size).
int64_t ggmlRowBytes(GgmlType t, int64_t n);

/// Encodes n floats (a multiple of the type's block size) into out (ggmlRowBytes(t, n) bytes);
/// importance (empty, or one non-negative weight per element: an imatrix row) weights the error of
/// q4_0, q4_1, q5_0, q5_1 and the K-quants as llama-quantize --imatrix does, and is ignored by the
/// types llama.cpp quantizes without one (f32, f16, bf16, q8_0).
Expected<void> encodeGgmlRow(GgmlType t, std::span<const float> row, std::span<uint8_t> out,
                             std::span<const float> importance = {});
/// Writes one 32-element block of a quantized type (q8_0, q4_0, q4_1, q5_0, q5_1) from its codes
/// as stored (q8_0: the int8 bit patterns; the others: 0 … 2^b − 1), d and, for q4_1/q5_1, m
/// (both stored as fp16). The one block packer the encoders and the run-code mapping share.
void packGgmlBlock(GgmlType t, float d, float m, const uint8_t* codes, uint8_t* out);
/// Decodes n elements of type t from in into out.
Expected<void> decodeGgmlRow(GgmlType t, std::span<const uint8_t> in, std::span<float> out);

} // namespace ql
