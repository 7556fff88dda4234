#pragma once

// PB-LLM (Shang, Yuan et al. 2023; reference hahnyuan/PB-LLM low_high_gptq/gptq.py): partial
// binarization inside GPTQ. Each lazy block of columns is entered with its current (error-
// compensated) weights; the top salientFraction of the block's weights by the criterion stay at
// salientBits, the rest are binarized, and GPTQ pushes every weight's error onto later columns.
//
// Per (row, block), from the block's current weights when it is entered:
//   salient     int<salientBits>_asym over that row's salient weights of the block (GPTQ's
//               integer rule: range widened to include 0, scale (max - min)/(2^b - 1))
//   binarized   μ = mean and α = mean |w - μ| over that row's non-salient weights of the block;
//               w >= μ gives μ + α, else μ - α
// Deviations from the reference, and why:
// - The reference's μ and α average over the whole block row with the salient weights set to 0
//   (its own code marks this "seems to have problem"); here only the binarized weights count, so
//   α is the L1-optimal scale of exactly the weights it serves (the paper's definition).
// - The reference quantizes salient weights with one 8-bit per-row range over the whole original
//   row; here per (row, block) over the salient weights, so each block's range is tight.
// - The salient count is round(fraction · weights in the block), ties broken by position; the
//   reference takes a threshold at index int(n · (1 - fraction)) of the sorted scores (one fewer
//   salient weight, more on ties).
// - torch's sign(0) = 0 would give μ itself for w == μ; here w == μ binarizes to μ + α, so the
//   binarized part always takes one of two values.

#include "quantlens/methods/gptq.h"

#include <cstdint>
#include <vector>

namespace ql {

/// How PB-LLM ranks weights for the salient set.
enum class PbllmCriterion : uint8_t {
    Magnitude, ///< |w|
    Hessian,   ///< w² / U_jj², U the upper Cholesky factor of H⁻¹ (the OBS saliency)
};

/// PB-LLM settings.
struct PbllmOptions {
    double salientFraction = 0.1; ///< share of each block's weights kept at salientBits
    PbllmCriterion criterion = PbllmCriterion::Magnitude;
    int salientBits = 8; ///< 2..8, asymmetric integer
    double damp = 0.01;  ///< H += damp · mean(diag H) · I
    int blockSize = 128; ///< lazy-update block, also the unit of masks and parameters
};

/// A PB-LLM-quantized layer: GptqResult's tensor holds the binarized part.
struct PbllmResult : GptqResult {
    // GptqResult::tensor: format "binary", one (μ, α) per (row, block) (group size = blockSize);
    // its codes are meaningful only where salientMask is 0 (0 elsewhere).
    QuantizedTensor salient; ///< int<salientBits>_asym per (row, block); codes meaningful where salientMask is 1
    std::vector<uint8_t> salientMask; ///< [out, in] row-major, 1 = salient
    int64_t salientCount = 0;
    /// salient·salientBits + binarized·1 + parameters (fp16 μ, α, scale; zero at the code
    /// width, per row and block), per weight; the positions of salient weights are not counted.
    double bitsPerWeight = 0;
    /// Storage as the PB-LLM maintainers count it (hahnyuan/PB-LLM issue #1): every weight's
    /// bit, plus per salient weight its value and a 4-bit run length, plus parameters.
    double storedBitsPerWeight = 0;
};

/// PB-LLM on w [out, in] with H = Σ x xᵀ [in, in]; dequantized = salient where the mask is set,
/// else the binarized tensor, exactly. Errors as gptqQuantize, or on invalid options.
Expected<PbllmResult> pbllmQuantize(Eigen::Ref<const RowMatrix> w, const Eigen::MatrixXd& hessian,
                                    const PbllmOptions& opt = {});

} // namespace ql
