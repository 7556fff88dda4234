#include "quantlens/methods/autoroundquantizer.h"

#include "quantlens/methods/autoround.h"

#include <chrono>

namespace ql {

std::string AutoRoundQuantizer::description() const
{
    return "AutoRound (Cheng et al. 2024): rounding and min/max factors learned by signed gradient descent, block by "
           "block";
}

std::vector<ParamSpec> AutoRoundQuantizer::parameters() const
{
    const AutoRoundOptions d;
    return {
        {.name = "iters",
         .type = ParamSpec::Type::Int,
         .defaultValue = int64_t(d.iters),
         .min = 0,
         .max = 100000,
         .help = "Signed-gradient steps per block"},
        {.name = "lr",
         .defaultValue = 0.0,
         .min = 0.0,
         .max = 1.0,
         .help = "Learning rate of the rounding offsets (0: 1 / iters), decayed linearly to 0"},
        {.name = "minmax_lr",
         .defaultValue = 0.0,
         .min = 0.0,
         .max = 1.0,
         .help = "Learning rate of the min/max factors (0: the same as lr)"},
        {.name = "batch",
         .type = ParamSpec::Type::Int,
         .defaultValue = int64_t(d.batch),
         .min = 1,
         .max = 4096,
         .help = "Calibration windows drawn at random per step"},
        {.name = "seed",
         .type = ParamSpec::Type::Int,
         .defaultValue = int64_t(d.seed),
         .min = 0,
         .max = 2147483647.0,
         .help = "Seed of the batch draws"},
        {.name = "keep_best",
         .type = ParamSpec::Type::Bool,
         .defaultValue = d.keepBest,
         .help = "Keep the parameters of the step with the lowest batch loss (else the last step's)"},
    };
}

Expected<BlockResult> AutoRoundQuantizer::quantizeBlock(const BlockInput& in, const ParamMap& params,
                                                        Feedback* fb) const
{
    const auto t0 = std::chrono::steady_clock::now();
    AutoRoundOptions o;
    o.iters = int(paramInt(params, "iters"));
    o.lr = float(paramDouble(params, "lr"));
    o.minmaxLr = float(paramDouble(params, "minmax_lr"));
    o.batch = int(paramInt(params, "batch"));
    o.seed = uint64_t(paramInt(params, "seed"));
    o.keepBest = paramBool(params, "keep_best");
    int count = 0;
    for (int k = 0; k < kLinearCount; ++k) {
        if (!in.specs[size_t(k)]) continue;
        auto g = asymmetricGrid(*in.specs[size_t(k)], (*in.weights)[LinearKind(k)].cols(), in.names[size_t(k)], id());
        if (!g) return g.error();
        o.specs[size_t(k)] = RoundQuantSpec{g->bits, g->group, true};
        ++count;
    }
    auto rounding = trainBlockRounding(*in.config, *in.weights, *in.inputs, *in.targets, o, fb);
    if (!rounding) return rounding.error();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BlockResult r;
    r.lossBefore = rounding->lossBefore;
    r.lossAfter = rounding->lossAfter;
    r.stepLoss = rounding->iterLoss;
    for (int k = 0; k < kLinearCount; ++k) {
        if (!o.specs[size_t(k)]) continue;
        auto t = RoundingFakeQuant::encode((*in.weights)[LinearKind(k)], *o.specs[size_t(k)], rounding->v[size_t(k)],
                                           rounding->minScale[size_t(k)], rounding->maxScale[size_t(k)],
                                           in.specs[size_t(k)]->weight);
        if (!t) return makeError("layer " + in.names[size_t(k)] + ": " + t.message());
        r.layers[size_t(k)] = finishBlockLayer(in, k, std::move(*t), seconds / count);
        r.layers[size_t(k)]->report.metrics["best_iter"] = rounding->bestIter;
    }
    return r;
}

} // namespace ql
