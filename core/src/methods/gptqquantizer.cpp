#include "quantlens/methods/gptqquantizer.h"

#include "quantlens/methods/gptq.h"

#include <chrono>

namespace ql {

std::string GptqQuantizer::description() const
{
    return "GPTQ: quantize column by column, pushing each error onto the remaining columns through the inverse Hessian";
}

std::vector<ParamSpec> GptqQuantizer::parameters() const
{
    using T = ParamSpec::Type;
    return {
        {"damp", T::Double, 0.01, 0.0, 1.0, {}, "Dampening: H += damp · mean(diag H) · I (GPTQ's percdamp)"},
        {"auto_damp", T::Bool, true, 0, -1, {}, "When the dampened Hessian is not positive definite, retry with 10x the dampening and report it"},
        {"block_size", T::Int, int64_t(128), 1, 4096, {}, "Columns per lazy batch update"},
        {"act_order", T::Bool, false, 0, -1, {}, "Quantize columns in order of decreasing Hessian diagonal (desc_act)"},
        {"static_groups", T::Bool, false, 0, -1, {}, "Compute all group parameters up front from the original weight"},
        {"mse_clip", T::Bool, false, 0, -1, {}, "Search a clipping ratio per group (quant.py's mse grid)"},
        {"block_invariant_groups", T::Bool, false, 0, -1, {},
         "Take group parameters from the fully updated weights, so codes do not depend on block_size (the reference "
         "takes them from the weights as they were when the block began)"},
    };
}

Expected<LayerResult> GptqQuantizer::quantize(const LayerInput& in, const QuantSpec& spec,
                                       const ParamMap& p) const
{
    const auto t0 = std::chrono::steady_clock::now();
    if (!in.weight || !in.hessian || in.hessian->size() == 0)
        return makeError("GPTQ needs the layer's Hessian: give calibration data");
    GptqOptions o;
    o.blockSize = int(paramInt(p, "block_size"));
    o.actOrder = paramBool(p, "act_order");
    o.staticGroups = paramBool(p, "static_groups");
    o.mseClip = paramBool(p, "mse_clip");
    o.blockInvariantGroups = paramBool(p, "block_invariant_groups");
    Expected<GptqResult> g = makeError("not run");
    const double asked = paramDouble(p, "damp");
    auto used = withAutoDamping(asked, paramBool(p, "auto_damp"), [&](double damp) -> Expected<void> {
        o.damp = damp;
        g = gptqQuantize(*in.weight, *in.hessian, spec.weight, o);
        if (!g) return g.error();
        return {};
    });
    if (!used) return used.error();
    LayerResult r;
    r.report.metrics["damp"] = *used;
    if (*used != asked)
        r.report.notes.push_back("the Hessian was not positive definite with damp " + paramValueText(asked) +
                                 "; raised to " + paramValueText(*used));
    r.dequantized = std::move(g->dequantized);
    r.report.bitsPerWeight = effectiveBits(g->tensor);
    r.report.metrics["gptq_loss"] = g->loss;
    r.report.metrics["dead_columns"] = g->deadColumns;
    r.tensor = std::move(g->tensor);
    fillErrorReport(*in.weight, r.dequantized, in.hessian, r.report);
    r.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

} // namespace ql
