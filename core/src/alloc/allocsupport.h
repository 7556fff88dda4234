#pragma once

// What the allocators share: checks, sums and the greedy step-down.

#include "quantlens/alloc/allocation.h"

#include <vector>

namespace ql::alloc_detail {

/// Every item has 1..255 options, with non-negative bits and finite errors.
Expected<void> checkItems(const std::vector<AllocItem>& items);
/// An item's cheapest option's bits.
int64_t cheapest(const AllocItem& item);
/// The allocation of a choice: its summed bits and error (no bound).
Allocation summarise(const std::vector<AllocItem>& items, std::vector<int> choice);
/// Σ cheapest bits; an error when even that exceeds the budget.
Expected<int64_t> minimumBits(const std::vector<AllocItem>& items, int64_t budget);
/// Moves the unfrozen item whose next cheaper option costs the least error per saved bit, until
/// bits fits the budget; false when no unfrozen item can save more.
bool greedyDown(const std::vector<AllocItem>& items, std::vector<int>& choice, int64_t& bits, int64_t budget,
                const std::vector<char>& frozen);
/// Every item's least-error option (fewer bits on a tie), and their summed bits.
std::vector<int> leastError(const std::vector<AllocItem>& items, int64_t& bits);
/// summarise, with the Lagrangian lower bound and whether it proves the choice optimal.
Allocation withBound(const std::vector<AllocItem>& items, std::vector<int> choice, int64_t budget);

} // namespace ql::alloc_detail
