#pragma once

#include "quantlens/quant/quantizer.h"

namespace ql {

/// GPTQ as a quantizer: the options of gptq.py, dampening raised on demand, loss and dead columns reported.
class GptqQuantizer final : public Quantizer {
public:
    std::string id() const override { return "gptq"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    bool needsHessian() const override { return true; }
    Expected<LayerResult> quantize(const LayerInput& in, const QuantSpec& spec, const ParamMap& params) const override;
};

/// Records the dampening a Hessian method used (metric "damp"), with a note when withAutoDamping
/// had to raise it from what was asked.
void reportDamping(LayerReport& report, double asked, double used);

} // namespace ql
