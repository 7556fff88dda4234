#include "allocinputs.h"
#include "quantlens/base/atomicfile.h"
#include "clicommon.h"
#include "quantizerun.h"

#include "quantlens/analysis/analyzer.h"
#include "quantlens/forward/quickeval.h"
#include "quantlens/quant/formats.h"

#include <cstdio>
#include <fstream>

namespace ql::cli {

namespace {

// One point of the size-quality plane.
struct ParetoPoint {
    std::string plan, allocator, measure;
    double budgetBpw = 0;      ///< 0 for the uniform plans
    double predictedError = 0; ///< the allocator's objective (0 for the uniform plans)
    bool exact = false;
    nlohmann::json measured; ///< bits per weight, quick KL, top-1, perplexity
};

} // namespace

int cmdPareto(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("analysis"), QStringLiteral("The analysis store with the layers' sensitivity."),
                 QStringLiteral("A.h5")});
    p.addOption(
        {QStringLiteral("data"), QStringLiteral("Text of the quick evaluation slice."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("budgets"), QStringLiteral("Bits per weight to allocate for, comma separated."),
                 QStringLiteral("LIST"), QStringLiteral("2.5,3.0,3.5")});
    p.addOption({QStringLiteral("allocators"), QStringLiteral("Allocators to sweep, comma separated."),
                 QStringLiteral("LIST"), QStringLiteral("knapsack,greedy,baq,entropy,spike,hawq")});
    p.addOption(
        {QStringLiteral("measure"), QStringLiteral("Per-layer error to minimise (as allocate)."), QStringLiteral("M")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("Window length in tokens."), QStringLiteral("N"),
                 QStringLiteral("512")});
    p.addOption({QStringLiteral("quick"), QStringLiteral("Windows in the quick slice (llama.cpp protocol)."),
                 QStringLiteral("N"), QStringLiteral("8")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("csv"), QStringLiteral("Also write the points as CSV here."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    addComputeOption(p);
    if (!parseArgs(p, args, 1,
                   "quantlens-cli pareto MODEL_DIR --analysis A.h5 --data FILE [--budgets 2.5,3.0,3.5] "
                   "[--allocators knapsack,greedy,...] [--measure M] [--quick 8] [--ctx 512] [--compute fp32|bf16] "
                   "[--csv FILE] [--json]"))
        return 1;
    if (!p.isSet(QStringLiteral("analysis"))) return fail("pareto needs --analysis A.h5 (analyze writes it)");
    if (!p.isSet(QStringLiteral("data"))) return fail("pareto needs --data FILE (the quick evaluation slice)");
    std::vector<double> budgets;
    for (const QString& b : p.value(QStringLiteral("budgets")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        bool ok = false;
        const double v = b.toDouble(&ok);
        if (!ok || !(v > 0)) return fail("--budgets takes positive bits per weight, got '" + b.toStdString() + "'");
        budgets.push_back(v);
    }
    std::vector<std::string> allocators;
    for (const QString& a : p.value(QStringLiteral("allocators")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        if (auto f = allocatorByName(a.toStdString()); !f) return fail("--allocators: " + f.message());
        allocators.push_back(a.toStdString());
    }
    auto quickOpt = quickSliceOptions(p);
    if (!quickOpt) return fail(quickOpt.message());
    const EvalOptions& opt = *quickOpt;

    const std::string dir = p.positionalArguments()[0].toStdString();
    const std::string dataPath = p.value(QStringLiteral("data")).toStdString();
    auto input = openQuickSliceInput(p, opt);
    if (!input) return fail(input.message());
    const Model& model = input->opened.model;
    const Tokenizer& tok = *input->opened.tokenizer;
    const std::string store = p.value(QStringLiteral("analysis")).toStdString();
    auto analysis = readAnalysisFor(model, store, dir);
    if (!analysis) return fail(analysis.message());
    if (analysis->sensitivity.empty()) return fail(store + ": the analysis has no sensitivity; run analyze with it");

    PluginRegistry plugins;
    scanPlugins(plugins);
    RecipeRunner runner = makeRecipeRunner(model, plugins, opt.threads);
    // The uniform plans at each measured option, and the memory of the most demanding of them.
    const LayerSensitivity& measured = analysis->sensitivity.front();
    std::vector<Recipe> uniforms;
    MemoryJob job = runner.memoryJob(Recipe{});
    for (size_t k = 0; k < measured.bits.size(); ++k) {
        auto spec = sensitivityOptionSpec(measured.option(k));
        if (!spec) return fail(spec.message());
        Recipe& uniform = uniforms.emplace_back();
        uniform.rules.push_back({"*", *spec});
        const MemoryJob u = runner.memoryJob(uniform);
        job.hessians = job.hessians || u.hessians;
        job.blockMethod = job.blockMethod || u.blockMethod;
    }
    const int bos = tok.addsBos() ? tok.bosId() : -1;
    auto memory = guardQuickSlice(model, job, *input, opt, bos, "pareto");
    if (!memory) return fail(memory.message());
    CliFeedback fb("pareto");
    auto quickEval = QuickEvaluator::prepare(model, input->tokens, bos, opt, &fb);
    if (!quickEval) return fail(quickEval.message());
    // Quantizes a plan and measures it on the quick slice (whatif's measures, without the layers).
    auto measure = [&](const Recipe& recipe) -> Expected<nlohmann::json> {
        auto run = runner.run(recipe, &tok, &fb);
        if (!run) return run.error();
        auto m = measurePlan(model, *run, nullptr, *quickEval);
        if (m) m->erase("layers");
        return m;
    };

    std::vector<ParetoPoint> points;
    for (size_t k = 0; k < measured.bits.size(); ++k) {
        auto m = measure(uniforms[k]);
        if (!m) return fail(m.message());
        points.push_back({"uniform " + sensitivityOptionLabel(measured.option(k)), "uniform", "-", 0, 0, false, *m});
    }
    for (const std::string& name : allocators) {
        std::string measureName;
        auto am = measureFor(name, p.value(QStringLiteral("measure")).toStdString(), *analysis, &measureName);
        if (!am) return fail("--measure: " + am.message());
        auto items = measuredItems(model.linearLayers(), *analysis, *am, {}, &model);
        if (!items) return fail(store + ": " + items.message());
        const AllocatorFn allocate = *allocatorByName(name);
        for (double bpw : budgets) {
            const auto budget = int64_t(bpw * double(linearWeights(model.linearLayers())));
            auto a = allocate(*items, budget);
            if (!a) return fail(name + " at " + std::to_string(bpw) + " bits per weight: " + a.message());
            auto m = measure(allocationRecipe(*items, *a));
            if (!m) return fail(m.message());
            points.push_back({name + " at " + QString::number(bpw).toStdString() + " bpw", name, measureName, bpw,
                              a->error, a->exact, *m});
        }
    }

    nlohmann::json list = nlohmann::json::array();
    std::string csv = "plan,allocator,measure,budget_bpw,bits_per_weight,predicted_error,exact,mean_kl,"
                      "top1_agreement,ppl\n";
    for (const ParetoPoint& pt : points) {
        nlohmann::json j = pt.measured;
        j["plan"] = pt.plan;
        j["allocator"] = pt.allocator;
        j["measure"] = pt.measure;
        j["budget_bpw"] = pt.budgetBpw;
        j["predicted_error"] = pt.predictedError;
        j["exact"] = pt.exact;
        list.push_back(j);
        char line[512];
        std::snprintf(line, sizeof line, "%s,%s,%s,%g,%.6f,%.10g,%d,%.10g,%.6f,%.6f\n", pt.plan.c_str(),
                      pt.allocator.c_str(), pt.measure.c_str(), pt.budgetBpw, j["bits_per_weight"].get<double>(),
                      pt.predictedError, int(pt.exact), j["mean_kl"].get<double>(), j["top1_agreement"].get<double>(),
                      j["ppl"].get<double>());
        csv += line;
    }
    if (p.isSet(QStringLiteral("csv"))) {
        const std::string out = p.value(QStringLiteral("csv")).toStdString();
        if (auto w = writeFileAtomically(out, csv); !w) return fail(w.message());
    }
    if (p.isSet(QStringLiteral("json"))) {
        printJson({{"model_dir", dir},
                   {"analysis", store},
                   {"data", dataPath},
                   {"n_ctx", opt.ctx},
                   {"windows", opt.chunks},
                   {"compute", opt.runtime.bf16Products ? "bf16" : "fp32"},
                   {"points", list},
                   {"memory", *memory}});
        return 0;
    }
    std::fputs(csv.c_str(), stdout);
    return 0;
}

} // namespace ql::cli
