#pragma once

// Simulated ("fake") activation quantization: what a W·A· runtime does to a linear's input,
// computed dynamically from the values at hand (no calibrated static scales).
//
// Per token (one scale per column) or per tensor (one scale over every value passed):
//   symmetric:  s = max|x| / (2^(b-1) - 1),  q = clamp(round(x / s), -2^(b-1), 2^(b-1) - 1),  x̂ = q·s
//   asymmetric: lo = min(min x, 0), hi = max(max x, 0), s = (hi - lo) / (2^b - 1),
//               z = round(-lo / s),  q = clamp(round(x / s) + z, 0, 2^b - 1),  x̂ = (q - z)·s
// round() is round-half-to-even (torch.round); a zero range leaves the values unchanged. The
// asymmetric range always contains 0, as GPTQ's quant.py does, so 0 is exactly representable.
// In the forward pass "per tensor" means over one sequence's tokens of that site.
//
// The ggml grids are what llama.cpp's CPU path does to a matrix product's input before the dot
// products, by the weight's type (docs/gguf.md): f16 and bf16 weights read the input rounded to
// their type; q4_0, q5_0, q8_0 (and q4_1, q5_1, whose q8_1 holds the same values) read it as
// q8_0: per block of 32 features d = max|x| / 127 stored as fp16, q = round-half-even(x · 127 /
// max|x|), x̂ = fp16(d)·q; the K types read it as q8_K: per block of 256, with m the element of
// largest magnitude (sign kept), q = min(127, round-half-even(x · -127 / m)), x̂ = q / (-127 / m).

#include <Eigen/Core>

namespace ql {

/// How a simulated quantizer rounds: the integer grids, or a ggml runtime's input format.
enum class ActGrid { Integer, F16, BF16, Q8_0, Q8_K };

/// Simulated activation quantization at a layer's input (bits 0 with the integer grid: none).
struct ActQuantSpec {
    int bits = 0;
    bool perToken = true; ///< one scale per token; false: one per tensor
    bool symmetric = true;
    ActGrid grid = ActGrid::Integer; ///< a ggml grid ignores the three fields above

    /// Whether the spec changes anything.
    bool active() const { return grid != ActGrid::Integer || bits > 0; }

    bool operator==(const ActQuantSpec&) const = default;
};

/// Per 32-feature block of x (features × tokens, features a multiple of 32) and token, what
/// llama.cpp's q8_1 block sum puts in a q4_1/q5_1 product beyond the q8_0 values:
/// fp16(d·Σq) − fp16(d)·Σq with d = max|x|/127 and q the q8_0 codes; out is blocks × tokens.
void q8_1Correction(const Eigen::Ref<const Eigen::MatrixXf>& x, Eigen::MatrixXf& out);

/// out = fake-quantized x (features × tokens) under spec; spec.bits must be in [2, 16].
void fakeQuantizeActivations(const Eigen::Ref<const Eigen::MatrixXf>& x, const ActQuantSpec& spec,
                             Eigen::MatrixXf& out);

/// dx = ∂L/∂x from dOut = ∂L/∂x̂ of fakeQuantizeActivations(x, spec), as OmniQuant's quantizer is
/// differentiated: round passes straight through, a code that clamps passes nothing, the zero
/// point is a constant, and the scale passes its gradient to the element(s) its range came from
/// (the largest and smallest value of the token or tensor). A ggml grid passes dOut unchanged.
void fakeQuantizeActivationsBackward(const Eigen::Ref<const Eigen::MatrixXf>& x, const ActQuantSpec& spec,
                                     const Eigen::Ref<const Eigen::MatrixXf>& dOut, Eigen::MatrixXf& dx);

} // namespace ql
