#pragma once

// Two run folders (docs/run-folder.md) compared layer by layer: the plan snapshots a user kept.

#include "quantlens/base/expected.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ql {

/// One linear layer of a run as its resolved.json and report.json give it.
struct RunLayer {
    /// The resolved spec flattened to key paths ("method", "format", "group", "params.damp",
    /// "activations.bits", "channels"); {"skip": "true"} for a layer left in float.
    std::map<std::string, std::string> spec;
    double bitsPerWeight = 16; ///< codes plus parameters; 16 for a float layer
    std::optional<double> weightRelError, outputRelMse;
};

/// A run folder read back: its layers in model order and its totals.
struct RunReport {
    std::string folder;
    std::string modelSha256;
    double bitsPerWeight = 0; ///< of the quantized linears, weighted by their weights
    std::vector<std::string> order;
    std::map<std::string, RunLayer> layers;
};

/// Reads RUN_DIR/resolved.json and RUN_DIR/report.json; errors name the file and the field.
Expected<RunReport> readRunReport(const std::string& folder);

/// One layer of two runs side by side.
struct RunDiffRow {
    std::string layer;
    std::optional<RunLayer> a, b;     ///< absent where a run does not have the layer
    std::vector<std::string> changed; ///< spec keys whose values differ (all keys when one side is absent)
};

/// Two runs compared: every layer of either, in model order (a's, then b's extra layers).
struct RunDiff {
    std::vector<RunDiffRow> rows;
    int changedLayers = 0; ///< rows whose specs differ
    bool sameModel = true; ///< both runs quantized the same weights (equal SHA-256)
};

/// Compares two runs layer by layer.
RunDiff diffRuns(const RunReport& a, const RunReport& b);

/// A short name of a layer's spec: "gptq int4_asym g128", "rtn int3_sym per_channel", "float".
std::string runLayerLabel(const RunLayer& layer);

} // namespace ql
