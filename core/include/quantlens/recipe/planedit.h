#pragma once

// Plan edits: the changes the plan editor makes, as recipe overrides, so that every edit has a
// recipe-in, recipe-out form the command line shares (quantlens-cli whatif --edit).

#include "quantlens/base/expected.h"
#include "quantlens/recipe/recipe.h"

#include <string>
#include <string_view>

namespace ql {

/// Parses "LAYER_OR_GLOB:key=value[,key=value...]", the keys and values of a recipe override
/// (method, bits, sym, group, format, granularity; params.NAME for one method parameter), e.g.
/// "model.layers.3.mlp.down_proj:bits=3,group=64" or "*.q_proj:params.damp=0.05".
/// Numbers and true/false are typed as in JSON; anything else is a string.
Expected<RecipeOverride> parsePlanEdit(std::string_view edit);

/// The recipe with the edit applied: merged field by field into the override of the same match
/// (edits of one layer accumulate, later values win), or appended as a new last override.
Recipe applyPlanEdit(Recipe recipe, const RecipeOverride& edit);

/// The recipe with `layer` kept in float (keep: its exact name joins the skip list and the
/// overrides naming it exactly go) or no longer (its exact entry leaves the list). Errors when a glob keeps it in float
/// anyway or when no rule would quantize it, naming why.
Expected<Recipe> setLayerFloat(Recipe recipe, const std::string& layer, bool keep);

/// One edit as text, as the plan editor and `whatif --edit` make it: "LAYER:float=true|false"
/// (setLayerFloat), or any other parsePlanEdit text, applied with applyPlanEdit.
Expected<Recipe> applyPlanEditText(Recipe recipe, std::string_view edit);

/// Where a layer's spec comes from, as the plan table's "source" column shows it: "skip[i]",
/// "rules[i] <glob>" or "float (no rule)", then "+ overrides[j]" for every override that matches.
std::string planSource(const Recipe& recipe, const std::string& layer);

} // namespace ql
