#include "clicommon.h"

#include "quantlens/export/imatrixsensitivity.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/recipe/recipe.h"
#include "quantlens/text/calibration.h"
#include "quantizerun.h"

#include "quantlens/store/analysisstore.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/forward/forward.h"
#include "quantlens/text/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

namespace fs = std::filesystem;

namespace ql::cli {

namespace {

// The JSON summary: where the outliers are, the massive activations, the extremes of sensitivity.
nlohmann::json summarize(const AnalysisResult& r, const std::string& out, double seconds)
{
    nlohmann::json j;
    j["out"] = out;
    j["model_dir"] = r.meta.modelDir;
    j["model_sha256"] = r.meta.modelSha256;
    j["calib_sha256"] = r.meta.calibSha256;
    j["samples"] = r.meta.samples;
    j["seqlen"] = r.meta.seqlen;
    j["sampling"] = r.meta.sampling;
    j["seed"] = r.meta.seed;
    j["seconds"] = seconds;
    std::vector<const SiteStats*> sites;
    for (const auto& s : r.sites) sites.push_back(&s);
    std::sort(sites.begin(), sites.end(), [](auto a, auto b) { return a->absmaxSite > b->absmaxSite; });
    nlohmann::json top = nlohmann::json::array();
    for (size_t i = 0; i < std::min<size_t>(5, sites.size()); ++i)
        top.push_back({{"site", sites[i]->name},
                       {"absmax", sites[i]->absmaxSite},
                       {"kurtosis", sites[i]->kurtosisSite},
                       {"outlier_channels", sites[i]->outlierChannels.size()},
                       {"energy_entropy_bits", sites[i]->energyEntropyBits},
                       {"value_entropy_bits", sites[i]->valueEntropyBits}});
    j["top_outlier_sites"] = top;
    j["massive_activations"] = r.massive.size();
    nlohmann::json massive = nlohmann::json::array();
    for (size_t i = 0; i < std::min<size_t>(10, r.massive.size()); ++i)
        massive.push_back({{"layer", r.massive[i].layer},
                           {"token", r.massive[i].token},
                           {"token_id", r.massive[i].tokenId},
                           {"channel", r.massive[i].channel},
                           {"value", r.massive[i].value}});
    j["massive_first"] = massive;
    if (!r.sensitivity.empty()) {
        // Ranked by relative output MSE at the width closest to 4 bits.
        const auto& bits = r.sensitivity.front().bits;
        size_t k = 0;
        for (size_t i = 0; i < bits.size(); ++i)
            if (std::abs(bits[i] - 4) < std::abs(bits[k] - 4)) k = i;
        std::vector<const LayerSensitivity*> s;
        for (const auto& l : r.sensitivity) s.push_back(&l);
        std::sort(s.begin(), s.end(), [k](auto a, auto b) { return a->relMse[k] > b->relMse[k]; });
        auto row = [k](const LayerSensitivity* l) {
            nlohmann::json j{
                {"layer", l->name}, {"rel_mse", l->relMse[k]}, {"sqnr_db", l->sqnrDb[k]}, {"proxy", l->proxy[k]}};
            if (k < l->kl.size()) j["kl"] = l->kl[k];
            if (k < l->fisher.size()) j["fisher"] = l->fisher[k];
            if (k < l->fisherOut.size()) j["fisher_out"] = l->fisherOut[k];
            return j;
        };
        nlohmann::json most = nlohmann::json::array(), least = nlohmann::json::array();
        for (size_t i = 0; i < std::min<size_t>(5, s.size()); ++i) {
            most.push_back(row(s[i]));
            least.push_back(row(s[s.size() - 1 - i]));
        }
        j["sensitivity_bits"] = bits[k];
        j["most_sensitive"] = most;
        j["least_sensitive"] = least;
    }
    if (r.endToEnd.windows > 0) {
        const EndToEndSummary& e = r.endToEnd;
        j["end_to_end"] = {{"windows", e.windows},
                           {"seqlen", e.seqlen},
                           {"tokens", e.tokens},
                           {"held_out_sha256", e.heldOutSha256},
                           {"bits", e.bits},
                           {"spearman_proxy_kl", e.spearmanProxyKl},
                           {"spearman_rel_mse_kl", e.spearmanRelMseKl},
                           {"spearman_hawq_kl", e.spearmanHawqKl},
                           {"spearman_fisher_kl", e.spearmanFisherKl},
                           {"spearman_fisher_out_kl", e.spearmanFisherOutKl},
                           {"options", e.options}};
        if (!e.context.empty()) {
            j["end_to_end"]["context"] = e.context;
            j["end_to_end"]["context_kl"] = e.contextKl;
        }
    }
    return j;
}

// An existing store at out, unless --force: reused (printed; 0) when it comes from the request's
// inputs and holds every measure it asks for, refused (1) when it comes from other inputs, so it
// is never overwritten silently; nullopt when the analysis is to run.
std::optional<int> reuseStore(const QCommandLineParser& p, const std::string& out, const AnalysisRequest& request,
                              const char* inputs)
{
    if (!fs::exists(out) || p.isSet(QStringLiteral("force"))) return std::nullopt;
    auto existing = AnalysisStore::openFor(out, request.modelSha256, request.calibSha256);
    if (!existing) return fail(existing.message() + " (pass --force to overwrite it)");
    if (!AnalysisStore::covers(*existing, request)) return std::nullopt; // lacks a measure asked for now
    if (p.isSet(QStringLiteral("json")))
        printJson(summarize(*existing, out, 0.0));
    else
        std::printf("%s is up to date for this model and %s; nothing recomputed\n", out.c_str(), inputs);
    return 0;
}

// analyze --imatrix: weight statistics and per-layer sensitivity from a llama.cpp importance matrix.
int analyzeFromImatrix(const QCommandLineParser& p, const std::string& out, int threads)
{
    if (p.isSet(QStringLiteral("calib")))
        return fail("--imatrix replaces the calibration pass; give --calib or --imatrix, not both");
    if (p.value(QStringLiteral("sensitivity")) != QStringLiteral("proxy"))
        return fail("--imatrix gives the proxy sensitivity only (end-to-end KL needs --calib)");
    const std::string dir = p.positionalArguments()[0].toStdString();
    const std::string imatrixPath = p.value(QStringLiteral("imatrix")).toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    applyNonFiniteOption(p, opened->model);
    auto imatrix = readImatrix(imatrixPath);
    if (!imatrix) return fail(imatrix.message());
    auto imatrixHash = sha256OfFiles({imatrixPath});
    if (!imatrixHash) return fail(imatrixHash.message());
    auto modelHash = sha256OfFiles(opened->model.weightFiles());
    if (!modelHash) return fail(modelHash.message());
    const auto t0 = std::chrono::steady_clock::now();
    if (auto done = reuseStore(p, out, {*modelHash, *imatrixHash, SensitivityMode::Proxy, {}}, "importance matrix"))
        return *done;
    AnalyzeOptions opt;
    opt.threads = threads;
    opt.modelSha256 = *modelHash;
    CliFeedback fb("analyze");
    auto result = analyzeImatrix(opened->model, *imatrix, *imatrixHash, opt, &fb);
    if (!result) return fail(result.message());
    if (auto written = AnalysisStore::write(out, *result); !written) return fail(written.message());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json j = summarize(*result, out, seconds);
    j["sensitivity_seconds"] = result->sensitivitySeconds;
    j["imatrix"] = imatrixPath;
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("sensitivity of %zu layers from %s (%u chunks of %u tokens) in %.1f s -> %s\n",
                result->sensitivity.size(), imatrixPath.c_str(), imatrix->chunkCount, imatrix->chunkSize, seconds,
                out.c_str());
    for (const auto& l : j["most_sensitive"])
        std::printf("  %-40s rel. MSE %.3e  SQNR %6.2f dB (at %d bits)\n", l["layer"].get<std::string>().c_str(),
                    l["rel_mse"].get<double>(), l["sqnr_db"].get<double>(), j["sensitivity_bits"].get<int>());
    return 0;
}

} // namespace

int cmdAnalyze(const QStringList& args)
{
    QCommandLineParser p;
    p.addOption({QStringLiteral("calib"), QStringLiteral("Calibration text (.txt, or .jsonl with a text field)."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("imatrix"),
                 QStringLiteral("Instead of --calib: sensitivity from a llama.cpp importance matrix (GGUF or .dat)."),
                 QStringLiteral("FILE")});
    p.addOption({QStringLiteral("samples"), QStringLiteral("Calibration windows."), QStringLiteral("N"),
                 QStringLiteral("128")});
    p.addOption(
        {QStringLiteral("seqlen"), QStringLiteral("Tokens per window."), QStringLiteral("N"), QStringLiteral("512")});
    p.addOption({QStringLiteral("sampling"), QStringLiteral("contiguous or random."), QStringLiteral("S"),
                 QStringLiteral("contiguous")});
    p.addOption(
        {QStringLiteral("seed"), QStringLiteral("Seed of random sampling."), QStringLiteral("N"), QStringLiteral("0")});
    p.addOption({QStringLiteral("sensitivity"),
                 QStringLiteral("none, proxy, fisher (proxy and the diagonal Fisher) or full (all and "
                                "the end-to-end KL)."),
                 QStringLiteral("M"), QStringLiteral("proxy")});
    p.addOption({QStringLiteral("kl-samples"),
                 QStringLiteral("Held-out windows for --sensitivity full, taken from the end of the calibration text."),
                 QStringLiteral("N"), QStringLiteral("4")});
    p.addOption({QStringLiteral("sens-methods"),
                 QStringLiteral("Methods each layer's sensitivity is measured with: rtn, gptq (comma-separated)."),
                 QStringLiteral("LIST"), QStringLiteral("rtn")});
    p.addOption({QStringLiteral("sens-bits"), QStringLiteral("Widths each method is measured at (comma-separated)."),
                 QStringLiteral("LIST"), QStringLiteral("2,3,4,8")});
    p.addOption({QStringLiteral("sens-groups"),
                 QStringLiteral("Group sizes each width is measured in, 0 for one group per row (comma-separated)."),
                 QStringLiteral("LIST"), QStringLiteral("128")});
    p.addOption({QStringLiteral("kl-context"),
                 QStringLiteral("With --sensitivity full: measure each layer's KL with every other layer quantized "
                                "by this recipe (e.g. the uniform plan nearest the budget), not float."),
                 QStringLiteral("R.json")});
    p.addOption({QStringLiteral("save-hessian"), QStringLiteral("Store each site's Σxxᵀ (large).")});
    p.addOption({QStringLiteral("out"), QStringLiteral("Analysis file to write (HDF5)."), QStringLiteral("FILE.h5")});
    p.addOption(
        {QStringLiteral("force"), QStringLiteral("Overwrite an existing analysis file made from other inputs.")});
    p.addOption({QStringLiteral("threads"), QStringLiteral("Threads (0: all cores)."), QStringLiteral("N"),
                 QStringLiteral("0")});
    p.addOption({QStringLiteral("json"), QStringLiteral("Print a JSON summary.")});
    p.addOption({QStringLiteral("force-ctx"),
                 QStringLiteral("Run even when --seqlen exceeds the model's max_position_embeddings.")});
    addNonFiniteOption(p);
    if (!parseArgs(p, args, 1, "quantlens-cli analyze MODEL_DIR --calib FILE|--imatrix FILE --out FILE.h5 [options]"))
        return 1;
    if (!p.isSet(QStringLiteral("calib")) && !p.isSet(QStringLiteral("imatrix")))
        return fail("analyze needs --calib FILE (or --imatrix FILE)");
    if (!p.isSet(QStringLiteral("out"))) return fail("analyze needs --out FILE.h5");
    CalibrationSpec spec;
    auto samples = intOption(p, QStringLiteral("samples"), 1);
    if (!samples) return fail(samples.message());
    auto seqlen = intOption(p, QStringLiteral("seqlen"), 2);
    if (!seqlen) return fail(seqlen.message());
    auto threads = intOption(p, QStringLiteral("threads"), 0);
    if (!threads) return fail(threads.message());
    bool seedOk = false;
    spec.seed = p.value(QStringLiteral("seed")).toULongLong(&seedOk);
    if (!seedOk) return fail("--seed expects a non-negative integer");
    spec.samples = *samples;
    spec.seqlen = *seqlen;
    const auto sampling = parseSampling(p.value(QStringLiteral("sampling")).toStdString());
    if (!sampling) return fail("--sampling must be contiguous or random");
    spec.sampling = *sampling;
    AnalyzeOptions opt;
    const auto sens = parseSensitivityMode(p.value(QStringLiteral("sensitivity")).toStdString());
    if (!sens) return fail("--sensitivity must be none, proxy, fisher or full");
    opt.sensitivity = *sens;
    if (opt.sensitivity == SensitivityMode::Full) {
        auto held = intOption(p, QStringLiteral("kl-samples"), 1);
        if (!held) return fail(held.message());
        spec.heldOut = *held;
    }
    if (p.isSet(QStringLiteral("kl-context")) && opt.sensitivity != SensitivityMode::Full)
        return fail("--kl-context needs --sensitivity full");
    opt.keepHessians = p.isSet(QStringLiteral("save-hessian"));
    opt.threads = *threads;
    opt.methods.clear();
    for (const QString& m : p.value(QStringLiteral("sens-methods")).split(',', Qt::SkipEmptyParts))
        opt.methods.push_back(m.trimmed().toStdString());
    auto sensBits = intListOption(p, QStringLiteral("sens-bits"), 1);
    if (!sensBits) return fail(sensBits.message());
    auto sensGroups = intListOption(p, QStringLiteral("sens-groups"), 0);
    if (!sensGroups) return fail(sensGroups.message());
    opt.bits = *sensBits;
    opt.groups = *sensGroups;
    if (opt.methods.empty()) return fail("--sens-methods names no method");
    for (const SensitivityOption& o : sensitivityOptions(opt))
        if (auto s = sensitivityOptionSpec(o); !s) return fail("--sens-*: " + s.message());

    const std::string out = p.value(QStringLiteral("out")).toStdString();
    const fs::path parent = fs::absolute(out).parent_path();
    if (!fs::is_directory(parent)) return fail(parent.string() + ": folder does not exist (for --out " + out + ")");
    if (p.isSet(QStringLiteral("imatrix"))) return analyzeFromImatrix(p, out, *threads);
    const std::string dir = p.positionalArguments()[0].toStdString();
    CliFeedback ofb("open");
    auto opened = OpenedModel::open(dir, &ofb);
    if (!opened) return fail(opened.message());
    Model* model = &opened->model;
    opt.beyondTrainedPositions = p.isSet(QStringLiteral("force-ctx"));
    if (auto c = checkSequenceLength(model->config(), spec.seqlen, opt.beyondTrainedPositions, "--seqlen"); !c)
        return fail(c.message() + ", or pass --force-ctx to run anyway");
    applyNonFiniteOption(p, *model);
    if (!opened->tokenizer) return fail(opened->tokenizerError);
    const std::shared_ptr<Tokenizer>* tok = &opened->tokenizer;
    auto text = readCalibrationText(p.value(QStringLiteral("calib")).toStdString());
    if (!text) return fail(text.message());
    auto calib = makeCalibrationSet(*text, **tok, spec);
    if (!calib) return fail(calib.message());
    // Before any pass over the model: tokenizing took little, the windows are now counted.
    CalibrationSpec taken = spec;
    taken.samples = int(calib->windows.size());
    MemoryJob memoryJob = analysisMemoryJob(opt, taken);
    memoryJob.klContext = p.isSet(QStringLiteral("kl-context"));
    auto memory = guardMemory(*model, memoryJob, "analysing");
    if (!memory) return fail(memory.message());
    auto modelHash = sha256OfFiles(model->weightFiles());
    if (!modelHash) return fail(modelHash.message());
    opt.modelSha256 = *modelHash;
    // The context plan, named by its file and the hash of its canonical form (so a store is
    // reused only for the same plan), quantized on the analysis's own calibration windows.
    std::optional<Recipe> context;
    if (p.isSet(QStringLiteral("kl-context"))) {
        const std::string path = p.value(QStringLiteral("kl-context")).toStdString();
        auto r = loadRecipe(path);
        if (!r) return fail(r.message());
        if (!r->transforms.empty())
            return fail(path + ": --kl-context takes a plan without transforms (the options are measured on the "
                               "model's own weights)");
        r->calibrationFile = p.value(QStringLiteral("calib")).toStdString();
        r->calibration = spec;
        r->calibration.heldOut = 0;
        const std::string canonical = recipeToJson(*r);
        opt.klContextName = fs::path(path).filename().string() + " (sha256 " +
                            sha256Hex(canonical.data(), canonical.size()).substr(0, 12) + ")";
        context = std::move(*r);
    }

    const auto t0 = std::chrono::steady_clock::now();
    AnalysisRequest request{*modelHash, calib->sha256, opt.sensitivity, calib->heldOutSha256, sensitivityOptions(opt)};
    request.klContext = opt.klContextName;
    if (auto done = reuseStore(p, out, request, "calibration set")) return *done;
    std::optional<RecipeRun> contextRun;
    if (context) {
        PluginRegistry plugins;
        scanPlugins(plugins);
        RecipeRunner runner = makeRecipeRunner(*model, plugins, opt.threads);
        CliFeedback qfb("context");
        auto run = runner.run(*context, tok->get(), &qfb);
        if (!run) return fail("--kl-context: " + run.message());
        contextRun = std::move(*run);
        opt.klContext = contextRun->model.get();
    }
    // The statistics pass is one forward pass over the windows (sensitivity comes on top).
    announceCost(double(calib->windows.size()) * ForwardEngine::flops(model->config(), spec.seqlen, 0),
                 "the forward pass of this analysis");
    CliFeedback fb("analyze");
    auto result = analyze(*model, *calib, opt, &fb);
    if (!result) return fail(result.message());
    auto written = AnalysisStore::write(out, *result);
    if (!written) return fail(written.message());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json j = summarize(*result, out, seconds);
    j["memory"] = *memory;
    j["pass_seconds"] = result->passSeconds;
    j["sensitivity_seconds"] = result->sensitivitySeconds;
    if (computesFisher(opt.sensitivity)) {
        j["fisher_seconds"] = result->fisherSeconds;
        j["fisher_loss"] = result->fisherLoss;
    }
    if (result->endToEnd.windows > 0) j["end_to_end"]["seconds"] = result->endToEnd.seconds;
    if (p.isSet(QStringLiteral("json"))) {
        printJson(j);
        return 0;
    }
    std::printf("analysed %d x %d tokens (%s) in %.1f s -> %s\n", spec.samples, spec.seqlen,
                samplingName(spec.sampling), seconds, out.c_str());
    std::printf("%zu sites, %zu massive activations, %zu layers with sensitivity\n", result->sites.size(),
                result->massive.size(), result->sensitivity.size());
    for (const auto& s : j["top_outlier_sites"])
        std::printf("  %-22s absmax %10.3f  kurtosis %9.2f  outlier channels %3zu\n",
                    s["site"].get<std::string>().c_str(), s["absmax"].get<double>(), s["kurtosis"].get<double>(),
                    s["outlier_channels"].get<size_t>());
    const EndToEndSummary& e = result->endToEnd;
    for (size_t i = 0; i < e.bits.size(); ++i)
        std::printf("  %s: Spearman rank correlation with end-to-end KL over layers: proxy %.3f, rel. MSE %.3f, "
                    "hawq %.3f, fisher %.3f, output fisher %.3f\n",
                    i < e.options.size() ? e.options[i].c_str() : (std::to_string(e.bits[i]) + " bits").c_str(),
                    e.spearmanProxyKl[i], e.spearmanRelMseKl[i],
                    i < e.spearmanHawqKl.size() ? e.spearmanHawqKl[i] : NAN,
                    i < e.spearmanFisherKl.size() ? e.spearmanFisherKl[i] : NAN,
                    i < e.spearmanFisherOutKl.size() ? e.spearmanFisherOutKl[i] : NAN);
    return 0;
}

} // namespace ql::cli
