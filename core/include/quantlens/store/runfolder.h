#pragma once

// A run folder (docs/run-folder.md): what `quantize --out` and the window's Quantize write.

#include "quantlens/base/expected.h"
#include "quantlens/model/model.h"
#include "quantlens/recipe/reciperunner.h"

#include <string>

namespace ql {

/// The run's report as JSON text: per layer its method, format, group, bits per weight, errors,
/// seconds, metrics and notes, then totals (bits per weight weighted by weights, layers quantized,
/// calibration hash and windows).
std::string runReportJson(const Model& model, const RecipeRun& run);

/// Writes recipe.json, resolved.json, report.json (runReportJson plus model_dir, model_sha256 and
/// recipe, the source the recipe came from) and quantized.safetensors into a temporary folder
/// beside outDir, renamed into place when complete; an existing outDir is replaced only when
/// overwrite is set. Returns the report as written.
Expected<std::string> writeRunFolder(const std::string& outDir, const Model& model, const RecipeRun& run,
                                     const std::string& modelSha256, const std::string& recipeSource, bool overwrite);

} // namespace ql
