// The allocators against brute force: on instances small enough to enumerate every choice, the
// knapsack's error equals the least error within each budget of a sweep, greedy and the coarse
// grid stay within the budget, and the Lagrangian bound never exceeds the optimum.

#include "quantlens/alloc/allocation.h"
#include "quantlens/alloc/measuredoptions.h"

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
        it.weights = params;
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

    // BAQ, entropy-guided and spike-aware stay within every budget of a sweep, never beat the
    // exact optimum, and report a valid bound.
    void heuristicsStayWithinBudget()
    {
        std::mt19937 rng(11);
        auto items = layerInstance(rng, 12);
        for (size_t i = 0; i < items.size(); ++i) {
            items[i].entropyBits = double((i * 7) % 12);
            items[i].spiky = i % 5 == 0;
        }
        int64_t lo = 0, hi = 0;
        for (const auto& it : items) lo += it.options.front().bits, hi += it.options.back().bits;
        for (int step = 0; step <= 10; ++step) {
            const int64_t budget = lo + (hi - lo) * step / 10;
            auto best = ql::allocateKnapsack(items, budget);
            QVERIFY(best.ok() && best->exact);
            for (auto allocate : {ql::allocateBaq, ql::allocateEntropy, ql::allocateSpikeAware}) {
                auto a = allocate(items, budget);
                QVERIFY2(a.ok(), a.message().c_str());
                QVERIFY(a->bits <= budget);
                QVERIFY(a->error >= best->error * (1 - 1e-12));
                QVERIFY(a->lowerBound <= best->error * (1 + 1e-12));
            }
        }
    }

    // Entropy-guided: with equal options everywhere, the lowest-entropy items go to the fewest
    // bits first; spike-aware: spiky items keep their least-error option while others can pay.
    void heuristicsFollowTheirScores()
    {
        std::mt19937 rng(3);
        auto items = layerInstance(rng, 8);
        for (size_t i = 0; i < items.size(); ++i) {
            items[i].options = items[0].options; // the same costs and errors
            items[i].weights = items[0].weights;
            items[i].entropyBits = double(8 - i); // the last item has the lowest entropy
            items[i].spiky = i < 2;
        }
        int64_t top = 0;
        for (const auto& it : items) top += it.options.back().bits; // all at 8 bits
        const int64_t save = items[0].options.back().bits - items[0].options.front().bits;
        auto e = ql::allocateEntropy(items, top - 3 * save); // three items down to 2 bits
        QVERIFY(e.ok());
        const std::vector<int> expect{3, 3, 3, 3, 3, 0, 0, 0};
        QCOMPARE(e->choice, expect);
        auto s = ql::allocateSpikeAware(items, top - 3 * save);
        QVERIFY(s.ok());
        QCOMPARE(s->choice[0], 3);
        QCOMPARE(s->choice[1], 3);
        // BAQ: more loss at the reference width, at least as many bits.
        auto b = items;
        for (size_t i = 0; i < b.size(); ++i)
            for (auto& o : b[i].options) o.error *= std::pow(2.0, double(i));
        auto baq = ql::allocateBaq(b, top - 3 * save);
        QVERIFY(baq.ok());
        for (size_t i = 1; i < b.size(); ++i)
            QVERIFY2(b[i].options[size_t(baq->choice[i])].bits >= b[i - 1].options[size_t(baq->choice[i - 1])].bits,
                     qPrintable(QString::number(i)));
    }

    // Items from an analysis with method and group options: labels, specs, costs as the plan
    // editor counts them, the chosen measure, pins keeping every option of their width, and ties.
    void measuredItemsFromOptions()
    {
        std::vector<ql::LinearLayer> layers;
        for (auto [name, kind] : {std::pair{"q", ql::LinearKind::Q}, {"k", ql::LinearKind::K}})
            layers.push_back(
                {std::string("model.layers.0.self_attn.") + name + "_proj", "layers.0.attn_in", 0, kind, 64, 256});
        ql::AnalysisResult analysis;
        const std::vector<ql::SensitivityOption> options{{"rtn", 3, 128}, {"gptq", 3, 128}, {"gptq", 4, 0}};
        for (size_t i = 0; i < layers.size(); ++i) {
            ql::LayerSensitivity s;
            s.name = layers[i].name;
            for (const auto& o : options) {
                s.bits.push_back(o.bits);
                s.methods.push_back(o.method);
                s.groups.push_back(o.group);
                s.proxy.push_back(1.0 + double(i) + double(s.bits.size()));
                s.relMse.push_back(10.0 * double(s.bits.size()));
            }
            analysis.sensitivity.push_back(s);
        }
        auto items = ql::measuredItems(layers, analysis, ql::AllocMeasure::Output, {});
        QVERIFY2(items.ok(), items.message().c_str());
        QCOMPARE(items->size(), size_t(2));
        const auto& it = (*items)[1];
        QCOMPARE(it.options.size(), size_t(3));
        QCOMPARE(it.options[1].label, std::string("gptq w3 g128"));
        QCOMPARE(it.options[1].spec.method, std::string("gptq"));
        QCOMPARE(it.options[2].spec.weight.granularity, ql::Granularity::PerChannel);
        // int3 in groups of 128 over 256 columns: 3 bits + 2 × (16 + 3) bits per row of 256.
        QCOMPARE(it.options[1].bits, int64_t(64 * 256 * 3 + 64 * 2 * 19));
        QCOMPARE(it.options[2].bits, int64_t(64 * 256 * 4 + 64 * (16 + 4)));
        QCOMPARE(it.options[2].error, 30.0);
        ql::AllocConstraints pin;
        pin.pinnedBits[layers[0].name] = 3;
        auto pinned = ql::measuredItems(layers, analysis, ql::AllocMeasure::Proxy, pin);
        QVERIFY(pinned.ok());
        QCOMPARE((*pinned)[0].options.size(), size_t(2));
        QCOMPARE((*pinned)[0].options[1].label, std::string("gptq w3 g128"));
        QCOMPARE((*pinned)[1].options.size(), size_t(3));
        ql::AllocConstraints tie;
        tie.tieQkv = true;
        auto tied = ql::measuredItems(layers, analysis, ql::AllocMeasure::Proxy, tie);
        QVERIFY(tied.ok());
        QCOMPARE(tied->size(), size_t(1));
        QCOMPARE(tied->front().options[0].error, 2.0 + 3.0); // summed over q and k
        analysis.sensitivity[1].groups[2] = 64;
        auto mismatch = ql::measuredItems(layers, analysis, ql::AllocMeasure::Proxy, tie);
        QVERIFY(!mismatch.ok());
        QVERIFY(QString::fromStdString(mismatch.message()).contains("other options"));
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
