#pragma once

// A recipe: the reproducible, file form of a quantization plan (schema in docs/recipe.md).
// It is parsed with every error naming its JSON path, written back canonically, and resolved
// against a model's linear layers to one QuantSpec per layer.

#include "quantlens/text/calibration.h"
#include "quantlens/base/expected.h"
#include "quantlens/model/model.h"
#include "quantlens/quant/quantspec.h"

#include <Eigen/Core>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ql {

struct SiteStats;

/// One transform run before the quantizers (rotation, smoothing), in recipe order.
struct TransformStep {
    std::string method;
    ParamMap params;

    bool operator==(const TransformStep&) const = default;
};

/// A rule: layers whose name matches the glob get spec (the first matching rule wins).
struct RecipeRule {
    std::string match;
    QuantSpec spec; ///< method, params, weight format and channel overrides; activations and skip unused
    bool operator==(const RecipeRule&) const = default;
};

/// The fields an override changes; an unset field keeps the value the rule gave the layer.
struct SpecPatch {
    std::optional<std::string> method; ///< a different method also drops the rule's params
    std::optional<ParamMap> params;    ///< merged name by name into the layer's params
    std::optional<std::string> format; ///< a format id; excludes bits / symmetric
    std::optional<int> bits;           ///< integer format bits; symmetry kept from the layer's format
    std::optional<bool> symmetric;     ///< integer format symmetry; bits kept from the layer's format
    std::optional<Granularity> granularity;
    std::optional<int> groupSize;                         ///< set only with PerGroup
    std::optional<std::vector<ChannelOverride>> channels; ///< replaces the whole list
    std::optional<int> actBits;
    std::optional<bool> actPerToken;
    std::optional<bool> actSymmetric;

    bool operator==(const SpecPatch&) const = default;
};

/// An override: applied, in recipe order, to every quantized layer whose name matches.
struct RecipeOverride {
    std::string match; ///< an exact layer name or a glob
    SpecPatch patch;

    bool operator==(const RecipeOverride&) const = default;
};

/// A parsed recipe (see docs/recipe.md for the JSON form and the resolution rules).
struct Recipe {
    /// Sequential feeds each block the quantized predecessors' outputs; Parallel the float ones.
    enum class PipelineMode { Sequential, Parallel };

    int version = 1;
    std::string name, description;
    CalibrationSpec calibration;
    std::string calibrationFile; ///< "" when the caller (CLI --calib, GUI) supplies the text
    PipelineMode mode = PipelineMode::Sequential;
    std::vector<TransformStep> transforms;
    std::vector<RecipeRule> rules;
    std::vector<RecipeOverride> overrides; ///< in recipe order, distinct matches; later ones win on a shared field
    std::vector<std::string> skip;         ///< globs of layers kept in float
    ActQuantSpec activations;              ///< default for every quantized layer
    /// What an exported recipe was run on (SHA-256 of the model's weight files and of the
    /// calibration text), so a rerun can tell when its inputs differ; "" when unknown.
    std::string modelSha256, calibrationSha256;
    /// The file the recipe was read from ("" otherwise): messages name it. Not compared.
    std::string source;

    bool operator==(const Recipe& other) const;
};

/// The recipe schema version this build reads and writes.
inline constexpr int kRecipeVersion = 1;

/// "sequential" or "parallel".
const char* pipelineModeName(Recipe::PipelineMode mode);

/// Parses recipe JSON; errors name the JSON path, e.g. `rules[2].bits: expected an integer in 2..8, got "four"`.
Expected<Recipe> parseRecipe(std::string_view json);

/// Parses one override's fields (the JSON object an `overrides` entry holds); errors name path.
Expected<SpecPatch> parseSpecPatch(std::string_view json, const std::string& path);
/// Reads and parses a recipe file; errors start with the file name, and a relative
/// calibration file is made absolute against the recipe's folder.
Expected<Recipe> loadRecipe(const std::string& path);

/// Canonical JSON of a recipe (indented, every field explicit); parseRecipe gives back an equal recipe.
std::string recipeToJson(const Recipe& recipe);

/// One QuantSpec per layer name: skip globs, then the first matching rule, then the overrides in
/// order; a layer no rule matches stays float (skip = true). Errors name the recipe entry at fault.
Expected<std::map<std::string, QuantSpec>> resolveRecipe(const Recipe& recipe, const std::vector<LinearLayer>& layers);

/// JSON of resolved specs, layers in natural name order (layers.2 before layers.10), for a run folder.
std::string resolvedToJson(const std::map<std::string, QuantSpec>& specs);

/// The input channels an override covers, ascending: the explicit list checked against
/// inFeatures, or the selector evaluated on the site's statistics (top p % by activation
/// absmax: ceil(p·n/100) channels, ties to the lower index).
Expected<std::vector<int32_t>> selectChannels(const ChannelOverride& channels, const SiteStats* site, int inFeatures);

/// The ⌈p·n/100⌉ channels (at least one) with the largest scores, ascending; ties go to the lower
/// index (the rule of top_absmax_percent, for any per-channel score).
std::vector<int32_t> topChannels(const Eigen::VectorXf& scores, double percent);

} // namespace ql
