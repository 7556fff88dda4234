#include "quantlens/store/runfolder.h"

#include "quantlens/base/stagedfolder.h"
#include "quantlens/store/runstate.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace ql {

namespace fs = std::filesystem;

namespace {

Expected<void> writeText(const fs::path& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return makeError(path.string() + ": write failed");
    return {};
}

nlohmann::json reportOf(const Model& model, const RecipeRun& run)
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

} // namespace

std::string runReportJson(const Model& model, const RecipeRun& run)
{
    return reportOf(model, run).dump();
}

Expected<std::string> writeRunFolder(const std::string& outDir, const Model& model, const RecipeRun& run,
                                     const std::string& modelSha256, const std::string& recipeSource, bool overwrite)
{
    const fs::path out = fs::absolute(outDir);
    if (!fs::is_directory(out.parent_path()))
        return makeError(out.parent_path().string() + ": folder does not exist (for the run folder)");
    if (fs::exists(out) && !overwrite) return makeError(out.string() + " exists; choose another name or replace it");
    auto staged = StagedFolder::begin(out.string(), true);
    if (!staged) return staged.error();
    const fs::path tmp = staged->path();
    nlohmann::json report = reportOf(model, run);
    report["model_dir"] = model.dir();
    report["model_sha256"] = modelSha256;
    report["recipe"] = recipeSource;
    auto step = writeText(tmp / "recipe.json", recipeToJson(run.recipe));
    if (step) step = writeText(tmp / "resolved.json", resolvedToJson(run.specs));
    if (step) step = writeText(tmp / "report.json", report.dump(2) + "\n");
    if (step)
        step = writeRunState((tmp / "quantized.safetensors").string(), *run.model, run.transformed.get(), modelSha256);
    if (!step) return step.error(); // the staging folder goes with `staged`
    QL_TRY(staged->commit());
    return report.dump();
}

} // namespace ql
