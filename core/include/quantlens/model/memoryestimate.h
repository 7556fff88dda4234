#pragma once

#include "quantlens/base/expected.h"
#include "quantlens/base/sysmemory.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

class Model;

/// What a command will do, as far as its memory goes.
struct MemoryJob {
    enum class Kind { Analyze, Quantize, Eval, Export };
    Kind kind = Kind::Analyze;
    int64_t windows = 0;     ///< calibration windows
    int64_t seqlen = 0;      ///< tokens per calibration window
    int64_t evalWindows = 0; ///< eval: windows evaluated
    int64_t ctx = 0;         ///< eval: tokens per window
    // analyze
    bool sensitivity = true; ///< per-layer proxy sensitivity
    bool gptqSensitivity = false;
    bool fisher = false;       ///< diagonal Fisher (fisher, full)
    int64_t heldOut = 0;       ///< full: held-out windows of the end-to-end KL
    bool keepHessians = false; ///< --save-hessian
    bool klContext = false;    ///< --kl-context: the context plan's layers stay through the analysis
    // quantize (and eval --recipe, export --run)
    bool calibrated = false;  ///< a calibration pass runs (GPTQ, AWQ, channel selectors ...)
    bool hessians = false;    ///< a method needs each site's Hessian (GPTQ, PB-LLM)
    bool blockMethod = false; ///< OmniQuant, AutoRound
    bool transforms = false;  ///< the recipe has transforms (the whole model in fp32)
    bool quantizes = false;   ///< eval --recipe, whatif: a quantize runs before
    bool loadsRun = false;    ///< eval/export --run: a saved run is read
    int64_t plansKept = 1;    ///< quantized plans alive together (whatif and pareto keep the last one)
    // whatif, pareto
    int64_t quickWindows = 0; ///< windows of the quick slice: their float log-probabilities and block inputs stay
};

/// One part of a peak.
struct MemoryTerm {
    std::string what;
    int64_t bytes = 0;
};

/// The memory a command needs at its peak: the anonymous memory alive together, and beside it
/// the weight files it maps (file-backed pages the kernel can drop and read again, so they do
/// not count against what is available).
struct MemoryEstimate {
    std::vector<MemoryTerm> terms; ///< largest first
    int64_t mappedBytes = 0;
    /// The sum of the terms.
    int64_t peakBytes() const;
    /// "57.3 GiB (calibration site buffers 52.0 GiB, Hessian 2.3 GiB, ...)", the largest terms.
    std::string summary(size_t terms = 3) const;
};

/// The peak memory of a job on this model, from its shapes and dtypes alone (nothing is read).
MemoryEstimate estimateMemory(const Model& model, const MemoryJob& job);

/// Refuses a job whose estimate exceeds what is available, naming both and what bounds it:
/// "<what> needs an estimated X at its peak (...), but Y is available (MemAvailable)".
Expected<void> checkMemory(const MemoryEstimate& estimate, const AvailableMemory& available, const std::string& what);

} // namespace ql
