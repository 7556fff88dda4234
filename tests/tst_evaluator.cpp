// Perplexity protocols and KL divergence against independent computations:
//  - window construction checked by hand for both protocols;
//  - perplexity and KL on fixture models against the float64 naive forward
//    (tests/reference/naivellama.h) with the protocol re-implemented here;
//  - the shared trained models against tests/data/reference_ppl.json, produced by
//    tests/reference/numpy_reference.py (see the "command" field of each entry).
#include "fixturemodel.h"
#include "quantlens/forward/bf16gemm.h"
#include "quantlens/forward/evaluator.h"
#include "quantlens/forward/quickeval.h"
#include "quantlens/quant/quantizedmodel.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"
#include "reference/naivellama.h"
#include "testpaths.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

using qltest::readAll;

namespace {

double logSoftmaxAt(const std::vector<double>& l, int idx)
{
    double mx = -1e300;
    for (double v : l) mx = std::max(mx, v);
    double s = 0;
    for (double v : l) s += std::exp(v - mx);
    return l[idx] - mx - std::log(s);
}

} // namespace

class TestEvaluator : public QObject {
    Q_OBJECT

private slots:
    void windows()
    {
        std::vector<int32_t> toks(100);
        for (int i = 0; i < 100; ++i) toks[i] = 10 + i;
        ql::EvalOptions o;
        o.ctx = 16;
        o.protocol = ql::PplProtocol::LlamaCpp;
        // llama.cpp: stream = [BOS] + tokens, 101 / 16 = 6 windows, each starting with BOS.
        auto w = ql::makeWindows(toks, 1, o);
        QVERIFY(w.ok());
        QCOMPARE(w->size(), size_t(6));
        QCOMPARE((*w)[0].tokens[0], 1);
        QCOMPARE((*w)[0].tokens[1], 10);
        QCOMPARE((*w)[1].tokens[0], 1);  // overwrote tokens[15] = 25
        QCOMPARE((*w)[1].tokens[1], 26); // stream index 17 = token 16
        QCOMPARE((*w)[0].firstScored, 8);
        // Without BOS: plain windows of the text.
        auto nb = ql::makeWindows(toks, -1, o);
        QCOMPARE(nb->size(), size_t(6));
        QCOMPARE((*nb)[1].tokens[0], 26);
        o.protocol = ql::PplProtocol::Paper;
        o.chunks = 3;
        auto p = ql::makeWindows(toks, 1, o); // paper ignores BOS
        QCOMPARE(p->size(), size_t(3));
        QCOMPARE((*p)[0].tokens[0], 10);
        QCOMPARE((*p)[2].tokens[15], 10 + 47);
        QCOMPARE((*p)[0].firstScored, 0);
        o.ctx = 200;
        auto tooShort = ql::makeWindows(toks, 1, o);
        QVERIFY(!tooShort.ok());
        QVERIFY2(QString::fromStdString(tooShort.message()).contains("fewer than one window"),
                 tooShort.message().c_str());
    }

    void perplexityMatchesNaive_data()
    {
        QTest::addColumn<int>("protocol");
        QTest::newRow("llamacpp") << int(ql::PplProtocol::LlamaCpp);
        QTest::newRow("paper") << int(ql::PplProtocol::Paper);
    }
    void perplexityMatchesNaive()
    {
        QFETCH(int, protocol);
        qlfix::ModelSpec s;
        s.weightStd = 0.2f;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        std::vector<int32_t> toks(75);
        for (int i = 0; i < 75; ++i) toks[i] = (i * i * 7 + 3) % s.vocab;
        ql::EvalOptions o;
        o.ctx = 24;
        o.protocol = ql::PplProtocol(protocol);
        o.maxBatchBytes = 1; // one window per batch: exercises batching too
        auto r = ql::evaluatePerplexity(m->config(), *m, toks, 1, o);
        QVERIFY2(r.ok(), r.message().c_str());

        // The protocol, again, over naive logits.
        const auto weights = qlfix::makeWeights(s);
        std::vector<int32_t> stream;
        const bool llama = protocol == int(ql::PplProtocol::LlamaCpp);
        if (llama) stream.push_back(1);
        stream.insert(stream.end(), toks.begin(), toks.end());
        double nll = 0;
        int count = 0;
        for (size_t c = 0; (c + 1) * 24 <= stream.size(); ++c) {
            std::vector<int32_t> w(stream.begin() + c * 24, stream.begin() + (c + 1) * 24);
            if (llama) w[0] = 1;
            const auto l = qltest::naiveLogits(s, weights, w);
            for (int j = llama ? 12 : 0; j < 23; ++j) {
                nll -= logSoftmaxAt(l[j], w[j + 1]);
                ++count;
            }
        }
        QCOMPARE(r->tokensScored, int64_t(count));
        QCOMPARE(r->chunks, 3);
        const double expect = std::exp(nll / count);
        qInfo("ppl %.6f, naive %.6f", r->ppl, expect);
        QVERIFY(std::abs(r->ppl / expect - 1) < 1e-5);
    }

