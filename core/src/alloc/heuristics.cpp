#include "quantlens/alloc/allocation.h"

#include "alloc/allocsupport.h"

#include <algorithm>
#include <map>
#include <cmath>
#include <numeric>

namespace ql {

using namespace alloc_detail;

namespace {

double widthOf(const AllocItem& it, const AllocOption& o)
{
    return it.weights > 0 ? double(o.bits) / double(it.weights) : double(o.bits);
}

// The item's options from the most bits to the fewest (ties: less error first).
std::vector<int> byBitsDescending(const AllocItem& it)
{
    std::vector<int> order(it.options.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        const AllocOption &x = it.options[size_t(a)], &y = it.options[size_t(b)];
        return x.bits != y.bits ? x.bits > y.bits : x.error < y.error;
    });
    return order;
}

} // namespace

Expected<Allocation> allocateBaq(const std::vector<AllocItem>& items, int64_t budget)
{
    QL_TRY(checkItems(items));
    QL_TRY(minimumBits(items, budget));
    constexpr double theta = 1.95;
    int64_t weights = 0;
    for (const AllocItem& it : items) weights += std::max<int64_t>(it.weights, 1);
    const double mean = double(budget) / double(weights);
    // L_i: the error at the option nearest the mean width (floored away from zero for the logs).
    std::vector<double> logL(items.size());
    double logGeo = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const AllocItem& it = items[i];
        const auto near = std::min_element(it.options.begin(), it.options.end(), [&](const auto& a, const auto& b) {
            return std::abs(widthOf(it, a) - mean) < std::abs(widthOf(it, b) - mean);
        });
        logL[i] = std::log2(std::max(near->error, 1e-300));
        logGeo += logL[i] / double(items.size());
    }
    auto choose = [&](double r, int64_t& bits) {
        std::vector<int> choice(items.size());
        bits = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            const AllocItem& it = items[i];
            const double target = r + (logL[i] - logGeo) / theta;
            int best = -1, cheap = 0;
            for (size_t o = 0; o < it.options.size(); ++o) {
                const AllocOption& x = it.options[o];
                if (x.bits < it.options[size_t(cheap)].bits) cheap = int(o);
                if (widthOf(it, x) <= target &&
                    (best < 0 || x.bits > it.options[size_t(best)].bits ||
                     (x.bits == it.options[size_t(best)].bits && x.error < it.options[size_t(best)].error)))
                    best = int(o);
            }
            choice[i] = best >= 0 ? best : cheap;
            bits += it.options[size_t(choice[i])].bits;
        }
        return choice;
    };
    // Bisection on R: the allocation's bits grow with it.
    double lo = -64, hi = 64;
    int64_t bits = 0;
    for (int iter = 0; iter < 100; ++iter) {
        const double mid = 0.5 * (lo + hi);
        choose(mid, bits);
        (bits <= budget ? lo : hi) = mid;
    }
    std::vector<int> choice = choose(lo, bits);
    return withBound(items, std::move(choice), budget);
}

Expected<Allocation> allocateEntropy(const std::vector<AllocItem>& items, int64_t budget)
{
    QL_TRY(checkItems(items));
    QL_TRY(minimumBits(items, budget));
    std::vector<std::vector<int>> order(items.size());
    std::vector<size_t> step(items.size(), 0);
    int64_t bits = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        order[i] = byBitsDescending(items[i]);
        bits += items[i].options[size_t(order[i][0])].bits;
    }
    std::vector<size_t> byEntropy(items.size());
    std::iota(byEntropy.begin(), byEntropy.end(), size_t(0));
    std::stable_sort(byEntropy.begin(), byEntropy.end(),
                     [&](size_t a, size_t b) { return items[a].entropyBits < items[b].entropyBits; });
    // The lowest entropy first, each down to its cheapest option before the next one moves.
    for (size_t i : byEntropy)
        while (bits > budget && step[i] + 1 < order[i].size()) {
            bits -= items[i].options[size_t(order[i][step[i]])].bits -
                    items[i].options[size_t(order[i][step[i] + 1])].bits;
            ++step[i];
        }
    std::vector<int> choice(items.size());
    for (size_t i = 0; i < items.size(); ++i) choice[i] = order[i][step[i]];
    return withBound(items, std::move(choice), budget);
}

Expected<Allocation> allocateSpikeAware(const std::vector<AllocItem>& items, int64_t budget)
{
    QL_TRY(checkItems(items));
    QL_TRY(minimumBits(items, budget));
    int64_t bits = 0;
    std::vector<int> choice = leastError(items, bits);
    std::vector<char> frozen(items.size());
    for (size_t i = 0; i < items.size(); ++i) frozen[i] = items[i].spiky;
    if (!greedyDown(items, choice, bits, budget, frozen))
        greedyDown(items, choice, bits, budget, std::vector<char>(items.size(), 0)); // minimumBits: it fits
    return withBound(items, std::move(choice), budget);
}

const std::vector<std::string>& allocatorNames()
{
    static const std::vector<std::string> names{"knapsack", "greedy", "baq", "entropy", "spike", "hawq"};
    return names;
}

Expected<AllocatorFn> allocatorByName(const std::string& name)
{
    static const std::map<std::string, AllocatorFn> allocators{
        {"knapsack", [](const std::vector<AllocItem>& i, int64_t b) { return allocateKnapsack(i, b); }},
        {"greedy", allocateGreedy},
        {"baq", allocateBaq},
        {"entropy", allocateEntropy},
        {"spike", allocateSpikeAware},
        // HAWQ-style: the exact knapsack on the Hessian-trace × perturbation measure.
        {"hawq", [](const std::vector<AllocItem>& i, int64_t b) { return allocateKnapsack(i, b); }}};
    const auto it = allocators.find(name);
    if (it == allocators.end())
        return makeError("the allocator must be knapsack, greedy, baq, entropy, spike or hawq, got '" + name + "'");
    return it->second;
}

} // namespace ql
