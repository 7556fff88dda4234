#include "allocinputs.h"
#include "quantlens/base/atomicfile.h"
#include "clicommon.h"

#include "quantlens/alloc/measuredoptions.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/quant/formats.h"
#include "quantlens/recipe/plansize.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/store/runstate.h"
#include "quantlens/text/calibration.h"

#include <chrono>
#include <cstdio>
#include <fstream>

namespace ql::cli {

int cmdAllocate(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("analysis"), QStringLiteral("The analysis store with the layers' sensitivity."),
                 QStringLiteral("A.h5")});
    p.addOption({QStringLiteral("budget"),
                 QStringLiteral("Size: bits per weight of the linears (3.0bpw), or the whole model (2.5GB, 800MB)."),
                 QStringLiteral("B")});
    p.addOption(
        {QStringLiteral("allocator"),
         QStringLiteral(
             "knapsack (exact), greedy (marginal gain), baq (closed form), entropy (lowest input "
             "entropy lowest), spike (inputs with outliers or massive activations kept wide) or hawq (knapsack on the hawq measure)."),
         QStringLiteral("A"), QStringLiteral("knapsack")});
    p.addOption({QStringLiteral("measure"),
                 QStringLiteral("Per-layer error to minimise: proxy, output, kl or hawq (Hessian trace × weight "
                                "perturbation; default: kl when the analysis has it, else proxy)."),
                 QStringLiteral("M")});
    p.addOption({QStringLiteral("tie"),
                 QStringLiteral("Layers that take one width: qkv, gateup, or both (qkv,gateup)."),
                 QStringLiteral("T")});
    p.addOption({QStringLiteral("pin"), QStringLiteral("Keep LAYER at BITS (repeat for several)."),
                 QStringLiteral("LAYER=BITS")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Write the plan as a recipe here."), QStringLiteral("R.json")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print one JSON object.")});
    if (!parseArgs(
            p, args, 1,
            "quantlens-cli allocate MODEL_DIR --analysis A.h5 --budget 3.0bpw|SIZE [--allocator knapsack|greedy|baq|entropy|spike|hawq] "
            "[--measure proxy|output|kl|hawq|fisher|fisher-out] [--tie qkv,gateup] [--pin LAYER=BITS] [--out R.json] [--json]"))
        return 1;
    if (!p.isSet(QStringLiteral("analysis"))) return fail("allocate needs --analysis A.h5 (analyze writes it)");
    if (!p.isSet(QStringLiteral("budget"))) return fail("allocate needs --budget, e.g. 3.0bpw or 2.5GB");
    const std::string allocator = p.value(QStringLiteral("allocator")).toStdString();
    auto chosen = allocatorByName(allocator);
    if (!chosen) return fail("--allocator: " + chosen.message());
    AllocConstraints constraints;
    for (const QString& t : p.value(QStringLiteral("tie")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        if (t == QLatin1String("qkv"))
            constraints.tieQkv = true;
        else if (t == QLatin1String("gateup"))
            constraints.tieGateUp = true;
        else
            return fail("--tie takes qkv and gateup, got '" + t.toStdString() + "'");
    }
    for (const QString& pin : p.values(QStringLiteral("pin"))) {
        const int eq = int(pin.lastIndexOf(QLatin1Char('=')));
        bool ok = false;
        const int bits = eq > 0 ? pin.mid(eq + 1).toInt(&ok) : 0;
        if (!ok) return fail("--pin takes LAYER=BITS, got '" + pin.toStdString() + "'");
        constraints.pinnedBits[pin.left(eq).toStdString()] = bits;
    }

    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    const Model& model = opened->model;
    const std::string store = p.value(QStringLiteral("analysis")).toStdString();
    auto analysis = readAnalysisFor(model, store, dir);
    if (!analysis) return fail(analysis.message());
    std::string measureName;
    auto measure = measureFor(allocator, p.value(QStringLiteral("measure")).toStdString(), *analysis, &measureName);
    if (!measure) return fail("--measure: " + measure.message());
    auto items = measuredItems(model.linearLayers(), *analysis, *measure, constraints, &model);
    if (!items) return fail(store + ": " + items.message());
    const int64_t linearParams = linearWeights(model.linearLayers());
    auto budget = parseBudget(p.value(QStringLiteral("budget")).toStdString(), model);
    if (!budget) return fail(budget.message());

    const auto t0 = std::chrono::steady_clock::now();
    auto a = (*chosen)(*items, *budget);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a) return fail(a.message());
    Recipe recipe = allocationRecipe(*items, *a);
    // GPTQ options were measured on the analysis's calibration windows: the plan draws the same.
    recipe.calibration.samples = analysis->meta.samples;
    recipe.calibration.seqlen = analysis->meta.seqlen;
    recipe.calibration.sampling = parseSampling(analysis->meta.sampling).value_or(Sampling::Contiguous);
    recipe.calibration.seed = analysis->meta.seed;
    auto specs = resolveRecipe(recipe, model.linearLayers());
    if (!specs) return fail("the allocated plan does not resolve: " + specs.message());
    const PlanSize size = planSize(*specs, model.linearLayers(), model.parameterCount());
    if (p.isSet(QStringLiteral("out"))) {
        const std::string out = p.value(QStringLiteral("out")).toStdString();
        if (auto w = writeFileAtomically(out, recipeToJson(recipe)); !w) return fail(w.message());
    }

    std::map<int, int64_t> layersAt; // width → layers
    nlohmann::json layers = nlohmann::json::object();
    for (size_t i = 0; i < items->size(); ++i) {
        const AllocOption& o = (*items)[i].options[size_t(a->choice[i])];
        const auto format = findFormat(o.spec.weight.format);
        const int bits = format ? int((*format)->bits) : 0;
        for (const std::string& l : (*items)[i].layers) {
            layers[l] = {{"option", o.label}, {"bits", bits}};
            ++layersAt[bits];
        }
    }
    nlohmann::json widths = nlohmann::json::object();
    for (const auto& [b, n] : layersAt) widths[std::to_string(b)] = n;
    nlohmann::json j{{"model_dir", dir},
                     {"analysis", store},
                     {"allocator", allocator},
                     {"measure", measureName},
                     {"budget_bits", *budget},
                     {"budget_bits_per_weight", double(*budget) / double(linearParams)},
                     {"bits", a->bits},
                     {"bits_per_weight", size.bitsPerWeight},
                     {"model_bytes", size.modelBytes},
                     {"predicted_error", a->error},
                     {"lower_bound", a->lowerBound},
                     {"exact", a->exact},
                     {"grid_bits", a->grid},
                     {"seconds", seconds},
                     {"layers_at_width", widths},
                     {"layers", layers}};
    if (p.isSet(QStringLiteral("out"))) j["out"] = p.value(QStringLiteral("out")).toStdString();
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("%s on %s: %.4f bits per weight (budget %.4f), %.2f MB; predicted %s %.6g (%s)\n", allocator.c_str(),
                measureName.c_str(), size.bitsPerWeight, double(*budget) / double(linearParams),
                double(size.modelBytes) / 1e6, measureName.c_str(), a->error,
                a->exact ? "proven optimal" : ("lower bound " + std::to_string(a->lowerBound)).c_str());
    for (const auto& [b, n] : layersAt) std::printf("  %d bits: %lld layers\n", b, (long long)n);
    return 0;
}

} // namespace ql::cli
