#include "quantizerun.h"

#include "clicommon.h"

#include "quantlens/params.h"
#include "quantlens/siteranges.h"

namespace ql::cli {

void addRecipeOptions(QCommandLineParser& p)
{
    p.addOption({QStringLiteral("recipe"), QStringLiteral("Quantization recipe (JSON, docs/recipe.md)."), QStringLiteral("R.json")});
    p.addOption({QStringLiteral("calib"), QStringLiteral("Calibration text; overrides the recipe's file."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("samples"), QStringLiteral("Calibration windows (overrides the recipe)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("seqlen"), QStringLiteral("Tokens per calibration window (overrides the recipe)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("sampling"), QStringLiteral("contiguous or random (overrides the recipe)."), QStringLiteral("S")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Seed of random sampling (overrides the recipe)."), QStringLiteral("N")});
    p.addOption({QStringLiteral("mode"), QStringLiteral("sequential or parallel (overrides the recipe)."), QStringLiteral("M")});
}

Expected<QuantizeRun> quantizeWithRecipe(const QCommandLineParser& p, const Model& model, const Tokenizer* tokenizer,
                                         const PluginRegistry& plugins, int threads, Feedback* fb)
{
    QuantizeRun run;
    auto recipe = loadRecipe(p.value(QStringLiteral("recipe")).toStdString());
    if (!recipe) return recipe.error();
    run.recipe = std::move(*recipe);
    Recipe& r = run.recipe;
    CalibrationSpec& cs = r.calibration;
    if (p.isSet(QStringLiteral("samples"))) {
        auto v = intOption(p, QStringLiteral("samples"), 1);
        if (!v) return v.error();
        cs.samples = *v;
    }
    if (p.isSet(QStringLiteral("seqlen"))) {
        auto v = intOption(p, QStringLiteral("seqlen"), 2);
        if (!v) return v.error();
        cs.seqlen = *v;
    }
    if (p.isSet(QStringLiteral("sampling"))) {
        const QString s = p.value(QStringLiteral("sampling"));
        if (s == QLatin1String("random")) cs.sampling = Sampling::Random;
        else if (s == QLatin1String("contiguous")) cs.sampling = Sampling::Contiguous;
        else return makeError("--sampling must be contiguous or random");
    }
    if (p.isSet(QStringLiteral("seed"))) {
        bool ok = false;
        cs.seed = p.value(QStringLiteral("seed")).toULongLong(&ok);
        if (!ok) return makeError("--seed expects a non-negative integer");
    }
    if (p.isSet(QStringLiteral("mode"))) {
        const QString m = p.value(QStringLiteral("mode"));
        if (m == QLatin1String("sequential")) r.mode = Recipe::PipelineMode::Sequential;
        else if (m == QLatin1String("parallel")) r.mode = Recipe::PipelineMode::Parallel;
        else return makeError("--mode must be sequential or parallel");
    }
    if (p.isSet(QStringLiteral("calib"))) r.calibrationFile = p.value(QStringLiteral("calib")).toStdString();

    auto specs = resolveRecipe(r, model.linearLayers());
    if (!specs) return specs.error();
    run.specs = std::move(*specs);
    if (!r.calibrationFile.empty()) {
        if (!tokenizer) return makeError("calibration needs the model's tokenizer, which could not be loaded");
        auto text = readCalibrationText(r.calibrationFile);
        if (!text) return text.error();
        auto calib = makeCalibrationSet(*text, *tokenizer, cs);
        if (!calib) return makeError(r.calibrationFile + ": " + calib.message());
        run.calib = std::move(*calib);
    }
    PipelineOptions po;
    po.sequential = r.mode == Recipe::PipelineMode::Sequential;
    po.threads = threads;
    if (!r.transforms.empty()) {
        // Transforms rewrite an in-memory copy of the float weights, in recipe order; statistics
        // are measured on the weights as each transform finds them.
        if (fb) fb->message("loading the float weights for " + std::to_string(r.transforms.size()) + " transform(s)");
        auto fw = FloatWeights::load(model, fb);
        if (!fw) return fw.error();
        run.transformed = std::make_unique<FloatWeights>(std::move(*fw));
        for (size_t i = 0; i < r.transforms.size(); ++i) {
            const TransformStep& step = r.transforms[i];
            const std::string where = "transforms[" + std::to_string(i) + "] (" + step.method + "): ";
            const Transform* t = plugins.transform(step.method);
            if (!t) return makeError(where + "no plugin provides this transform");
            auto params = completeParams(t->parameters(), step.params, step.method);
            if (!params) return makeError(where + params.message());
            std::vector<SiteStats> sites;
            TransformContext ctx;
            ctx.feedback = fb;
            ctx.threads = threads;
            if (t->needsCalibration()) {
                if (run.calib.windows.empty())
                    return makeError(where + "needs calibration windows: give calibration data (--calib)");
                ctx.windows = &run.calib.windows;
            }
            if (t->needsStatistics()) {
                if (run.calib.windows.empty())
                    return makeError(where + "needs activation statistics: give calibration data (--calib)");
                auto st = siteRanges(run.transformed->config(), *run.transformed, run.calib.windows, threads, fb);
                if (!st) return makeError(where + st.message());
                sites = std::move(*st);
                ctx.sites = &sites;
            }
            if (fb) fb->message("transform " + step.method);
            auto applied = t->apply(*run.transformed, ctx, *params);
            if (!applied) return makeError(where + applied.message());
            po.baseIdentity += step.method + "(" + specKey(QuantSpec{step.method, *params}) + ");";
        }
        po.base = run.transformed.get();
    }
    QuantPipeline pipe(model, [&plugins](const std::string& id) { return plugins.quantizer(id); });
    auto qm = pipe.run(run.specs, run.calib, po, fb);
    if (!qm) return qm.error();
    run.model = std::move(*qm);
    run.stats = pipe.lastRun();
    return run;
}

nlohmann::json runReport(const Model& model, const QuantizeRun& run)
{
    nlohmann::json layers = nlohmann::json::array();
    double bits = 0, params = 0, floatParams = 0;
    for (const auto& l : model.linearLayers()) {
        const double n = double(l.outFeatures) * double(l.inFeatures);
        const QuantizedLayer* q = run.model->layer(l.name);
        if (!q) {
            floatParams += n;
            layers.push_back({{"layer", l.name}, {"method", "float"}});
            continue;
        }
        const LayerReport& rep = q->result->report;
        nlohmann::json j{{"layer", l.name},
                         {"method", q->spec.method},
                         {"format", q->spec.weight.format},
                         {"group", q->spec.weight.groupSize},
                         {"bits_per_weight", rep.bitsPerWeight},
                         {"weight_rel_error", rep.weightRelError},
                         {"seconds", rep.seconds}};
        if (rep.outputRelMse) j["output_rel_mse"] = *rep.outputRelMse;
        if (!rep.metrics.empty()) j["metrics"] = rep.metrics;
        if (!rep.notes.empty()) j["notes"] = rep.notes;
        layers.push_back(j);
        bits += rep.bitsPerWeight * n;
        params += n;
    }
    return {{"layers", layers},
            {"quantized_weights", params},
            {"float_linear_weights", floatParams},
            {"bits_per_weight", params > 0 ? bits / params : 0.0},
            {"layers_quantized", run.stats.layersQuantized},
            {"block_forwards", run.stats.blockForwards},
            {"block_parts", run.stats.blockParts},
            {"seconds", run.stats.seconds},
            {"calib_sha256", run.calib.sha256},
            {"calib_windows", run.calib.windows.size()}};
}

} // namespace ql::cli
