#pragma once

// ggml's K-quant super-blocks (Q2_K … Q6_K: 256 elements each, docs/gguf.md) and the
// importance-weighted encoders of the 32-element types (q4_0, q4_1, q5_0, q5_1). Internal to the
// core library: ggmltype.cpp dispatches to it. The encoders follow llama.cpp's quantizers step by
// step (the same scale searches, the same float operations in the same order, the same fp16
// rounding of the super-block scales), so the bytes are the ones llama-quantize writes: without
// an importance matrix its reference quantizers (quantize_row_q*_K_ref), with one its imatrix
// path (quantize_q*_K, quantize_q4_0 …).

#include "quantlens/export/ggmltype.h"
#include "quantlens/model/safetensors.h"

#include <cstdint>

namespace ql {

/// Stores v at p as a little-endian fp16, as every ggml block stores its scales.
inline void ggmlPutHalf(uint8_t* p, float v)
{
    const uint16_t h = floatToHalf(v);
    p[0] = uint8_t(h & 0xff);
    p[1] = uint8_t(h >> 8);
}
/// The little-endian fp16 at p.
inline float ggmlGetHalf(const uint8_t* p)
{
    return halfToFloat(uint16_t(p[0] | (p[1] << 8)));
}
/// The element of largest magnitude, with its sign (the first one on ties), as llama.cpp's
/// symmetric quantizers pick it.
float ggmlSignedAbsMax(const float* x, int n);

/// Elements of one K-quant super-block.
inline constexpr int kKQuantBlock = 256;

/// Encodes one super-block of 256 floats of K-type t into out (its block bytes); importance (256
/// weights of the same columns, or null for llama.cpp's reference quantizer) weights the errors.
void encodeKQuantBlock(GgmlType t, const float* x, const float* importance, uint8_t* out);
/// Decodes one super-block of K-type t into 256 floats.
void decodeKQuantBlock(GgmlType t, const uint8_t* in, float* out);
/// Encodes a row of n floats (a multiple of 32) of q4_0, q4_1, q5_0 or q5_1 with importance
/// weights (n, not null) as llama.cpp's quantize_q4_0 … quantize_q5_1 do with an imatrix.
void encodeWeightedLegacyRow(GgmlType t, const float* x, int64_t n, const float* importance, uint8_t* out);

} // namespace ql
