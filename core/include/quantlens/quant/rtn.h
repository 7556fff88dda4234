#pragma once

#include "quantlens/model/weights.h"

namespace ql {

/// Round-to-nearest fake quantization of a weight [out, in] with integer codes of `bits`,
/// per group of `group` input columns (a last partial group is allowed; group <= 0 or larger
/// than the row means one group per row). Asymmetric: scale = (max - min) / (2^b - 1) with
/// the range widened to include 0 and zero = round(-min / scale), as GPTQ's quantizer does;
/// symmetric: zero = 2^(b-1) (groupparams.h's rules; bits in [2, 8]). Returns the dequantized weight;
/// a group with a non-finite value is returned unchanged.
RowMatrix rtnFakeQuant(Eigen::Ref<const RowMatrix> w, int bits, int group, bool symmetric = false);

} // namespace ql
