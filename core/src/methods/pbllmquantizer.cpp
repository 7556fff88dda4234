#include "quantlens/methods/pbllmquantizer.h"

#include "quantlens/methods/gptqquantizer.h"
#include "quantlens/methods/pbllm.h"

#include <chrono>

namespace ql {

std::string PbllmQuantizer::description() const
{
    return "PB-LLM: binarize most weights, keep a salient fraction at high precision, with GPTQ error compensation";
}

std::vector<ParamSpec> PbllmQuantizer::parameters() const
{
    using T = ParamSpec::Type;
    return {
        {.name = "salient_fraction",
         .defaultValue = 0.1,
         .min = 0.0,
         .max = 1.0,
         .help = "Share of the weights kept at salient_bits"},
        {.name = "criterion",
         .type = T::Choice,
         .defaultValue = std::string("hessian"),
         .choices = {"magnitude", "hessian"},
         .help = "Salient weights by |w| or by the OBS saliency w² / U_jj²"},
        {.name = "salient_bits",
         .type = T::Int,
         .defaultValue = int64_t(8),
         .min = 2,
         .max = 8,
         .help = "Bits of the salient weights (asymmetric integer)"},
        {.name = "damp",
         .defaultValue = 0.01,
         .min = 0.0,
         .max = 1.0,
         .help = "Dampening: H += damp · mean(diag H) · I"},
        {.name = "auto_damp",
         .type = T::Bool,
         .defaultValue = true,
         .help = "When the dampened Hessian is not positive definite, retry with 10x the dampening and report it"},
        {.name = "block_size",
         .type = T::Int,
         .defaultValue = int64_t(128),
         .min = 1,
         .max = 4096,
         .help = "Columns per block (lazy update, mask and parameter unit)"},
    };
}

Expected<LayerResult> PbllmQuantizer::quantize(const LayerInput& in, const QuantSpec&, const ParamMap& p) const
{
    const auto t0 = std::chrono::steady_clock::now();
    if (!in.weight || !in.hessian || in.hessian->size() == 0)
        return makeError("PB-LLM needs the layer's Hessian: give calibration data");
    PbllmOptions o;
    o.salientFraction = paramDouble(p, "salient_fraction");
    o.criterion = paramString(p, "criterion") == "magnitude" ? PbllmCriterion::Magnitude : PbllmCriterion::Hessian;
    o.salientBits = int(paramInt(p, "salient_bits"));
    o.blockSize = int(paramInt(p, "block_size"));
    Expected<PbllmResult> q = makeError("not run");
    const double asked = paramDouble(p, "damp");
    auto used = withAutoDamping(asked, paramBool(p, "auto_damp"), [&](double damp) -> Expected<void> {
        o.damp = damp;
        q = pbllmQuantize(*in.weight, *in.hessian, o);
        if (!q) return q.error();
        return {};
    });
    if (!used) return used.error();
    LayerResult r; // two formats in one weight: no single QuantizedTensor
    reportDamping(r.report, asked, *used);
    r.dequantized = std::move(q->dequantized);
    r.report.bitsPerWeight = q->bitsPerWeight;
    r.report.metrics["gptq_loss"] = q->loss;
    r.report.metrics["salient_weights"] = double(q->salientCount);
    r.report.metrics["stored_bits_per_weight"] = q->storedBitsPerWeight;
    r.report.notes.push_back("salient weights and binarized weights are kept as one dequantized weight");
    fillErrorReport(*in.weight, r.dequantized, in.hessian, r.report);
    r.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

} // namespace ql