    void klMatchesNaive()
    {
        qlfix::ModelSpec a, b;
        a.weightStd = b.weightStd = 0.2f;
        b.seed = 99;
        QTemporaryDir tmp;
        const std::string da = tmp.path().toStdString() + "/a", db = tmp.path().toStdString() + "/b";
        QVERIFY(qlfix::writeModel(da, a));
        QVERIFY(qlfix::writeModel(db, b));
        auto ma = ql::Model::open(da);
        auto mb = ql::Model::open(db);
        std::vector<int32_t> toks(40);
        for (int i = 0; i < 40; ++i) toks[i] = (i * 31 + 5) % a.vocab;
        ql::EvalOptions o;
        o.ctx = 20;
        o.protocol = ql::PplProtocol::Paper;
        auto self = ql::evaluateKl(ma->config(), *ma, ma->config(), *ma, toks, -1, o);
        QVERIFY(self.ok());
        QVERIFY(std::abs(self->meanKl) < 1e-6);
        QCOMPARE(self->top1Agreement, 1.0);
        auto r = ql::evaluateKl(ma->config(), *ma, mb->config(), *mb, toks, -1, o);
        QVERIFY2(r.ok(), r.message().c_str());
        double kl = 0;
        int n = 0;
        const auto wa = qlfix::makeWeights(a), wb = qlfix::makeWeights(b);
        for (int c = 0; c < 2; ++c) {
            std::vector<int32_t> w(toks.begin() + c * 20, toks.begin() + (c + 1) * 20);
            const auto la = qltest::naiveLogits(a, wa, w), lb = qltest::naiveLogits(b, wb, w);
            for (int j = 0; j < 19; ++j, ++n)
                for (int v = 0; v < a.vocab; ++v) {
                    const double pa = logSoftmaxAt(la[j], v), pb = logSoftmaxAt(lb[j], v);
                    kl += std::exp(pa) * (pa - pb);
                }
        }
        QCOMPARE(r->tokensScored, int64_t(n));
        qInfo("KL %.6f, naive %.6f", r->meanKl, kl / n);
        QVERIFY(r->meanKl > 0.01);
        QVERIFY(std::abs(r->meanKl / (kl / n) - 1) < 1e-4);
    }

