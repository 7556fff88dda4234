#pragma once

// Plan edits: the changes the plan editor makes, as recipe overrides, so that every edit has a
// recipe-in, recipe-out form the command line shares (quantlens-cli whatif --edit).

#include "quantlens/base/expected.h"
#include "quantlens/recipe/recipe.h"

#include <string_view>

namespace ql {

/// Parses "LAYER_OR_GLOB:key=value[,key=value...]", the keys and values of a recipe override
/// (method, bits, sym, group, format, granularity), e.g. "model.layers.3.mlp.down_proj:bits=3,group=64".
/// Numbers and true/false are typed as in JSON; anything else is a string.
Expected<RecipeOverride> parsePlanEdit(std::string_view edit);

/// The recipe with the edit applied: merged field by field into the override of the same match
/// (edits of one layer accumulate, later values win), or appended as a new last override.
Recipe applyPlanEdit(Recipe recipe, const RecipeOverride& edit);

} // namespace ql
