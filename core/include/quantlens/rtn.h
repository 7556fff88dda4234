#pragma once

#include "quantlens/weights.h"

namespace ql {

/// Round-to-nearest fake quantization of a weight [out, in] with integer codes of `bits`,
/// per group of `group` input columns (a last partial group is allowed; group <= 0 or larger
/// than the row means one group per row). Asymmetric: scale = (max - min) / (2^b - 1) with
/// the range widened to include 0 and zero = round(-min / scale), as GPTQ's quantizer does;
/// symmetric: zero = 2^(b-1). Returns the dequantized weight.
RowMatrix rtnFakeQuant(Eigen::Ref<const RowMatrix> w, int bits, int group, bool symmetric = false);

} // namespace ql
