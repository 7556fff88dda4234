#pragma once

#include "quantlens/quant/blockquantizer.h"

namespace ql {

/// OmniQuant's learnable weight clipping as a block method: every linear of a block gets a
/// learned clipping of its asymmetric grid, trained on the block's output MSE (omniquant.h).
class OmniQuantQuantizer final : public BlockQuantizer {
public:
    std::string id() const override { return "omniquant"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    Expected<BlockResult> quantizeBlock(const BlockInput& input, const ParamMap& params,
                                        Feedback* feedback) const override;
};

} // namespace ql
