#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/model/weights.h"
#include "quantlens/quant/quantizedtensor.h"

#include <Eigen/Core>

namespace ql {

/// The grid of a weight whose rounding is learned (AutoRound's asymmetric integer quantizer).
struct RoundQuantSpec {
    int bits = 4;
    int group = 128;       ///< inputs per group; 0: one group per row
    bool fp16Scale = true; ///< scales rounded to fp16, as AutoRound stores and trains them
};

/// AutoRound's fake quantization of a weight [out, in] in groups along the input. With each
/// group's range widened to include 0, lo = min(min w, 0)·m and hi = max(max w, 0)·M for the
/// learned factors m and M (in [0, 1]):
///   s = max(fp16((hi − lo) / (2^b − 1)), 1e-5), z = round(−lo / s),
///   ŵ = (clamp(round(w/s + v) + z, 0, 2^b − 1) − z) · s,
/// with v the learned per-weight rounding offset. Both roundings pass gradients straight
/// through (AutoRound's round_ste, zero point included), clamp passes them at its bounds.
class RoundingFakeQuant {
public:
    /// Validates the spec against a weight's input count: bits in [2, 8], a group ≥ 0.
    static bool fits(const RoundQuantSpec& spec, Eigen::Index in);
    /// Groups per row.
    static Eigen::Index groups(const RoundQuantSpec& spec, Eigen::Index in);

    /// out = ŵ; v is [out, in], minScale and maxScale rows × groups.
    static void forward(const ConstRowMap& w, const RoundQuantSpec& spec, const RowMatrix& v,
                        const Eigen::MatrixXf& minScale, const Eigen::MatrixXf& maxScale, RowMatrix& out);
    /// From dOut = ∂L/∂ŵ, writes ∂L/∂v and adds ∂L/∂m, ∂L/∂M to dMin and dMax.
    static void backward(const ConstRowMap& w, const RoundQuantSpec& spec, const RowMatrix& v,
                         const Eigen::MatrixXf& minScale, const Eigen::MatrixXf& maxScale, const ConstRowMap& dOut,
                         RowMatrix& dV, Eigen::MatrixXf& dMin, Eigen::MatrixXf& dMax);
    /// The codes forward() rounds to, as a tensor of format (an asymmetric integer format of
    /// spec.bits, grouped as spec): its dequantize() equals forward()'s output exactly.
    static Expected<QuantizedTensor> encode(const ConstRowMap& w, const RoundQuantSpec& spec, const RowMatrix& v,
                                            const Eigen::MatrixXf& minScale, const Eigen::MatrixXf& maxScale,
                                            const FormatSpec& format);
};

} // namespace ql
