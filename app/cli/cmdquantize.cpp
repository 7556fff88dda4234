#include "clicommon.h"

#include "quantlens/export/openedmodel.h"
#include "quantizerun.h"

#include "quantlens/store/runfolder.h"

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace ql::cli {

int cmdQuantize(const QStringList& args)
{
    QCommandLineParser p;
    addRecipeOptions(p);
    p.addOption({QStringLiteral("out"), QStringLiteral("Run folder to create."), QStringLiteral("RUN_DIR")});
    p.addOption({QStringLiteral("force"), QStringLiteral("Replace an existing run folder.")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print the report as JSON.")});
    addNonFiniteOption(p);
    if (!parseArgs(p, args, 1, "quantlens-cli quantize MODEL_DIR --recipe R.json --out RUN_DIR [options]")) return 1;
    if (!p.isSet(QStringLiteral("recipe"))) return fail("quantize needs --recipe R.json");
    if (!p.isSet(QStringLiteral("out"))) return fail("quantize needs --out RUN_DIR");
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    if (!threads) return fail(threads.message());
    const fs::path out = fs::absolute(p.value(QStringLiteral("out")).toStdString());
    if (!fs::is_directory(out.parent_path()))
        return fail(out.parent_path().string() + ": folder does not exist (for --out)");
    if (fs::exists(out) && !p.isSet(QStringLiteral("force")))
        return fail(out.string() + " exists; pass --force to replace it");

    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    Model* model = &opened->model;
    applyNonFiniteOption(p, *model);
    // Needed only to tokenize calibration text.
    Expected<std::shared_ptr<Tokenizer>> tok = makeError(opened->tokenizerError);
    if (opened->tokenizer) tok = opened->tokenizer;
    PluginRegistry plugins;
    scanPlugins(plugins);
    auto modelSha = sha256OfFiles(model->weightFiles());
    if (!modelSha) return fail(modelSha.message());
    // An exported recipe names the weights it ran on; a rerun on others does not reproduce it.
    if (auto recipe = recipeFromOptions(p); recipe && !recipe->modelSha256.empty() && recipe->modelSha256 != *modelSha)
        std::fprintf(stderr, "warning: the recipe was run on weights with SHA-256 %s…; these are %s…\n",
                     recipe->modelSha256.substr(0, 12).c_str(), modelSha->substr(0, 12).c_str());

    CliFeedback fb("quantize");
    nlohmann::json memory;
    auto run = quantizeWithRecipe(p, *model, tok ? tok->get() : nullptr, plugins, *threads, &fb, nullptr, &memory);
    if (!run && !tok && run.message().find("tokenizer") != std::string::npos)
        return fail(run.message() + ": " + tok.message());
    if (!run) return fail(run.message());

    // Written into a temporary folder, renamed into place when complete.
    auto written = writeRunFolder(out.string(), *model, *run, *modelSha,
                                  p.value(QStringLiteral("recipe")).toStdString(), p.isSet(QStringLiteral("force")));
    if (!written) return fail(written.message());
    nlohmann::json report = nlohmann::json::parse(*written);

    if (p.isSet(QStringLiteral("json"))) {
        report["out"] = out.string();
        report["memory"] = memory;
        printJson(report);
        return 0;
    }
    std::printf("quantized %zu layers (%d computed) to %.3f bits per weight in %.1f s -> %s\n",
                run->model->layers().size(), run->stats.layersQuantized, report["bits_per_weight"].get<double>(),
                run->stats.seconds, out.c_str());
    return 0;
}

} // namespace ql::cli
