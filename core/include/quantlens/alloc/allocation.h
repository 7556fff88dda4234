#pragma once

// Mixed-precision allocation (REFERENCE.md, "Bit allocation"): one option per layer, the summed
// predicted error as small as the storage budget allows. Items are layers, or groups of layers
// that must take the same option (q/k/v, gate/up when a runtime fuses them); a pinned layer is an
// item with one option.

#include "quantlens/base/expected.h"
#include "quantlens/base/feedback.h"
#include "quantlens/quant/quantspec.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ql {

/// One candidate of an item: its exact storage and its predicted error.
struct AllocOption {
    std::string label; ///< e.g. "rtn w3 g128"
    QuantSpec spec;    ///< what the option quantizes with: the plan an allocation becomes
    int64_t bits = 0;  ///< storage in bits (codes, scales, zeros, salient channels), summed over the item's layers
    double error = 0;  ///< predicted error, summed over the item's layers (any additive measure)
};

/// Layers that take one option together, and their candidates.
struct AllocItem {
    std::vector<std::string> layers;
    std::vector<AllocOption> options;
    int64_t weights = 0; ///< weights of its layers (the heuristics' bits per weight)
    /// Value entropy of its input activations in bits (the lowest over its layers), for the
    /// entropy-guided allocator; 0 when unknown.
    double entropyBits = 0;
    bool spiky = false; ///< its input carries massive activations or outlier channels (spike-aware allocator)
};

/// An allocator's choice.
struct Allocation {
    std::vector<int> choice; ///< per item, the index of the chosen option
    int64_t bits = 0;        ///< summed storage of the choice
    double error = 0;        ///< summed predicted error of the choice
    /// A proven lower bound on the least error any choice within the budget has: equal to error
    /// when the choice is proven optimal.
    double lowerBound = 0;
    bool exact = false; ///< the choice is proven optimal for the budget
    /// Width of the cost grid the dynamic programme ran on, in bits: the greatest common divisor of
    /// the options' extra costs when exact, a coarser grid (costs rounded up) when that was too fine.
    int64_t grid = 0;
};

/// Exact multiple-choice knapsack by dynamic programming over the budget in units of the greatest
/// common divisor of the options' costs above each item's cheapest (options another option of the
/// item beats in bits and error left out). Real layer shapes make the grid coarse. When the
/// programme would exceed maxCells cells (items × budget steps; a byte each), costs are rounded up to a coarser grid:
/// the choice stays within the budget, exact is false and lowerBound (the Lagrangian relaxation's) bounds the gap.
/// Errors when even the cheapest choice exceeds the budget.
Expected<Allocation> allocateKnapsack(const std::vector<AllocItem>& items, int64_t budgetBits,
                                      int64_t maxCells = int64_t(1) << 27);

/// Greedy marginal gain: start from every item's least-error option, then repeatedly move the
/// item whose next cheaper option costs the least error per saved bit, until within the budget.
Expected<Allocation> allocateGreedy(const std::vector<AllocItem>& items, int64_t budgetBits);

/// BAQ at layer granularity: widths R_i = R + log2(L_i / geomean L) / θ (θ = 1.95) with L_i an
/// item's error at the option nearest the budget's mean width, each item taking its widest option
/// not above R_i (its cheapest when none is), R the largest that fits the budget (bisection).
Expected<Allocation> allocateBaq(const std::vector<AllocItem>& items, int64_t budgetBits);

/// Entropy-guided (LUQ): from every item's widest option, the item with the lowest input entropy
/// steps down to its cheapest option, then the next lowest, until the budget is met.
Expected<Allocation> allocateEntropy(const std::vector<AllocItem>& items, int64_t budgetBits);

/// Spike-aware: greedy marginal gain over the items without spikes; items whose input carries
/// massive activations or outlier channels keep their least-error option unless the budget
/// cannot be met otherwise (then they step down too, greedily).
Expected<Allocation> allocateSpikeAware(const std::vector<AllocItem>& items, int64_t budgetBits);

/// An allocator of this file.
using AllocatorFn = Expected<Allocation> (*)(const std::vector<AllocItem>&, int64_t);

/// An allocator by name: knapsack, greedy, baq, entropy, spike, or hawq (the knapsack; it goes
/// with the hawq measure).
Expected<AllocatorFn> allocatorByName(const std::string& name);

/// The allocators' names, the exact knapsack first (what menus and sweeps offer).
const std::vector<std::string>& allocatorNames();

/// The Lagrangian lower bound max over λ ≥ 0 of Σ_i min_o (e_io + λ·b_io) − λ·budget, found by
/// bisection on λ: no choice within the budget has a smaller summed error.
double lagrangianBound(const std::vector<AllocItem>& items, int64_t budgetBits);

} // namespace ql
