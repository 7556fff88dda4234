#pragma once

// OmniQuant's learnable equivalent transformation (LET) on a LLaMA decoder block, scale only.
// Four per-channel scales move difficulty between activations and weights:
//   qkv: attn norm weight / s, q/k/v columns · s          (size hidden)
//   fc1: mlp norm weight / s, gate/up columns · s         (size hidden)
//   out: v rows / s, o columns · s                        (size kvHeads·headDim)
//   qk:  q rows / s, k rows · s                           (size kvHeads·headDim/2)
// Unlike the reference, two choices make every scale an exact equivalence under grouped-query
// attention and RoPE: out has one scale per v row, applied to the o columns of every head that
// reads that kv head; qk has one scale per rotary pair (d, d + headDim/2) of each kv head,
// applied to those k rows and to the same rows of every q head of its group, so the rotation
// commutes with it. Shifts are not used: on LLaMA they would give the RMSNorms and the linears
// biases the architecture (and every runtime loading it) does not have.

#include "quantlens/forward/site.h"
#include "quantlens/model/modelconfig.h"
#include "quantlens/model/weights.h"

#include <Eigen/Core>

#include <array>

namespace ql {

/// The four LET scale vectors of one block; an empty vector is a scale not used.
struct LetScales {
    Eigen::VectorXf qkv, fc1, out, qk;

    /// The vectors in a fixed order (qkv, fc1, out, qk), for loops over all of them.
    std::array<Eigen::VectorXf*, 4> all() { return {&qkv, &fc1, &out, &qk}; }
    std::array<const Eigen::VectorXf*, 4> all() const { return {&qkv, &fc1, &out, &qk}; }
};

/// Per-channel absolute maxima of the float model's activations at a block's sites
/// (attn_in, o_in, mlp_in, down_in), from which LET's scales start.
using SiteAbsmax = std::array<Eigen::VectorXf, kSiteCount>;

/// OmniQuant's initial scales for the linears marked trained (a scale is used only when every
/// linear it touches is trained): s = max(a^α / max(m, 1e-5)^(1−α), 1e-5) with a the site's
/// activation absmax (clamped at 1e-5) and m the column-wise maximum of q_proj (qkv), up_proj
/// (fc1) or o_proj (out) as the reference computes it (signed, not absolute); out takes, per v
/// row, the largest a and m over the heads of its group. Empty absmax vectors (no statistics)
/// start every used scale at 1. qk is left empty: the reference trains it because it also
/// quantizes the attention product's operands; with q and k unquantized the loss does not
/// depend on it (per-row grids scale with their rows, q·k is unchanged).
LetScales initialLetScales(const ModelConfig& config, const BlockWeights& block,
                           const std::array<bool, kLinearCount>& trained, const SiteAbsmax& absmax, float alpha);

/// OmniQuant's truncation before each use: a scale of magnitude below 1e-2 becomes ±1e-2 (its
/// sign kept; 0 stays 0).
void truncateLetScales(LetScales& s);

/// out = block with the scales applied to its norms, linear weights and the biases of rows a
/// scale multiplies (out owns them; hooks copied). In exact arithmetic out computes the same
/// function as block.
void applyLet(const ModelConfig& config, const BlockWeights& block, const LetScales& s, BlockWeights& out);

/// ∂L/∂s of every used scale, from the gradients of the transformed block's norm weights, its
/// linear weights before quantization (dWeight[k] empty for a linear no scale touches) and its
/// biases (empty where a linear has none); transformed is applyLet's output for s.
void letBackward(const ModelConfig& config, const BlockWeights& block, const BlockWeights& transformed,
                 const LetScales& s, const Eigen::VectorXf& dAttnNorm, const Eigen::VectorXf& dMlpNorm,
                 const std::array<RowMatrix, kLinearCount>& dWeight,
                 const std::array<Eigen::VectorXf, kLinearCount>& dBias, LetScales& grad);

} // namespace ql
