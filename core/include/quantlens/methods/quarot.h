#pragma once

// Hadamard rotation of a LLaMA-family model (QuaRot); what is rotated and folded: docs/methods.md,
// "QuaRot".

#include "quantlens/model/floatweights.h"
#include "quantlens/forward/rotation.h"
#include "quantlens/quant/transform.h"

#include <cstdint>
#include <string>

namespace ql {

/// Settings of the Hadamard rotation.
struct RotationOptions {
    uint64_t seed = 0;      ///< random signs (and random factors, see rotation.h)
    bool onlineDown = true; ///< online Hadamard before down_proj
    bool rotateOv = true;   ///< per-head Hadamard between v_proj and o_proj
};

/// What a rotation used, for messages and reports.
struct RotationReport {
    std::string residual; ///< construction of Q (hidden)
    std::string head;     ///< of R_h (head_dim), empty when not rotated
    std::string down;     ///< of R_d (intermediate), empty when not rotated
};

/// Rotates weights in place as docs/methods.md, "QuaRot", describes.
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
