#pragma once

#include "quantlens/quant/quantizer.h"

namespace ql {

/// Round-to-nearest per (row, group), any format of the table; with `mse_clip`, GPTQ's grid
/// search shrinks each group's range to minimise Σ|q - w|^2.4 (grid 100, shrink up to 80 %).
class RtnQuantizer final : public Quantizer {
public:
    std::string id() const override { return "rtn"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    Expected<LayerResult> quantize(const LayerInput& input, const QuantSpec& spec,
                                   const ParamMap& params) const override;
};

} // namespace ql
