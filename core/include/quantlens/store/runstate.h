#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/model/model.h"
#include "quantlens/quant/quantizedmodel.h"

#include <memory>
#include <string>

namespace ql {

/// Writes the quantized model state of a run (docs/run-folder.md): per layer the packed codes,
/// scales, zeros and group index (or the dequantized weight when the method's output has no
/// single format), and, after transforms, every float tensor they rewrote plus the online
/// rotations, so that an exporter or `eval --run` rebuilds exactly the model that was evaluated.
/// transformed is null when the recipe had no transforms.
Expected<void> writeRunState(const std::string& path, const QuantizedModel& model, const FloatWeights* transformed,
                             const std::string& modelSha256);

/// A run's quantized model read back from its state file.
struct RunState {
    std::unique_ptr<FloatWeights> floatWeights; ///< the transformed float weights (null: the model's own)
    std::shared_ptr<QuantizedModel> model;      ///< quantized layers over floatWeights or the model
    std::string modelSha256;                    ///< of the weights the run quantized
};

/// Reads a state file written by writeRunState for `model` (which must outlive the result).
/// Errors name the file and the tensor: a missing or mis-shaped part, another model's state.
Expected<RunState> readRunState(const std::string& path, const Model& model);

} // namespace ql
