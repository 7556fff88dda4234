// AWQ as a recipe transform (awq.h): parameters to AwqOptions, calibration windows from the context.
#include "quantlens/methods/awq.h"

#include "quantlens/quant/formats.h"

namespace ql {

std::string AwqTransform::description() const
{
    return "AWQ: per-input-channel scales searched on the quantized block outputs and folded into the norms and "
           "preceding linears, then a weight clipping search; quantize with rtn afterwards";
}

std::vector<ParamSpec> AwqTransform::parameters() const
{
    using T = ParamSpec::Type;
    return {
        {.name = "bits",
         .type = T::Int,
         .defaultValue = int64_t(4),
         .min = 2,
         .max = 8,
         .help = "Integer bits of the quantization the searches assume (match the rtn rule)"},
        {.name = "sym",
         .type = T::Bool,
         .defaultValue = false,
         .help = "Symmetric integers in the searches (false: asymmetric with a zero point)"},
        {.name = "group",
         .type = T::Int,
         .defaultValue = int64_t(128),
         .min = -1,
         .max = 1 << 20,
         .help = "Input columns per quantization group; 0 or less: per output channel"},
        {.name = "alpha_grid",
         .type = T::Int,
         .defaultValue = int64_t(20),
         .min = 2,
         .max = 100,
         .help = "Scale exponents tried: α ∈ {0, 1/n, …, (n-1)/n}"},
        {.name = "clip",
         .type = T::Bool,
         .defaultValue = true,
         .help = "Search a per-group clipping range of every linear but q_proj and k_proj"},
        {.name = "max_shrink",
         .defaultValue = 0.5,
         .min = 0.0,
         .max = 0.95,
         .help = "Largest fraction the clip search shrinks a group's range by"},
        {.name = "clip_grid",
         .type = T::Int,
         .defaultValue = int64_t(20),
         .min = 2,
         .max = 100,
         .help = "Clip candidates are max|w|·(1 - i/n) for i < max_shrink·n"},
    };
}

Expected<void> AwqTransform::apply(FloatWeights& weights, const TransformContext& ctx, const ParamMap& params) const
{
    auto p = completeParams(parameters(), params, id());
    if (!p) return p.error();
    if (!ctx.windows || ctx.windows->empty())
        return makeError("awq needs calibration windows (it runs the model on them): give calibration data (--calib)");
    AwqOptions o;
    auto fmtId = intFormatId(int(paramInt(*p, "bits")), paramBool(*p, "sym"));
    if (!fmtId) return fmtId.error();
    o.weight.format = *fmtId;
    const int64_t group = paramInt(*p, "group");
    o.weight.granularity = group > 0 ? Granularity::PerGroup : Granularity::PerChannel;
    o.weight.groupSize = group > 0 ? int(group) : 0;
    o.grid = int(paramInt(*p, "alpha_grid"));
    o.clip = paramBool(*p, "clip");
    o.maxShrink = paramDouble(*p, "max_shrink");
    o.clipGrid = int(paramInt(*p, "clip_grid"));
    o.threads = ctx.threads;
    auto r = applyAwq(weights, *ctx.windows, o, ctx.feedback);
    if (!r) return r.error();
    if (ctx.feedback) {
        double plain = 0, best = 0;
        for (const AwqBlockReport& b : r->blocks)
            for (const AwqGroupResult& g : b.groups) {
                plain += g.lossPlain;
                best += g.lossBest;
            }
        ctx.feedback->message("awq: " + std::to_string(r->blocks.size()) + " blocks, " + o.weight.format +
                              (group > 0 ? " g" + std::to_string(group) : " per channel") +
                              ", summed module-output MSE " + std::to_string(plain) + " → " + std::to_string(best));
    }
    return {};
}

} // namespace ql
