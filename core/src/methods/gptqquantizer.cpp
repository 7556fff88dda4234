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
        {.name = "damp",
         .defaultValue = 0.01,
         .min = 0.0,
         .max = 1.0,
         .help = "Dampening: H += damp · mean(diag H) · I (GPTQ's percdamp)"},
        {.name = "auto_damp",
         .type = T::Bool,
         .defaultValue = true,
         .help = "When the dampened Hessian is not positive definite, retry with 10x the dampening and report it"},
        {.name = "block_size",
         .type = T::Int,
         .defaultValue = int64_t(128),
         .min = 1,
         .max = 4096,
         .help = "Columns per lazy batch update"},
        {.name = "act_order",
         .type = T::Bool,
         .defaultValue = false,
         .help = "Quantize columns in order of decreasing Hessian diagonal (desc_act)"},
        {.name = "static_groups",
         .type = T::Bool,
         .defaultValue = false,
         .help = "Compute all group parameters up front from the original weight"},
        {.name = "mse_clip",
         .type = T::Bool,
         .defaultValue = false,
         .help = "Search a clipping ratio per group (quant.py's mse grid)"},
        {.name = "block_invariant_groups",
         .type = T::Bool,
         .defaultValue = false,
         .help =
             "Take group parameters from the fully updated weights, so codes do not depend on block_size (the reference "
             "takes them from the weights as they were when the block began)"},
    };
}

Expected<LayerResult> GptqQuantizer::quantize(const LayerInput& in, const QuantSpec& spec, const ParamMap& p) const
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
    reportDamping(r.report, asked, *used);
    r.dequantized = std::move(g->dequantized);
    r.report.bitsPerWeight = effectiveBits(g->tensor);
    r.report.metrics["gptq_loss"] = g->loss;
    r.report.metrics["dead_columns"] = g->deadColumns;
    r.tensor = std::move(g->tensor);
    fillErrorReport(*in.weight, r.dequantized, in.hessian, r.report);
    r.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

void reportDamping(LayerReport& report, double asked, double used)
{
    report.metrics["damp"] = used;
    if (used != asked)
        report.notes.push_back("the Hessian was not positive definite with damp " + paramValueText(asked) +
                               "; raised to " + paramValueText(used));
}

} // namespace ql