    void sharedModelsMatchReference_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("protocol");
        QTest::addColumn<int>("ctx");
        QTest::addColumn<int>("chunks");
        QTest::addColumn<double>("ppl");
        QTest::addColumn<int>("scored");
        QFile f(QStringLiteral(QL_SOURCE_DIR "/tests/data/reference_ppl.json"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const auto j = nlohmann::json::parse(f.readAll().toStdString());
        for (const auto& e : j["entries"]) {
            const std::string name = e["model"].get<std::string>() + " " + e["text"].get<std::string>() + " " +
                                     e["protocol"].get<std::string>();
            QTest::newRow(name.c_str()) << QString::fromStdString(e["model"]) << QString::fromStdString(e["text"])
                                        << QString::fromStdString(e["protocol"]) << e["ctx"].get<int>()
                                        << e["chunks"].get<int>() << e["ppl"].get<double>()
                                        << e["tokens_scored"].get<int>();
        }
    }
    void sharedModelsMatchReference()
    {
        QFETCH(QString, model);
        QFETCH(QString, text);
        QFETCH(QString, protocol);
        QFETCH(int, ctx);
        QFETCH(int, chunks);
        QFETCH(double, ppl);
        QFETCH(int, scored);
        const QString dir = qltest::sharedModel(model), data = qltest::sharedFile(text);
        QL_REQUIRE_SHARED(dir);
        QL_REQUIRE_SHARED(data);
        auto m = ql::Model::open(dir.toStdString());
        QVERIFY2(m.ok(), m.message().c_str());
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY2(tok.ok(), tok.message().c_str());
        const auto ids = (*tok)->encode(readAll(data));
        ql::EvalOptions o;
        o.ctx = ctx;
        o.chunks = chunks;
        o.protocol = protocol == QLatin1String("paper") ? ql::PplProtocol::Paper : ql::PplProtocol::LlamaCpp;
        const int bos = o.protocol == ql::PplProtocol::LlamaCpp && (*tok)->addsBos() ? (*tok)->bosId() : -1;
        QCOMPARE(bos, o.protocol == ql::PplProtocol::LlamaCpp ? 1 : -1);
        auto r = ql::evaluatePerplexity(m->config(), *m, ids, bos, o);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(r->tokensScored, int64_t(scored));
        const double rel = std::abs(r->ppl / ppl - 1);
        qInfo("%s on %s (%s): ppl %.4f, reference %.4f, relative difference %.2e", qPrintable(model), qPrintable(text),
              qPrintable(protocol), r->ppl, ppl, rel);
        QVERIFY2(rel < 2e-3, "perplexity differs from the reference by more than 0.2%");
    }

    void quickEvaluatorEqualsFreshKl_data()
    {
        QTest::addColumn<bool>("bf16");
        QTest::newRow("fp32") << false;
        QTest::newRow("bf16") << true;
    }

    // The quick evaluator restarting from the changed block gives evaluateKl's numbers for a
    // sequence of plans: all quantized, one layer changed further, undone, an earlier change;
    // with fp32 products and with bf16 ones (on both sides).
    void quickEvaluatorEqualsFreshKl()
    {
        QFETCH(bool, bf16);
        if (bf16 && !ql::bf16::supported()) QSKIP("this CPU lacks AVX512-BF16");
        const QString dir = qltest::sharedModel(QStringLiteral("stories260k"));
        const QString data = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        QL_REQUIRE_SHARED(dir);
        QL_REQUIRE_SHARED(data);
        auto m = ql::Model::open(dir.toStdString());
        QVERIFY2(m.ok(), m.message().c_str());
        auto tok = ql::loadTokenizer(dir.toStdString());
        QVERIFY2(tok.ok(), tok.message().c_str());
        const auto ids = (*tok)->encode(readAll(data));
        ql::EvalOptions o;
        o.ctx = 128;
        o.chunks = 6;
        o.runtime.bf16Products = bf16;
        const int bos = (*tok)->bosId();
        // A plan: every linear RTN at `bits`, except the layers `special` gives another width.
        auto plan = [&](int bits, const std::map<std::string, int>& special) {
            auto q = std::make_shared<ql::QuantizedModel>(*m);
            ql::BlockWeights b;
            for (const auto& l : m->linearLayers()) {
                if (!m->block(l.block, b)) return q;
                const auto it = special.find(l.name);
                auto r = std::make_shared<ql::LayerResult>();
                r->dequantized = ql::rtnFakeQuant(b[l.kind], it == special.end() ? bits : it->second, 32);
                q->setLayer({l.name, l.block, l.kind, {}, r});
            }
            return q;
        };
        auto quick = ql::QuickEvaluator::prepare(*m, ids, bos, o);
        QVERIFY2(quick.ok(), quick.message().c_str());
        const std::string down3 = ql::Model::linearName(3, ql::LinearKind::Down);
        const std::string q1 = ql::Model::linearName(1, ql::LinearKind::Q);
        struct Step {
            std::map<std::string, int> special;
            int firstChanged, blocksRun;
        };
        const int layers = m->config().layers;
        const std::vector<Step> steps{{{}, 0, layers},
                                      {{{down3, 2}}, 3, layers - 3},
                                      {{}, 3, layers - 3},
                                      {{{q1, 3}}, 1, layers - 1},
                                      {{{q1, 3}, {down3, 2}}, 3, layers - 3}};
        for (const Step& st : steps) {
            const auto p = plan(4, st.special);
            auto k = quick->measure(*p, st.firstChanged);
            QVERIFY2(k.ok(), k.message().c_str());
            QCOMPARE(quick->blocksRun(), st.blocksRun);
            auto fresh = ql::evaluateKl(m->config(), *m, m->config(), *p, ids, bos, o);
            QVERIFY2(fresh.ok(), fresh.message().c_str());
            QCOMPARE(k->tokensScored, fresh->tokensScored);
            QVERIFY(fresh->meanKl > 1e-4);
            auto rel = [](double a, double b) { return std::abs(a - b) / std::abs(b); };
            QVERIFY2(rel(k->meanKl, fresh->meanKl) < 1e-6, qPrintable(QString::number(k->meanKl - fresh->meanKl)));
            QVERIFY(rel(k->pplModel, fresh->pplModel) < 1e-6);
            QVERIFY(rel(k->pplRef, fresh->pplRef) < 1e-6);
            QCOMPARE(k->top1Agreement, fresh->top1Agreement);
        }
        // The setting takes effect: the other arithmetic gives another (close) KL (where bf16 runs).
        if (!ql::bf16::supported()) return;
        ql::EvalOptions other = o;
        other.runtime.bf16Products = !bf16;
        const auto p = plan(4, {});
        auto a = ql::evaluateKl(m->config(), *m, m->config(), *p, ids, bos, o);
        auto b = ql::evaluateKl(m->config(), *m, m->config(), *p, ids, bos, other);
        QVERIFY(a.ok() && b.ok());
        QVERIFY(a->meanKl != b->meanKl);
        QVERIFY2(std::abs(a->meanKl - b->meanKl) < 0.1 * a->meanKl, qPrintable(QString::number(a->meanKl - b->meanKl)));
    }
};

QTEST_GUILESS_MAIN(TestEvaluator)
#include "tst_evaluator.moc"
