#pragma once

#include "quantlens/model/weights.h"
#include "quantlens/quant/quantizedtensor.h"

#include <Eigen/Core>

#include <string>

namespace ql {

/// Groups per row of a learned grid over `in` inputs in groups of `group` (0: one per row); the
/// last group is partial when group does not divide in.
inline Eigen::Index learnedGridGroups(int group, Eigen::Index in)
{
    return group > 0 ? (in + group - 1) / group : 1;
}

/// True when a learned grid of `bits` (at most maxBits) with that group fits `in` inputs.
inline bool learnedGridFits(int bits, int maxBits, int group, Eigen::Index in)
{
    return bits >= 2 && bits <= maxBits && group >= 0 && in > 0;
}

/// An empty tensor of format for a learned asymmetric grid of `bits` with `groups` groups per row,
/// or an error (naming `method`) when the format cannot hold that grid.
Expected<QuantizedTensor> learnedGridTensor(const std::string& method, Eigen::Index rows, Eigen::Index cols, int bits,
                                            Eigen::Index groups, const FormatSpec& format);

/// The grid of a learnably clipped weight (OmniQuant's UniformAffineQuantizer with LWC).
struct ClipQuantSpec {
    int bits = 4;
    int group = 128; ///< inputs per group; 0: one group per row
    bool symmetric = false;
};

/// Learnable weight clipping: fake quantization of a weight [out, in] in groups along the input
/// (a partial last group has its range widened to include 0, as the reference's zero padding does),
/// each group's maximum scaled by σ(γ) and its minimum by σ(β) before the grid is fitted:
///   s = clamp((σ(γ)·max − σ(β)·min) / (2^b − 1), 1e-5, 1e4), z = round(−σ(β)·min / s),
///   ŵ = (clamp(round(w/s) + z, 0, 2^b − 1) − z) · s,
/// and for a symmetric grid s = max(|σ(γ)·max|, |σ(β)·min|) / (2^(b−1) − 1), z = 2^(b−1) − 1.
/// Gradients use the straight-through estimator for round(w/s); z is a constant to them, as in
/// OmniQuant's code (its zero point is rounded without a straight-through estimator).
class ClippedFakeQuant {
public:
    /// Validates the spec against a weight's shape: bits in [2, 16], a group ≥ 0.
    static bool fits(const ClipQuantSpec& spec, Eigen::Index in);
    /// Groups per row.
    static Eigen::Index groups(const ClipQuantSpec& spec, Eigen::Index in);

    /// out = ŵ; gamma and beta are rows × groups.
    static void forward(const ConstRowMap& w, const ClipQuantSpec& spec, const Eigen::MatrixXf& gamma,
                        const Eigen::MatrixXf& beta, RowMatrix& out);
    /// The codes forward() rounds to, as a tensor of format (an asymmetric integer format of
    /// spec.bits, grouped as spec): its dequantize() equals forward()'s output exactly.
    static Expected<QuantizedTensor> encode(const ConstRowMap& w, const ClipQuantSpec& spec,
                                            const Eigen::MatrixXf& gamma, const Eigen::MatrixXf& beta,
                                            const FormatSpec& format);
    /// From dOut = ∂L/∂ŵ, adds ∂L/∂γ and ∂L/∂β to dGamma and dBeta (rows × groups) and, when dw
    /// is not null, writes ∂L/∂w: straight through inside the grid, zero where a code clamps;
    /// with throughRange also through the grid's scale to each group's maximum and minimum
    /// element (torch's amax/amin, as OmniQuant's quantizer does when the weight itself is
    /// trained, e.g. under LET), else with the extrema held fixed.
    static void backward(const ConstRowMap& w, const ClipQuantSpec& spec, const Eigen::MatrixXf& gamma,
                         const Eigen::MatrixXf& beta, const ConstRowMap& dOut, Eigen::MatrixXf& dGamma,
                         Eigen::MatrixXf& dBeta, RowMatrix* dw, bool throughRange = false);
};

} // namespace ql
