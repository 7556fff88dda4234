// The allocators against brute force: on instances small enough to enumerate every choice, the
// knapsack's error equals the least error within each budget of a sweep, greedy and the coarse
// grid stay within the budget, and the Lagrangian bound never exceeds the optimum.

#include "quantlens/alloc/allocation.h"

#include <QtTest>

#include <random>

namespace {

// A layer-shaped instance: `layers` items with options at 2, 3, 4 and 8 bits (groups of 128 add
// 32 bits of scale and zero per group), errors falling with the bits as 4^-b times a sensitivity.
std::vector<ql::AllocItem> layerInstance(std::mt19937& rng, int layers)
{
    const int64_t shapes[][2] = {{64, 64}, {64, 176}, {176, 64}, {32, 64}};
    std::uniform_real_distribution<double> sens(0.1, 10.0);
    std::vector<ql::AllocItem> items;
    for (int l = 0; l < layers; ++l) {
        const int64_t params = shapes[l % 4][0] * shapes[l % 4][1] * 128;
        const double s = sens(rng);
        ql::AllocItem it;
        it.layers = {"layer" + std::to_string(l)};
        for (int b : {2, 3, 4, 8})
            it.options.push_back({"w" + std::to_string(b), {}, params * b + params / 128 * 32, s * std::pow(4.0, -b)});
        items.push_back(std::move(it));
    }
    return items;
}

// Costs with no common divisor and errors in no order: the programme's grid is one bit.
std::vector<ql::AllocItem> irregularInstance(std::mt19937& rng, int layers, int options)
{
    std::uniform_int_distribution<int64_t> bits(1000, 9000);
    std::uniform_real_distribution<double> err(0.0, 1.0);
    std::vector<ql::AllocItem> items(size_t(layers), ql::AllocItem{});
    for (auto& it : items)
        for (int o = 0; o < options; ++o) it.options.push_back({"o" + std::to_string(o), {}, bits(rng), err(rng)});
    return items;
}

// Every choice's bits and error, enumerated.
void enumerateChoices(const std::vector<ql::AllocItem>& items, std::vector<int64_t>& bits, std::vector<double>& errors)
{
    bits = {0};
    errors = {0.0};
    for (const auto& it : items) {
        std::vector<int64_t> nb;
        std::vector<double> ne;
        nb.reserve(bits.size() * it.options.size());
        ne.reserve(bits.size() * it.options.size());
        for (size_t k = 0; k < bits.size(); ++k)
            for (const auto& o : it.options) {
                nb.push_back(bits[k] + o.bits);
                ne.push_back(errors[k] + o.error);
            }
        bits.swap(nb);
        errors.swap(ne);
    }
}

} // namespace

class TestAllocation : public QObject {
    Q_OBJECT

private slots:
    void knapsackEqualsBruteForce_data()
    {
        QTest::addColumn<int>("kind");
        QTest::addColumn<int>("seed");
        for (int seed : {1, 2, 3}) {
            QTest::addRow("layers %d", seed) << 0 << seed;
            QTest::addRow("irregular %d", seed) << 1 << seed;
        }
    }

    void knapsackEqualsBruteForce()
    {
        QFETCH(int, kind);
        QFETCH(int, seed);
        std::mt19937 rng{static_cast<uint32_t>(seed)};
        const auto items = kind == 0 ? layerInstance(rng, 10) : irregularInstance(rng, 10, 4);
        std::vector<int64_t> bits;
        std::vector<double> errors;
        enumerateChoices(items, bits, errors); // 4^10 choices
        const int64_t lo = *std::min_element(bits.begin(), bits.end());
        const int64_t hi = *std::max_element(bits.begin(), bits.end());
        for (int step = 0; step <= 16; ++step) {
            const int64_t budget = lo + (hi - lo) * step / 16 + (step % 3); // some off the grid
            double optimum = std::numeric_limits<double>::infinity();
            for (size_t k = 0; k < bits.size(); ++k)
                if (bits[k] <= budget) optimum = std::min(optimum, errors[k]);
            const QString at = QStringLiteral("budget %1 of [%2, %3]").arg(budget).arg(lo).arg(hi);

            auto a = ql::allocateKnapsack(items, budget);
            QVERIFY2(a.ok(), a.message().c_str());
            QVERIFY2(a->bits <= budget, qPrintable(at));
            QVERIFY(a->exact);
            QVERIFY2(std::abs(a->error - optimum) <= 1e-12 * std::max(1.0, optimum),
                     qPrintable(at + QStringLiteral(": %1 vs %2").arg(a->error, 0, 'g', 17).arg(optimum, 0, 'g', 17)));
            // The reported sums are those of the choice.
            int64_t b = 0;
            double e = 0;
            for (size_t i = 0; i < items.size(); ++i) {
                b += items[i].options[size_t(a->choice[i])].bits;
                e += items[i].options[size_t(a->choice[i])].error;
            }
            QCOMPARE(a->bits, b);
            QCOMPARE(a->error, e);

            QVERIFY2(ql::lagrangianBound(items, budget) <= optimum * (1 + 1e-12) + 1e-15, qPrintable(at));
            auto g = ql::allocateGreedy(items, budget);
            QVERIFY2(g.ok(), g.message().c_str());
            QVERIFY2(g->bits <= budget && g->error >= optimum - 1e-12, qPrintable(at));
            // A grid far too coarse for exactness still keeps the budget and brackets the optimum.
            auto c = ql::allocateKnapsack(items, budget, 10 * 40);
            QVERIFY2(c.ok(), c.message().c_str());
            QVERIFY2(c->bits <= budget, qPrintable(at));
            QVERIFY2(c->lowerBound <= optimum * (1 + 1e-12) + 1e-15 && c->error >= optimum - 1e-12, qPrintable(at));
        }
    }

    void budgetBelowTheSmallestPlanFails()
    {
        std::mt19937 rng(5);
        const auto items = layerInstance(rng, 4);
        int64_t least = 0;
        for (const auto& it : items) least += it.options.front().bits;
        auto a = ql::allocateKnapsack(items, least - 1);
        QVERIFY(!a.ok());
        QVERIFY2(a.message().find("below the " + std::to_string(least) + " bits") != std::string::npos,
                 a.message().c_str());
        QVERIFY(ql::allocateKnapsack(items, least).ok());
        auto empty = ql::allocateKnapsack({ql::AllocItem{{"model.layers.0.mlp.up_proj"}, {}}}, 100);
        QVERIFY(!empty.ok());
        QVERIFY2(empty.message().find("model.layers.0.mlp.up_proj has no options") != std::string::npos,
                 empty.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestAllocation)
#include "tst_allocation.moc"
