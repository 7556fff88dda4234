#pragma once

#include "quantlens/text/calibration.h"
#include "quantlens/base/feedback.h"
#include "quantlens/quant/quantizedmodel.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace ql {

/// Finds a quantization method by id (the plugin registry, or a test's own table).
using MethodLookup = std::function<const Quantizer*(const std::string& id)>;

/// How the pipeline feeds each block.
struct PipelineOptions {
    /// true: each layer's statistics come from inputs produced by the already quantized layers
    /// before it (GPTQ's true-sequential order inside a block); false: from the float model.
    bool sequential = true;
    int threads = 0;
    /// Float weights to quantize instead of the model's own (e.g. after transforms); must outlive
    /// the returned model.
    const WeightSource* base = nullptr;
    /// What distinguishes `base` from the model (e.g. the transforms and their parameters): part
    /// of every cache key, so results over other float weights are never reused.
    std::string baseIdentity;
};

/// What the last run did: the test of incrementality, and progress reports.
struct PipelineRunStats {
    int layersQuantized = 0; ///< quantizer calls
    int layersReused = 0;    ///< results taken from the cache
    int blockForwards = 0;   ///< whole-block forward passes over the calibration windows
    int blockParts = 0;      ///< partial block runs (block input or a site, to a site or the block's end)
    double seconds = 0;
};

/// Runs quantization block by block, layer group by layer group (q/k/v, o, gate/up, down), and
/// caches every layer's result under (layer, spec, identity of its inputs). Running again after
/// an edit recomputes the edited layers and, in sequential mode, what lies downstream of them.
class QuantPipeline {
public:
    QuantPipeline(const Model& model, MethodLookup methods);

    /// Quantizes every layer with a spec that is not skip (layers without a spec stay float).
    Expected<std::shared_ptr<QuantizedModel>> run(const std::map<std::string, QuantSpec>& specs,
                                                  const CalibrationSet& calib, const PipelineOptions& options = {},
                                                  Feedback* feedback = nullptr);
    /// Counters of the last run().
    const PipelineRunStats& lastRun() const { return m_stats; }
    /// Forgets every cached result.
    void clearCache() { m_cache.clear(); }

private:
    const Model& m_model;
    MethodLookup m_methods;
    std::map<std::string, std::shared_ptr<const LayerResult>> m_cache;
    PipelineRunStats m_stats;
};

/// A canonical text of a spec, equal for equal specs (cache keys, reports).
std::string specKey(const QuantSpec& spec);

} // namespace ql
