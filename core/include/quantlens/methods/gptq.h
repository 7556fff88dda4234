#pragma once

// GPTQ (Frantar et al. 2022; reference IST-DASLab/gptq gptq.py + quant.py, with the act-order,
// static-group and g_idx conventions of AutoGPTQ / GPTQModel): quantize one column at a time and
// push each column's error onto the columns not yet quantized, weighted by the inverse Hessian.
//
// Conventions, and where they differ from the reference:
// - H is Σ x xᵀ over the calibration tokens, as accumulated by the pipeline, not the reference's
//   2/n · Σ x xᵀ. Only the loss depends on that scale (dampening is relative to mean diag H).
// - Group parameters are computed when a group is entered. As in the reference (and AutoGPTQ /
//   GPTQModel after it), they come from the group's columns as they stood when the current lazy
//   block began (W, not the updated W1): a group that starts inside a block (group size < block
//   size, e.g. g = 32 with blocks of 128) ignores the updates of the block's earlier columns, so
//   the codes depend on the block size. blockInvariantGroups instead reads the fully updated
//   columns, which gives the column-by-column algorithm for every block size.
// - Per channel, the row parameters come from the weight after dead columns were zeroed (the
//   reference computes them before zeroing); per tensor, one (scale, zero) from the whole weight.
// - Act order sorts by descending diag H with a stable sort (ties keep column order).
// - The Hessian factor is computed in double; weight updates are float32 as in the reference
//   (torch float32), unless doublePrecision asks for double.

#include "quantlens/base/expected.h"
#include "quantlens/quant/quantizedtensor.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <functional>

namespace ql {

/// GPTQ settings (AutoGPTQ names in comments).
struct GptqOptions {
    double damp = 0.01;        ///< damp_percent: H += damp · mean(diag H) · I
    int blockSize = 128;       ///< columns per lazy batch update
    bool actOrder = false;     ///< desc_act: process columns by descending diag H
    bool staticGroups = false; ///< group parameters computed up front from the original weight
    bool mseClip = false;      ///< per group, shrink the range on quant.py's grid (grid 100, maxshrink 0.8, norm 2.4)
    bool doublePrecision = false; ///< weight updates in double instead of float32 (comparisons, not production)
    /// Group parameters from the fully updated weights (block-size invariant) instead of the
    /// weights at the start of the lazy block, which is what the reference code does.
    bool blockInvariantGroups = false;
};

/// A GPTQ-quantized layer.
struct GptqResult {
    QuantizedTensor tensor; ///< codes, parameters and g_idx (under act order as GPTQ checkpoints store it)
    RowMatrix dequantized;  ///< [out, in] in the original column order; equals tensor.dequantize()
    /// ½ Σ_j (w_j − q_j)² / U_jj² summed over rows (the reference's Losses.sum()) for the H passed:
    /// with H = Σ x xᵀ it is ½‖(W − Q) X‖² plus ½ λ ‖W − Q‖² from the dampening λ; times 2 / tokens
    /// it is the reference's number for its H = 2/n · Σ x xᵀ.
    double loss = 0;
    int deadColumns = 0; ///< input channels with H_jj = 0 (their weights become 0)
};

/// Quantizes w [out, in] with GPTQ given H = Σ x xᵀ [in, in] (double, lower triangle used).
/// Errors on shape mismatch, non-finite input, invalid options or a Hessian that is not
/// positive definite after dampening.
Expected<GptqResult> gptqQuantize(Eigen::Ref<const RowMatrix> w, const Eigen::MatrixXd& hessian, const FormatSpec& spec,
                                  const GptqOptions& opt = {});

/// Runs attempt(damp); while it fails because the dampened Hessian is not positive definite (or
/// the solve is not finite), and `automatic` is set, retries with ten times the dampening (0.01
/// after 0) up to 100·mean(diag H). Returns the dampening that worked, or the last error.
Expected<double> withAutoDamping(double damp, bool automatic, const std::function<Expected<void>(double)>& attempt);

} // namespace ql
