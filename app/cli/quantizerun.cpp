#include "quantizerun.h"

#include "quantlens/store/runfolder.h"

#include "clicommon.h"

#include <cstdio>

namespace ql::cli {

void addRecipeOptions(QCommandLineParser& p)
{
    p.addOption({QStringLiteral("recipe"), QStringLiteral("Quantization recipe (JSON, docs/recipe.md)."),
                 QStringLiteral("R.json")});
    p.addOption({QStringLiteral("calib"), QStringLiteral("Calibration text; overrides the recipe's file."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("samples"), QStringLiteral("Calibration windows (overrides the recipe)."),
                 QStringLiteral("N")});
    p.addOption({QStringLiteral("seqlen"), QStringLiteral("Tokens per calibration window (overrides the recipe)."),
                 QStringLiteral("N")});
    p.addOption({QStringLiteral("sampling"), QStringLiteral("contiguous or random (overrides the recipe)."),
                 QStringLiteral("S")});
    p.addOption({QStringLiteral("seed"), QStringLiteral("Seed of random sampling (overrides the recipe)."),
                 QStringLiteral("N")});
    p.addOption({QStringLiteral("mode"), QStringLiteral("sequential or parallel (overrides the recipe)."),
                 QStringLiteral("M")});
}

Expected<Recipe> recipeFromOptions(const QCommandLineParser& p)
{
    auto recipe = loadRecipe(p.value(QStringLiteral("recipe")).toStdString());
    if (!recipe) return recipe.error();
    Recipe r = std::move(*recipe);
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
        const auto s = parseSampling(p.value(QStringLiteral("sampling")).toStdString());
        if (!s) return makeError("--sampling must be contiguous or random");
        cs.sampling = *s;
    }
    if (p.isSet(QStringLiteral("seed"))) {
        bool ok = false;
        cs.seed = p.value(QStringLiteral("seed")).toULongLong(&ok);
        if (!ok) return makeError("--seed expects a non-negative integer");
    }
    if (p.isSet(QStringLiteral("mode"))) {
        const QString m = p.value(QStringLiteral("mode"));
        if (m == QLatin1String(pipelineModeName(Recipe::PipelineMode::Sequential)))
            r.mode = Recipe::PipelineMode::Sequential;
        else if (m == QLatin1String(pipelineModeName(Recipe::PipelineMode::Parallel)))
            r.mode = Recipe::PipelineMode::Parallel;
        else
            return makeError("--mode must be sequential or parallel");
    }
    if (p.isSet(QStringLiteral("calib"))) r.calibrationFile = p.value(QStringLiteral("calib")).toStdString();
    return r;
}

Expected<QuantizeRun> quantizeWithRecipe(const QCommandLineParser& p, const Model& model, const Tokenizer* tokenizer,
                                         const PluginRegistry& plugins, int threads, Feedback* fb,
                                         const MemoryJob* evaluation, nlohmann::json* memory)
{
    auto recipe = recipeFromOptions(p);
    if (!recipe) return recipe.error();
    RecipeRunner runner = makeRecipeRunner(model, plugins, threads);
    MemoryJob job = runner.memoryJob(*recipe);
    if (evaluation) {
        job.kind = MemoryJob::Kind::Eval;
        job.evalWindows = evaluation->evalWindows;
        job.ctx = evaluation->ctx;
        job.quantizes = true;
    }
    auto report = guardMemory(model, job, evaluation ? "quantizing, then evaluating" : "quantizing");
    if (!report) return report.error();
    if (memory) *memory = std::move(*report);
    return runner.run(*recipe, tokenizer, fb);
}

Expected<nlohmann::json> guardQuickSlice(const Model& model, MemoryJob job, const QuickSliceInput& input,
                                         const EvalOptions& opt, int bos, const std::string& what)
{
    auto windows = makeWindows(input.tokens, bos, opt);
    if (!windows) return windows.error();
    job.kind = MemoryJob::Kind::Eval;
    job.quantizes = true;
    job.ctx = opt.ctx;
    job.evalWindows = job.quickWindows = int64_t(windows->size());
    job.plansKept = 2;
    return guardMemory(model, job, what);
}

nlohmann::json runReport(const Model& model, const QuantizeRun& run)
{
    return nlohmann::json::parse(runReportJson(model, run));
}

void scanPlugins(PluginRegistry& plugins)
{
    plugins.scanDefault();
    for (const auto& problem : plugins.problems()) std::fprintf(stderr, "warning: %s\n", problem.c_str());
}

Expected<QuickSliceInput> openQuickSliceInput(const QCommandLineParser& p, const EvalOptions& opt)
{
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(p.positionalArguments()[0].toStdString(), &ofb);
    if (!opened) return opened.error();
    QL_TRY(checkSequenceLength(opened->model.config(), opt.ctx, false, "--ctx"));
    if (!opened->tokenizer) return makeError(opened->tokenizerError);
    auto tokens = readEvaluationTokens(p.value(QStringLiteral("data")).toStdString(), *opened->tokenizer);
    if (!tokens) return tokens.error();
    return QuickSliceInput{std::move(*opened), std::move(*tokens)};
}

Expected<nlohmann::json> measurePlan(const Model& model, const QuantizeRun& run, const QuantizeRun* previous,
                                     QuickEvaluator& quick)
{
    auto kl = quick.measure(*run.model, firstChangedBlock(run, previous));
    if (!kl) return kl.error();
    const nlohmann::json report = runReport(model, run);
    // Linears at their plan's bits; every other weight (embedding, norms, float linears) at 16 bits.
    const double quantized = report["quantized_weights"].get<double>();
    const double bits = report["bits_per_weight"].get<double>() * quantized +
                        16.0 * (double(model.parameterCount()) - quantized);
    nlohmann::json layers = nlohmann::json::object();
    for (const auto& l : report["layers"]) layers[l["layer"].get<std::string>()] = l;
    return nlohmann::json{{"mean_kl", kl->meanKl},
                          {"max_kl", kl->maxKl},
                          {"top1_agreement", kl->top1Agreement},
                          {"ppl", kl->pplModel},
                          {"ppl_float", kl->pplRef},
                          {"tokens_scored", kl->tokensScored},
                          {"bits_per_weight", report["bits_per_weight"]},
                          {"model_bytes", int64_t(bits / 8.0 + 0.5)},
                          {"layers_quantized", run.stats.layersQuantized},
                          {"quantize_seconds", run.stats.seconds},
                          {"eval_seconds", kl->seconds},
                          {"blocks_run", quick.blocksRun()},
                          {"layers", layers}};
}

} // namespace ql::cli
