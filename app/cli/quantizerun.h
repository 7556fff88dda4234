#pragma once

#include "pluginregistry.h"
#include "quantlens/export/openedmodel.h"
#include "quantlens/forward/quickeval.h"
#include "quantlens/recipe/reciperunner.h"

#include <QCommandLineParser>

#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace ql::cli {

/// Scans the plugins where QuantLens looks for them, warning on stderr of each module skipped.
void scanPlugins(PluginRegistry& plugins);

/// MODEL_DIR opened for a command on the quick slice (whatif, pareto).
struct QuickSliceInput {
    OpenedModel opened;          ///< the model, with a tokenizer
    std::vector<int32_t> tokens; ///< of --data
};

/// Opens MODEL_DIR (the first positional argument), requires its tokenizer, checks opt.ctx
/// against the model and tokenizes --data.
Expected<QuickSliceInput> openQuickSliceInput(const QCommandLineParser& p, const EvalOptions& opt);

/// Refuses a command on the quick slice (whatif, pareto) that will not fit in the memory
/// available: the float model's log-probabilities and block inputs over the slice's windows, and
/// two quantized plans of `job` (the runner keeps the last one); returns the estimate as JSON.
Expected<nlohmann::json> guardQuickSlice(const Model& model, MemoryJob job, const QuickSliceInput& input,
                                         const EvalOptions& opt, int bos, const std::string& what);

/// A recipe run as `quantize` writes it and `eval --recipe` evaluates it.
using QuantizeRun = RecipeRun;

/// Adds --recipe, --calib, --samples, --seqlen, --sampling, --seed and --mode.
void addRecipeOptions(QCommandLineParser& p);

/// Loads --recipe and applies the command line's overrides to it.
Expected<Recipe> recipeFromOptions(const QCommandLineParser& p);

/// Runs the recipe of recipeFromOptions with a RecipeRunner over the plugins' methods (the
/// tokenizer may be null when neither the recipe nor --calib names calibration text). It is
/// refused first when the run, and the evaluation that follows it when given, will not fit in
/// the memory available; memory, when given, receives the estimate (guardMemory).
Expected<QuantizeRun> quantizeWithRecipe(const QCommandLineParser& p, const Model& model, const Tokenizer* tokenizer,
                                         const PluginRegistry& plugins, int threads, Feedback* fb,
                                         const MemoryJob* evaluation = nullptr, nlohmann::json* memory = nullptr);

/// Per-layer reports and totals (bits per weight weighted by parameters) as JSON.
nlohmann::json runReport(const Model& model, const QuantizeRun& run);

/// The quick measures the plan editor shows for a run: KL to the float model, top-1 agreement
/// and perplexity on the quick slice (restarting after the blocks previous shares with it;
/// null: from the start), the plan's size, and its layers' reports.
Expected<nlohmann::json> measurePlan(const Model& model, const QuantizeRun& run, const QuantizeRun* previous,
                                     QuickEvaluator& quick);

} // namespace ql::cli
