#pragma once

#include "quantlens/quant/blockquantizer.h"

namespace ql {

/// AutoRound as a block method: learned rounding offsets and min/max factors of every linear's
/// asymmetric grid, trained by signed gradient descent on the block's output MSE (autoround.h).
class AutoRoundQuantizer final : public BlockQuantizer {
public:
    std::string id() const override { return "autoround"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    Expected<BlockResult> quantizeBlock(const BlockInput& input, const ParamMap& params,
                                        Feedback* feedback) const override;
};

} // namespace ql
