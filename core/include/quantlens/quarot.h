#pragma once

// Hadamard rotation of a LLaMA-family model (QuaRot, Ashkboos et al. 2024; reference
// spcl/QuaRot fake_quant/rotation_utils.py). Column-vector convention: a linear computes
// y = W·x with W [out, in]; hidden states are columns.
//
// 1. Fold each RMSNorm weight γ into the linears that read it: W ← W·diag(γ), γ ← 1
//    (q/k/v, gate/up, and the final norm into lm_head). RMSNorm(x) = x / rms(x) is then
//    scale-free, and rms(Qᵀx) = rms(x) for orthogonal Q, so RMSNorm(Qᵀx) = Qᵀ·RMSNorm(x).
// 2. Rotate the residual stream h ← Qᵀ·h with the random Hadamard matrix Q (hadamard.h) of
//    order hidden, drawn from `seed`:
//      embeddings   E ← E·Q               (a row of E is a token's hᵀ)
//      readers      W ← W·Q               q, k, v, gate, up, lm_head (after the fold)
//      writers      W ← Qᵀ·W, b ← Qᵀ·b    o_proj, down_proj (and their biases, if any)
//    q/k/v/gate/up biases are unchanged (they are added after the product).
// 3. rotate_ov: per attention head, v ← R_h·v with a Hadamard R_h of order head_dim
//    (W_v and b_v row blocks ← R_h·block) and o_proj's column block of that head ← block·R_hᵀ.
//    Attention mixes whole v vectors of one head, so o_in ← (I ⊗ R_h)·o_in and o_proj reads
//    the same output. Offline only (RoPE acts on q and k, never on v).
// 4. online_down: down_proj W ← W·R_dᵀ, and the forward pass applies R_d (order
//    intermediate) to the SwiGLU output before down_proj (BlockWeights::downInputRotation):
//    W·R_dᵀ·R_d·a = W·a. Applying it twice is refused: the hook holds one rotation.
// The tied lm_head is untied unless the final norm weight is all ones (then E·Q serves both).
// Every product is computed in double and stored as fp32.

#include "quantlens/floatweights.h"
#include "quantlens/hadamard.h"
#include "quantlens/transform.h"

#include <cstdint>
#include <string>

namespace ql {

/// Settings of the Hadamard rotation.
struct RotationOptions {
    uint64_t seed = 0;      ///< random signs (and random factors, see hadamard.h)
    bool onlineDown = true; ///< online Hadamard before down_proj
    bool rotateOv = true;   ///< per-head Hadamard between v_proj and o_proj
};

/// What a rotation used, for messages and reports.
struct RotationReport {
    std::string residual; ///< construction of Q (hidden)
    std::string head;     ///< of R_h (head_dim), empty when not rotated
    std::string down;     ///< of R_d (intermediate), empty when not rotated
};

/// Rotates weights in place as described in the file comment.
Expected<RotationReport> hadamardRotate(FloatWeights& weights, const RotationOptions& options = {},
                                        Feedback* feedback = nullptr);

/// The Hadamard rotation as a Transform (id "hadamard"; parameters seed, online_down, rotate_ov).
class HadamardRotationTransform final : public Transform {
public:
    std::string id() const override { return "hadamard"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    Expected<void> apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const override;
};

} // namespace ql
