#pragma once

#include "quantlens/text/calibration.h"
#include "quantlens/base/feedback.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/pipeline/pipeline.h"
#include "quantlens/model/memoryestimate.h"
#include "quantlens/recipe/recipe.h"
#include "quantlens/text/tokenizer.h"
#include "quantlens/quant/transform.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace ql {

/// Finds the transforms a recipe names (the plugin registry, or a test's own table).
using TransformLookup = std::function<const Transform*(const std::string& id)>;

/// A recipe applied to a model in memory: what `quantize` writes, `eval --recipe` evaluates and
/// the window's plan shows.
struct RecipeRun {
    Recipe recipe;                                   ///< as run
    std::map<std::string, QuantSpec> specs;          ///< resolved, one per linear layer
    CalibrationSet calib;                            ///< empty when the recipe names no calibration text
    std::shared_ptr<const FloatWeights> transformed; ///< float weights after the transforms (null without)
    std::shared_ptr<QuantizedModel> model;
    PipelineRunStats stats;
};

/// The first block whose weights differ between two runs of one runner: the lowest block of a
/// layer result the runner did not reuse (or a layer quantized in one and float in the other),
/// 0 when the transformed weights differ (embeddings and norms may too), the block count when
/// nothing changed, and 0 without a previous run.
int firstChangedBlock(const RecipeRun& run, const RecipeRun* previous);

/// Runs recipes on one model: calibration windows from the recipe's text, the transforms in
/// recipe order (each measuring statistics on the weights as it finds them), then the
/// quantizers through the QuantPipeline. Progress and cancellation go through Feedback.
/// Running again after an edit reuses what is unchanged: the calibration windows (same text
/// content and spec), the transformed weights (same transforms, parameters and windows) and
/// every layer result the pipeline's cache still holds.
class RecipeRunner {
public:
    RecipeRunner(const Model& model, MethodLookup quantizers, TransformLookup transforms);

    /// Threads of the forward passes and quantizers (0 keeps the current setting).
    void setThreads(int threads) { m_threads = threads; }
    /// Runs `recipe`; `tokenizer` may be null when the recipe names no calibration file.
    Expected<RecipeRun> run(const Recipe& recipe, const Tokenizer* tokenizer, Feedback* feedback = nullptr);
    /// Forgets the cached windows, transformed weights and layer results.
    void clearCache();
    /// What run(recipe) will hold in memory, for estimateMemory: its calibration, the needs of
    /// its methods (Hessians, whole blocks) and its transforms.
    MemoryJob memoryJob(const Recipe& recipe) const;

private:
    /// A transform step found and its parameters completed, with where its errors point.
    struct ResolvedStep {
        const Transform* transform;
        ParamMap params;
        std::string where; ///< "FILE: transforms[i] (id): "
    };
    Expected<ResolvedStep> transformStep(const Recipe& recipe, size_t i) const;
    Expected<void> loadCalibration(const Recipe& recipe, const Tokenizer* tokenizer, RecipeRun& run);
    Expected<void> applyTransforms(const Recipe& recipe, RecipeRun& run, std::string& identity, Feedback* fb);
    /// Every rule's method and parameters and every transform step, errors naming the recipe path.
    Expected<void> checkMethods(const Recipe& recipe) const;

    const Model& m_model;
    MethodLookup m_methods;
    TransformLookup m_transforms;
    QuantPipeline m_pipeline;
    int m_threads = 0;
    std::string m_calibKey; ///< text hash and spec of m_calib
    CalibrationSet m_calib;
    std::string m_transformKey; ///< transform identity and windows of m_transformed
    std::shared_ptr<const FloatWeights> m_transformed;
};

} // namespace ql
