#pragma once

// Allocation items from an analysis: every linear layer's options are the options its
// sensitivity table measured (method × width × group, asymmetric integers, as `analyze`
// quantizes them), costed as the plan editor counts storage and scored by one of the measured
// errors.

#include "quantlens/alloc/allocation.h"
#include "quantlens/analysis/analysis.h"
#include "quantlens/model/model.h"
#include "quantlens/recipe/recipe.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ql {

/// The per-layer error an allocation minimises (summed over layers).
enum class AllocMeasure {
    Proxy,  ///< Hessian proxy tr(ΔW H ΔWᵀ) / n_tokens
    Output, ///< relative output error ‖Y − Ŷ‖² / ‖Y‖²
    Kl,     ///< end-to-end KL with only this layer quantized (analyze --sensitivity full)
    /// HAWQ-style: the input Hessian's mean diagonal (E[x²] over channels, from the statistics)
    /// × ‖ΔW‖² of the width's RTN; needs the weights
    Hawq,
    Fisher,    ///< ½·Σ F·ΔW² with the diagonal empirical Fisher (analyze --sensitivity fisher or full)
    FisherOut, ///< ½·Σ_i F_out,i·(ΔW H ΔWᵀ)_ii / n with the Fisher of the layer's outputs (same analyses)
};

/// "proxy", "output", "kl", "hawq", "fisher" or "fisher-out".
Expected<AllocMeasure> parseAllocMeasure(std::string_view name);

/// Runtime constraints and pins of an allocation.
struct AllocConstraints {
    bool tieQkv = false;                   ///< q, k and v of a block take one width (fused loaders)
    bool tieGateUp = false;                ///< gate and up of a block take one width
    std::map<std::string, int> pinnedBits; ///< layer → the only width it may take
};

/// The measure an allocator minimises: hawq's own for hawq, else `requested` when not empty, else
/// kl when the analysis has it, else proxy. *name receives its name.
Expected<AllocMeasure> measureFor(const std::string& allocator, const std::string& requested,
                                  const AnalysisResult& analysis, std::string* name);

/// Weights of the linear layers (what bits per weight of a budget divides by).
int64_t linearWeights(const std::vector<LinearLayer>& layers);

/// One item per layer (or per tied group) with an option per measured option. A pin keeps the
/// options of its width. Errors name a layer the analysis lacks, a measure it did not take, a pin
/// to a width it did not measure, and tied layers measured with different options.
/// weights: the model's, needed by AllocMeasure::Hawq only.
Expected<std::vector<AllocItem>> measuredItems(const std::vector<LinearLayer>& layers, const AnalysisResult& analysis,
                                               AllocMeasure measure, const AllocConstraints& constraints,
                                               const WeightSource* weights = nullptr);

/// The allocation as a recipe: a rule per layer whose width differs from the most common one, in
/// model order, then "*" at the most common width.
Recipe allocationRecipe(const std::vector<AllocItem>& items, const Allocation& allocation);

} // namespace ql
