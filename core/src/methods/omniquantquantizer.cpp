#include "quantlens/methods/omniquantquantizer.h"

#include "quantlens/methods/omniquant.h"

#include <chrono>

namespace ql {

std::string OmniQuantQuantizer::description() const
{
    return "OmniQuant (Shao et al. 2024): learnable weight clipping trained block by block on the output MSE";
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
    for (int k = 0; k < kLinearCount; ++k) {
        if (!o.specs[size_t(k)]) continue;
        auto t = ClippedFakeQuant::encode((*in.weights)[LinearKind(k)], *o.specs[size_t(k)], clip->gamma[size_t(k)],
                                          clip->beta[size_t(k)], in.specs[size_t(k)]->weight);
        if (!t) return makeError("layer " + in.names[size_t(k)] + ": " + t.message());
        r.layers[size_t(k)] = finishBlockLayer(in, k, std::move(*t), seconds / count);
        r.layers[size_t(k)]->report.metrics["epochs"] = o.epochs;
    }
    return r;
}

} // namespace ql
