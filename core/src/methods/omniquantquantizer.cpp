#include "quantlens/methods/omniquantquantizer.h"

#include "quantlens/methods/omniquant.h"

#include <chrono>

namespace ql {

std::string OmniQuantQuantizer::description() const
{
    return "OmniQuant (Shao et al. 2024): learnable weight clipping, optionally with the learnable equivalent "
           "transformation, trained block by block on the output MSE";
}

std::vector<ParamSpec> OmniQuantQuantizer::parameters() const
{
    const OmniQuantOptions d;
    return {
        {.name = "epochs",
         .type = ParamSpec::Type::Int,
         .defaultValue = int64_t(d.epochs),
         .min = 0,
         .max = 1000,
         .help = "Passes over the calibration windows, one AdamW step per window"},
        {.name = "lwc_lr",
         .defaultValue = double(d.lwcLr),
         .min = 1e-6,
         .max = 1.0,
         .help = "AdamW learning rate of the clipping factors"},
        {.name = "weight_decay",
         .defaultValue = double(d.weightDecay),
         .min = 0.0,
         .max = 1.0,
         .help = "AdamW weight decay of the clipping factors"},
        {.name = "init_value",
         .defaultValue = double(d.initValue),
         .min = -20.0,
         .max = 20.0,
         .help = "Initial logit of the clipping factors (sigmoid(4) keeps 98% of each group's range)"},
        {.name = "let",
         .type = ParamSpec::Type::Bool,
         .defaultValue = d.let,
         .help = "Learnable equivalent transformation: per-channel scales folded into the norms and between "
                 "v/o and q/k, trained with the clipping (the paper's weight-activation setting)"},
        {.name = "let_lr",
         .defaultValue = double(d.letLr),
         .min = 1e-6,
         .max = 1.0,
         .help = "AdamW learning rate of the LET scales"},
        {.name = "alpha",
         .defaultValue = double(d.alpha),
         .min = 0.0,
         .max = 1.0,
         .help = "LET's initial migration strength: scales start at act^alpha / weight^(1-alpha)"},
        {.name = "aug_loss",
         .type = ParamSpec::Type::Bool,
         .defaultValue = d.augLoss,
         .help = "Also fit the float block's output on the quantized model's input (the reference's W4A4 runs)"},
    };
}

Expected<BlockResult> OmniQuantQuantizer::quantizeBlock(const BlockInput& in, const ParamMap& params,
                                                        Feedback* fb) const
{
    const auto t0 = std::chrono::steady_clock::now();
    OmniQuantOptions o;
    o.epochs = int(paramInt(params, "epochs"));
    o.lwcLr = float(paramDouble(params, "lwc_lr"));
    o.weightDecay = float(paramDouble(params, "weight_decay"));
    o.initValue = float(paramDouble(params, "init_value"));
    o.let = paramBool(params, "let");
    o.letLr = float(paramDouble(params, "let_lr"));
    o.alpha = float(paramDouble(params, "alpha"));
    o.augLoss = paramBool(params, "aug_loss");
    if (in.floatAbsmax) o.actAbsmax = *in.floatAbsmax;
    int count = 0;
    for (int k = 0; k < kLinearCount; ++k) {
        if (!in.specs[size_t(k)]) continue;
        auto g = asymmetricGrid(*in.specs[size_t(k)], (*in.weights)[LinearKind(k)].cols(), in.names[size_t(k)], id());
        if (!g) return g.error();
        o.specs[size_t(k)] = ClipQuantSpec{g->bits, g->group, false};
        ++count;
    }
    auto clip = trainBlockClipping(*in.config, *in.weights, *in.inputs, *in.targets, o, fb);
    if (!clip) return clip.error();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BlockResult r;
    r.lossBefore = clip->lossBefore;
    r.lossAfter = clip->lossAfter;
    r.stepLoss = clip->epochLoss;
    // With LET the codes are those of the transformed weights, and the errors are measured
    // against them; the transformed norms travel with the layers that read them.
    BlockWeights transformed;
    BlockInput basis = in;
    if (o.let) {
        applyLet(*in.config, *in.weights, clip->let, transformed);
        basis.weights = &transformed;
    }
    for (int k = 0; k < kLinearCount; ++k) {
        if (!o.specs[size_t(k)]) continue;
        auto t = ClippedFakeQuant::encode((*basis.weights)[LinearKind(k)], *o.specs[size_t(k)], clip->gamma[size_t(k)],
                                          clip->beta[size_t(k)], in.specs[size_t(k)]->weight);
        if (!t) return makeError("layer " + in.names[size_t(k)] + ": " + t.message());
        LayerResult& layer = r.layers[size_t(k)].emplace(finishBlockLayer(basis, k, std::move(*t), seconds / count));
        layer.report.metrics["epochs"] = o.epochs;
        if (!o.let) continue;
        const BlockPoint site = siteOf(LinearKind(k));
        if (site == BlockPoint::AttnIn && clip->let.qkv.size()) layer.inputNorm = transformed.attnNorm;
        if (site == BlockPoint::MlpIn && clip->let.fc1.size()) layer.inputNorm = transformed.mlpNorm;
    }
    if (o.let) {
        const auto scales = clip->let.all();
        const char* names[] = {"qkv", "fc1", "out", "qk"};
        std::string used;
        for (size_t i = 0; i < scales.size(); ++i)
            if (scales[i]->size()) used += std::string(used.empty() ? "" : ", ") + names[i];
        r.notes.push_back("LET scales: " +
                          (used.empty() ? std::string("none (their linears are not all quantized)") : used));
    }
    return r;
}

} // namespace ql
