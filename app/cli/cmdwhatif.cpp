#include "clicommon.h"
#include "quantlens/base/atomicfile.h"
#include "quantizerun.h"

#include "quantlens/forward/quickeval.h"
#include "quantlens/recipe/planedit.h"

#include <cstdio>
#include <fstream>

namespace ql::cli {

int cmdWhatIf(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption(
        {QStringLiteral("edit"),
         QStringLiteral("A plan edit, LAYER_OR_GLOB:key=value[,key=value] with a recipe override's keys "
                        "(method, bits, sym, group, format, granularity), or LAYER:float=true to keep a layer in float "
                        "(float=false undoes it); repeat for several, in order."),
         QStringLiteral("EDIT")});
    p.addOption(
        {QStringLiteral("data"), QStringLiteral("Text of the quick evaluation slice."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("ctx"), QStringLiteral("Window length in tokens."), QStringLiteral("N"),
                 QStringLiteral("512")});
    p.addOption({QStringLiteral("quick"), QStringLiteral("Windows in the quick slice (llama.cpp protocol)."),
                 QStringLiteral("N"), QStringLiteral("8")});
    p.addOption(
        {QStringLiteral("out-recipe"), QStringLiteral("Write the edited recipe here."), QStringLiteral("FILE")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    addComputeOption(p);
    addRecipeOptions(p);
    if (!parseArgs(p, args, 1,
                   "quantlens-cli whatif MODEL_DIR --recipe R.json --edit LAYER:key=value [--edit ...] --data FILE "
                   "[--quick 8] [--ctx 512] [--compute fp32|bf16] [--out-recipe FILE] [--json]"))
        return 1;
    if (!p.isSet(QStringLiteral("recipe"))) return fail("whatif needs --recipe R.json (the plan before the edits)");
    if (!p.isSet(QStringLiteral("edit"))) return fail("whatif needs at least one --edit LAYER:key=value");
    if (!p.isSet(QStringLiteral("data"))) return fail("whatif needs --data FILE (the quick evaluation slice)");
    auto quickOpt = quickSliceOptions(p);
    if (!quickOpt) return fail(quickOpt.message());
    const EvalOptions& opt = *quickOpt;

    const std::string dir = p.positionalArguments()[0].toStdString();
    const std::string dataPath = p.value(QStringLiteral("data")).toStdString();
    auto input = openQuickSliceInput(p, opt);
    if (!input) return fail(input.message());
    const Model& model = input->opened.model;
    const Tokenizer& tok = *input->opened.tokenizer;
    const int bos = tok.addsBos() ? tok.bosId() : -1;

    auto base = recipeFromOptions(p);
    if (!base) return fail(base.message());
    Recipe edited = *base;
    for (const QString& e : p.values(QStringLiteral("edit"))) {
        auto r = applyPlanEditText(std::move(edited), e.toStdString());
        if (!r) return fail(r.message());
        edited = std::move(*r);
    }

    PluginRegistry plugins;
    scanPlugins(plugins);
    // One runner for both plans: the edited plan re-quantizes only what the edits changed.
    RecipeRunner runner = makeRecipeRunner(model, plugins, opt.threads);
    auto memory = guardQuickSlice(model, runner.memoryJob(*base), *input, opt, bos, "whatif");
    if (!memory) return fail(memory.message());
    CliFeedback fb("whatif");
    auto quickEval = QuickEvaluator::prepare(model, input->tokens, bos, opt, &fb);
    if (!quickEval) return fail(quickEval.message());
    auto before = runner.run(*base, &tok, &fb);
    if (!before) return fail(before.message());
    auto mBefore = measurePlan(model, *before, nullptr, *quickEval);
    if (!mBefore) return fail(mBefore.message());
    auto after = runner.run(edited, &tok, &fb);
    if (!after) return fail(after.message());
    auto mAfter = measurePlan(model, *after, &*before, *quickEval);
    if (!mAfter) return fail(mAfter.message());

    if (p.isSet(QStringLiteral("out-recipe"))) {
        const std::string out = p.value(QStringLiteral("out-recipe")).toStdString();
        if (auto w = writeFileAtomically(out, recipeToJson(edited)); !w) return fail(w.message());
    }
    // The layers an edit touched, before and after, as the plan table's rows.
    nlohmann::json changed = nlohmann::json::array();
    for (const auto& [name, row] : (*mAfter)["layers"].items())
        if ((*mBefore)["layers"][name] != row)
            changed.push_back({{"layer", name}, {"before", (*mBefore)["layers"][name]}, {"after", row}});
    nlohmann::json j{{"model_dir", dir},
                     {"data", dataPath},
                     {"n_ctx", opt.ctx},
                     {"compute", opt.runtime.bf16Products ? "bf16" : "fp32"},
                     {"edits", p.values(QStringLiteral("edit")).join(QLatin1Char(' ')).toStdString()},
                     {"changed_layers", changed},
                     {"before", *mBefore},
                     {"after", *mAfter},
                     {"memory", *memory}};
    j["before"].erase("layers");
    j["after"].erase("layers");
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    auto line = [](const char* what, const nlohmann::json& m) {
        std::printf("%-7s KL %.6f  top-1 %.2f%%  ppl %.4f  %.3f bits/weight  %.2f MB  (%d layers quantized)\n", what,
                    m["mean_kl"].get<double>(), 100.0 * m["top1_agreement"].get<double>(), m["ppl"].get<double>(),
                    m["bits_per_weight"].get<double>(), double(m["model_bytes"].get<int64_t>()) / 1e6,
                    m["layers_quantized"].get<int>());
    };
    line("before", j["before"]);
    line("after", j["after"]);
    for (const auto& c : changed)
        std::printf("  %-40s weight error %.3e -> %.3e, %.3f -> %.3f bits/weight\n",
                    c["layer"].get<std::string>().c_str(), c["before"].value("weight_rel_error", 0.0),
                    c["after"].value("weight_rel_error", 0.0), c["before"].value("bits_per_weight", 16.0),
                    c["after"].value("bits_per_weight", 16.0));
    return 0;
}

} // namespace ql::cli
