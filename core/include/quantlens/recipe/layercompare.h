#pragma once

// Methods side by side on one layer: each quantizes the layer alone (every other layer float),
// and is measured by its weight error, its output error on the calibration inputs and the KL
// the layer alone causes on the quick slice, with the histogram of its weight error.

#include "quantlens/analysis/analysis.h"
#include "quantlens/forward/quickeval.h"
#include "quantlens/recipe/reciperunner.h"

#include <optional>
#include <string>
#include <vector>

namespace ql {

/// One method on the compared layer.
struct LayerMethodResult {
    std::string label;         ///< "gptq int4_asym g128"
    QuantSpec spec;            ///< as run
    double bitsPerWeight = 0;  ///< codes and parameters
    double weightRelError = 0; ///< ‖W − Ŵ‖² / ‖W‖²
    /// ‖(W − Ŵ)X‖² / ‖WX‖² over the float model's inputs X on the calibration windows (bias left
    /// out), the same computation for every method; empty without calibration text
    std::optional<double> outputRelMse;
    KlResult kl;       ///< quick slice, only this layer quantized
    WeightStats error; ///< histogram of W − Ŵ (histCounts, histEdges)
};

/// Every method's result on one layer, and the layer's weight histogram.
struct LayerComparison {
    std::string layer;
    WeightStats weights; ///< histogram of W
    std::vector<LayerMethodResult> methods;
};

/// Quantizes `layer` with each of `specs` alone through `runner` (with the calibration of
/// `calibrated`, for methods that need it) and measures each with `quick`, which then holds the
/// last one's block inputs. Errors name the layer or the method that failed.
Expected<LayerComparison> compareOnLayer(const Model& model, RecipeRunner& runner, QuickEvaluator& quick,
                                         const Tokenizer* tokenizer, const std::string& layer,
                                         const std::vector<QuantSpec>& specs, const Recipe& calibrated,
                                         Feedback* feedback = nullptr);

} // namespace ql
