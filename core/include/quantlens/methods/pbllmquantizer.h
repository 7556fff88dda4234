#pragma once

#include "quantlens/quant/quantizer.h"

namespace ql {

/// PB-LLM as a quantizer: salient weights at high precision, the rest binarized with GPTQ compensation.
class PbllmQuantizer final : public Quantizer {
public:
    std::string id() const override { return "pbllm"; }
    std::string description() const override;
    std::vector<ParamSpec> parameters() const override;
    bool needsHessian() const override { return true; }
    Expected<LayerResult> quantize(const LayerInput& in, const QuantSpec& spec, const ParamMap& params) const override;
};

} // namespace ql
