#include "quantlens/alloc/allocation.h"

#include "alloc/allocsupport.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ql {

namespace alloc_detail {

Expected<void> checkItems(const std::vector<AllocItem>& items)
{
    for (size_t i = 0; i < items.size(); ++i) {
        const AllocItem& it = items[i];
        const std::string name = it.layers.empty() ? "item " + std::to_string(i) : it.layers.front();
        if (it.options.empty()) return makeError("allocation: " + name + " has no options");
        if (it.options.size() > 255) return makeError("allocation: " + name + " has more than 255 options");
        for (const AllocOption& o : it.options)
            if (o.bits < 0 || !std::isfinite(o.error))
                return makeError("allocation: " + name + " option \"" + o.label +
                                 "\" needs non-negative bits and a finite error");
    }
    return {};
}

int64_t cheapest(const AllocItem& it)
{
    int64_t b = std::numeric_limits<int64_t>::max();
    for (const AllocOption& o : it.options) b = std::min(b, o.bits);
    return b;
}

Allocation summarise(const std::vector<AllocItem>& items, std::vector<int> choice)
{
    Allocation a;
    a.choice = std::move(choice);
    for (size_t i = 0; i < items.size(); ++i) {
        const AllocOption& o = items[i].options[size_t(a.choice[i])];
        a.bits += o.bits;
        a.error += o.error;
    }
    return a;
}

Expected<int64_t> minimumBits(const std::vector<AllocItem>& items, int64_t budget)
{
    int64_t base = 0;
    for (const AllocItem& it : items) base += cheapest(it);
    if (base > budget)
        return makeError("allocation: the budget of " + std::to_string(budget) + " bits is below the " +
                         std::to_string(base) + " bits of the smallest plan the options allow");
    return base;
}

bool greedyDown(const std::vector<AllocItem>& items, std::vector<int>& choice, int64_t& bits, int64_t budget,
                const std::vector<char>& frozen)
{
    while (bits > budget) {
        double bestRate = std::numeric_limits<double>::infinity();
        size_t bi = items.size(), bo = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            if (frozen[i]) continue;
            const AllocOption& cur = items[i].options[size_t(choice[i])];
            for (size_t o = 0; o < items[i].options.size(); ++o) {
                const AllocOption& cand = items[i].options[o];
                if (cand.bits >= cur.bits) continue;
                const double rate = (cand.error - cur.error) / double(cur.bits - cand.bits);
                if (rate < bestRate) bestRate = rate, bi = i, bo = o;
            }
        }
        if (bi == items.size()) return false;
        bits -= items[bi].options[size_t(choice[bi])].bits - items[bi].options[bo].bits;
        choice[bi] = int(bo);
    }
    return true;
}

std::vector<int> leastError(const std::vector<AllocItem>& items, int64_t& bits)
{
    std::vector<int> choice(items.size());
    bits = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        const auto& opts = items[i].options;
        size_t b = 0;
        for (size_t o = 1; o < opts.size(); ++o)
            if (opts[o].error < opts[b].error || (opts[o].error == opts[b].error && opts[o].bits < opts[b].bits)) b = o;
        choice[i] = int(b);
        bits += opts[b].bits;
    }
    return choice;
}

Allocation withBound(const std::vector<AllocItem>& items, std::vector<int> choice, int64_t budget)
{
    Allocation a = summarise(items, std::move(choice));
    a.lowerBound = std::min(a.error, lagrangianBound(items, budget));
    a.exact = a.error - a.lowerBound <= 1e-12 * std::abs(a.error);
    return a;
}

} // namespace alloc_detail

namespace {

// Σ_i min_o (e_io + λ·b_io) − λ·budget.
double dual(const std::vector<AllocItem>& items, int64_t budget, double lambda)
{
    double sum = -lambda * double(budget);
    for (const AllocItem& it : items) {
        double best = std::numeric_limits<double>::infinity();
        for (const AllocOption& o : it.options) best = std::min(best, o.error + lambda * double(o.bits));
        sum += best;
    }
    return sum;
}

} // namespace

double lagrangianBound(const std::vector<AllocItem>& items, int64_t budgetBits)
{
    // Past the largest error saved per bit between two options of an item, every item takes its
    // cheapest option and the dual only falls: the maximum lies in [0, hi].
    double hi = 0;
    for (const AllocItem& it : items)
        for (const AllocOption& a : it.options)
            for (const AllocOption& b : it.options)
                if (b.bits > a.bits) hi = std::max(hi, (a.error - b.error) / double(b.bits - a.bits));
    double lo = 0;
    hi *= 1.0001;
    double best = dual(items, budgetBits, 0);
    // The dual is concave in λ: ternary search, keeping the best value seen (any λ gives a bound).
    for (int iter = 0; iter < 200 && hi > lo; ++iter) {
        const double m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;
        const double f1 = dual(items, budgetBits, m1), f2 = dual(items, budgetBits, m2);
        best = std::max({best, f1, f2});
        if (f1 < f2)
            lo = m1;
        else
            hi = m2;
    }
    return best;
}

