#pragma once

// Quantized tensors whose grid a ggml type represents exactly: their codes go into the GGUF
// blocks unchanged, so what GPTQ or AWQ chose survives the export bit for bit (only the scales
// and minimums are rounded to fp16, as the block layouts store them).
//   int4_sym, groups of 32  → q4_0  (d = scale, q = code; value d·(q − 8))
//   int4_asym, groups of 32 → q4_1  (d = scale, m = −scale·zero)
//   int5_sym / int5_asym    → q5_0 / q5_1
//   int8_sym, groups of 32  → q8_0  (q = code − 128)

#include "quantlens/base/expected.h"
#include "quantlens/export/ggmltype.h"
#include "quantlens/quant/quantizedtensor.h"

#include <span>
#include <vector>

namespace ql {

/// The ggml type that holds t's codes exactly, or an error saying why none does (format, group
/// size, act-order group index).
Expected<GgmlType> losslessGgmlType(const QuantizedTensor& t);

/// Writes rows of t as blocks of type (from losslessGgmlType): file row r is t's row
/// rowOrder[r] (all rows in order when rowOrder is empty).
Expected<void> encodeQuantizedRows(const QuantizedTensor& t, GgmlType type, std::span<const Eigen::Index> rowOrder,
                                   std::span<uint8_t> out);

} // namespace ql
