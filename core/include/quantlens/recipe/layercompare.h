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

/// One way to quantize the compared layer: transforms of the whole model (function-preserving,
/// e.g. Hadamard rotation or AWQ's scaling), then a method on the layer.
struct LayerCandidate {
    std::vector<TransformStep> transforms;
    QuantSpec spec;
};

/// One candidate on the compared layer.
struct LayerMethodResult {
    std::string label;                     ///< "gptq int4_asym g128", "hadamard+gptq int4_asym g128"
    std::vector<TransformStep> transforms; ///< as run
    QuantSpec spec;                        ///< as run
    double bitsPerWeight = 0;              ///< codes and parameters
    double weightRelError = 0;             ///< ‖W − Ŵ‖² / ‖W‖², W the layer's weight after the transforms
    /// ‖(W − Ŵ)X‖² / ‖WX‖² over the float (transformed) model's inputs X on the calibration
    /// windows (bias left out), the same computation for every candidate; empty without
    /// calibration text
    std::optional<double> outputRelMse;
    KlResult kl;       ///< quick slice, only this layer quantized
    WeightStats error; ///< histogram of W − Ŵ (histCounts, histEdges), W after the transforms
};

/// Every method's result on one layer, and the layer's weight histogram.
struct LayerComparison {
    std::string layer;
    WeightStats weights; ///< histogram of W
    std::vector<LayerMethodResult> methods;
};

/// Quantizes `layer` with each candidate alone through `runner` (with the calibration of
/// `calibrated`, for transforms and methods that need it) and measures each with `quick`, which
/// then holds the last one's block inputs. Errors name the layer or the candidate that failed.
Expected<LayerComparison> compareOnLayer(const Model& model, RecipeRunner& runner, QuickEvaluator& quick,
                                         const Tokenizer* tokenizer, const std::string& layer,
                                         const std::vector<LayerCandidate>& candidates, const Recipe& calibrated,
                                         Feedback* feedback = nullptr);
/// A candidate's name: its transforms joined by '+', then the method, format and group.
std::string layerCandidateLabel(const LayerCandidate& candidate);

} // namespace ql