using namespace alloc_detail;

Expected<Allocation> allocateKnapsack(const std::vector<AllocItem>& items, int64_t budget, int64_t maxCells)
{
    QL_TRY(checkItems(items));
    auto base = minimumBits(items, budget);
    if (!base) return base.error();
    const size_t n = items.size();
    // Extra cost of each option above its item's cheapest, and their greatest common divisor.
    int64_t g = 0, most = 0;
    std::vector<int64_t> least(n);
    for (size_t i = 0; i < n; ++i) {
        least[i] = cheapest(items[i]);
        int64_t itemMost = 0;
        for (const AllocOption& o : items[i].options) {
            g = std::gcd(g, o.bits - least[i]);
            itemMost = std::max(itemMost, o.bits - least[i]);
        }
        most += itemMost;
    }
    const int64_t slack = budget - *base;
    if (g == 0) g = 1; // every item has options of one cost only
    int64_t cells = std::min(slack, most) / g + 1;
    const int64_t perItem = std::max<int64_t>(2, maxCells / int64_t(std::max<size_t>(n, 1)));
    bool exact = true;
    if (cells > perItem) { // coarser grid, costs rounded up: still within the budget, maybe not optimal
        g *= (cells + perItem - 2) / (perItem - 1);
        cells = std::min(slack, most) / g + 1;
        exact = false;
    }
    const auto cost = [&](size_t i, const AllocOption& o) {
        return exact ? (o.bits - least[i]) / g : (o.bits - least[i] + g - 1) / g;
    };
    // best[c]: the least error of the items so far with extra cost at most c grid steps. An
    // option another option of its item beats in both bits and error never helps: left out.
    std::vector<double> best(static_cast<size_t>(cells), 0.0), next(static_cast<size_t>(cells));
    std::vector<uint8_t> pick(n * size_t(cells));
    constexpr double inf = std::numeric_limits<double>::infinity();
    std::vector<int64_t> w;
    std::vector<double> e;
    std::vector<uint8_t> index;
    for (size_t i = 0; i < n; ++i) {
        const AllocItem& it = items[i];
        w.clear(), e.clear(), index.clear();
        for (size_t o = 0; o < it.options.size(); ++o) {
            const AllocOption& a = it.options[o];
            const bool dominated = std::any_of(it.options.begin(), it.options.end(), [&](const AllocOption& b) {
                return &b != &a && b.bits <= a.bits && b.error <= a.error &&
                       (b.bits < a.bits || b.error < a.error || &b < &a);
            });
            if (dominated) continue;
            w.push_back(cost(i, a));
            e.push_back(a.error);
            index.push_back(uint8_t(o));
        }
        uint8_t* row = pick.data() + i * size_t(cells);
        const size_t k = w.size();
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < cells; ++c) {
            double v = inf;
            uint8_t at = 0;
            for (size_t o = 0; o < k; ++o)
                if (w[o] <= c && best[size_t(c - w[o])] + e[o] < v) {
                    v = best[size_t(c - w[o])] + e[o];
                    at = index[o];
                }
            next[size_t(c)] = v;
            row[c] = at;
        }
        std::swap(best, next);
    }
    std::vector<int> choice(n);
    int64_t c = cells - 1;
    for (size_t i = n; i-- > 0;) {
        const uint8_t o = pick[i * size_t(cells) + size_t(c)];
        choice[i] = o;
        c -= cost(i, items[i].options[o]);
    }
    Allocation a = summarise(items, std::move(choice));
    a.grid = g;
    a.exact = exact;
    a.lowerBound = exact ? a.error : std::min(a.error, lagrangianBound(items, budget));
    if (!exact && a.error - a.lowerBound <= 1e-12 * std::abs(a.error)) a.exact = true;
    return a;
}

Expected<Allocation> allocateGreedy(const std::vector<AllocItem>& items, int64_t budget)
{
    QL_TRY(checkItems(items));
    QL_TRY(minimumBits(items, budget));
    int64_t bits = 0;
    std::vector<int> choice = leastError(items, bits);
    greedyDown(items, choice, bits, budget, std::vector<char>(items.size(), 0)); // minimumBits: it fits
    return withBound(items, std::move(choice), budget);
}

} // namespace ql
