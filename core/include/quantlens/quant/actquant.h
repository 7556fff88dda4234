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

#include <Eigen/Core>

namespace ql {

/// Simulated activation quantization at a layer's input (bits 0: none).
struct ActQuantSpec {
    int bits = 0;
    bool perToken = true; ///< one scale per token; false: one per tensor
    bool symmetric = true;

    bool operator==(const ActQuantSpec&) const = default;
};

/// out = fake-quantized x (features × tokens) under spec; spec.bits must be in [2, 16].
void fakeQuantizeActivations(const Eigen::Ref<const Eigen::MatrixXf>& x, const ActQuantSpec& spec,
                             Eigen::MatrixXf& out);

} // namespace ql
