#pragma once

#include "pluginregistry.h"
#include "quantlens/calibration.h"
#include "quantlens/feedback.h"
#include "quantlens/pipeline.h"
#include "quantlens/recipe.h"
#include "quantlens/transform.h"
#include "quantlens/tokenizer.h"

#include <QCommandLineParser>

#include <nlohmann/json.hpp>

#include <memory>

namespace ql::cli {

/// A recipe applied to a model in memory: what `quantize` writes and `eval --recipe` evaluates.
struct QuantizeRun {
    Recipe recipe;                             ///< with the command line's overrides applied
    std::map<std::string, QuantSpec> specs;    ///< resolved, one per linear layer
    CalibrationSet calib;
    std::unique_ptr<FloatWeights> transformed; ///< the float weights after the recipe's transforms (null without)
    std::shared_ptr<QuantizedModel> model;
    PipelineRunStats stats;
};

/// Adds --recipe, --calib, --samples, --seqlen, --sampling, --seed and --mode.
void addRecipeOptions(QCommandLineParser& p);

/// Loads the recipe, applies the command-line overrides, builds the calibration set (none
/// when neither the recipe nor --calib names a file; then the tokenizer may be null) and runs
/// the transforms and the pipeline with the plugins.
Expected<QuantizeRun> quantizeWithRecipe(const QCommandLineParser& p, const Model& model, const Tokenizer* tokenizer,
                                         const PluginRegistry& plugins, int threads, Feedback* fb);

/// Per-layer reports and totals (bits per weight weighted by parameters) as JSON.
nlohmann::json runReport(const Model& model, const QuantizeRun& run);

} // namespace ql::cli
