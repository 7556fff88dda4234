#pragma once

// Per-group parameters and per-value codecs: the round-to-nearest building blocks that RTN
// (quantize() in quantizedtensor.h) and column-wise methods such as GPTQ share.
//
// Parameter rules (all statistics over the group's values):
//   Int     GPTQ quant.py (IST-DASLab/gptq): the range [min, max] is widened to include 0;
//           asymmetric scale = (max - min) / (2^b - 1), zero = round(-min / scale);
//           symmetric scale = 2·absmax / (2^b - 1), zero = 2^(b-1). An all-zero group uses
//           min = -1, max = +1, as the reference does, so the scale is never 0.
//           Deviation: for a group without negative values the reference keeps min = 0 in the
//           symmetric case, giving scale = max / (2^b - 1) and clipping the upper half; we always
//           use 2·absmax, so the bound |w - deq| <= scale/2 holds for every element.
//           Rounding is to nearest, ties to even, as torch.round.
//   Float   scale = absmax / (format's max finite), so the group absmax maps onto the largest
//           element; all-zero groups use absmax = 1.
//   NF4     scale = absmax (bitsandbytes' blockwise absmax); all-zero groups use 1.
//   Binary  zero = μ = mean, scale = α = mean|w - μ| (PB-LLM); w >= μ encodes +α. α is 0 for a
//           constant group, which then decodes exactly.
//   Ternary zero = Δ = 0.7·mean|w| (the encode threshold), scale = α = mean of |w| over |w| > Δ
//           (TWN's optimal α for that Δ); |w| <= Δ encodes 0. An all-zero group has α = 0.

#include "quantlens/quant/formats.h"

#include <Eigen/Core>

#include <cstdint>
#include <vector>

namespace ql {

/// Parameters of one (row, group); see formats.h for what scale and zero mean per kind.
struct GroupParams {
    float scale = 1.f;
    float zero = 0.f;
};

/// Round-to-nearest parameters of format f for a group of values (rules above). `clip` in
/// (0, 1] shrinks the range as GPTQ's MSE grid does (min and max, or absmax, times clip);
/// binary and ternary accept only 1. Errors on empty or non-finite input or an overflowing range.
Expected<GroupParams> computeParams(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> values, float clip = 1.f);

/// Parameters for a group without values (an unused act-order group, a fresh tensor).
GroupParams defaultParams(const WeightFormat& f);

/// Checks that p is usable with f: finite; scale > 0 where encoding divides by it (binary and
/// ternary allow 0); symmetric int zero = 2^(b-1); float and NF4 zero = 0; ternary Δ >= 0.
Expected<void> checkParams(const WeightFormat& f, const GroupParams& p);

/// Nearest code of w under p (int: clamp(round(w / scale) + zero, 0, 2^b - 1)). Never returns
/// an invalid code: NaN gives code 0 (binary, int) or the zero code, ±inf saturates.
uint32_t quantizeValue(const WeightFormat& f, const GroupParams& p, float w);

/// Value of code under p; the one decoder every dequantization uses.
float dequantizeCode(const WeightFormat& f, const GroupParams& p, uint32_t code);

/// Quantize-dequantize values with one set of parameters (e.g. inside a clip search).
Eigen::VectorXf fakeQuantize(const WeightFormat& f, const GroupParams& p, Eigen::Ref<const Eigen::VectorXf> values);

/// Codes and dequantized values of one weight column.
struct QuantizedColumn {
    std::vector<uint32_t> codes;
    Eigen::VectorXf values;
};

/// Quantizes one weight column, row r with (scales[r], zeros[r]): GPTQ's per-column step.
Expected<QuantizedColumn> quantizeColumn(const WeightFormat& f, Eigen::Ref<const Eigen::VectorXf> w,
                                         Eigen::Ref<const Eigen::VectorXf> scales,
                                         Eigen::Ref<const Eigen::VectorXf> zeros);

} // namespace ql
