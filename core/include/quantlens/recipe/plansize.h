#pragma once

// A plan's size from its specs alone, before anything runs: what the plan editor shows at once
// after every edit. It counts what the exporters store, as effectiveBits does for a run.

#include "quantlens/model/model.h"
#include "quantlens/quant/quantspec.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ql {

/// The storage of a plan.
struct PlanSize {
    double quantizedWeights = 0; ///< weights of the quantized linears
    double bitsPerWeight = 0;    ///< over the quantized linears (codes, scales, zeros, salient columns)
    int64_t modelBytes = 0;      ///< the whole model: the linears as planned, every other weight at 16 bits
};

/// Bits a spec stores per weight of a rows × cols linear: the format's code bits plus an fp16
/// scale per group (and a zero at the code width for asymmetric integers, an fp16 μ for binary);
/// explicit channel lists at their own format. A selector's channel count is ⌈p·cols/100⌉. A
/// method that chooses its own formats (PB-LLM's salient weights) is counted by its base format
/// until a run reports its measured bits.
double specBitsPerWeight(const QuantSpec& spec, int64_t rows, int64_t cols);

/// The plan's size; layers missing from specs or skipped count at 16 bits.
PlanSize planSize(const std::map<std::string, QuantSpec>& specs, const std::vector<LinearLayer>& layers,
                  int64_t modelParameters);

} // namespace ql
