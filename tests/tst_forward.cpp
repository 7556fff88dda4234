// Forward pass against independent computations:
//  - a float64 naive implementation (tests/reference/naivellama.h), over the fixture generator's own weight
//    values (not read back through the loader), for several shapes and architectures;
//  - logits of the two shared trained models on a short sequence, computed by
//    tests/reference/numpy_reference.py (float64 numpy, its own safetensors parser):
//      /usr/bin/python3 tests/reference/numpy_reference.py MODEL --logits 1,<first 12 golden ids>
#include "fixturemodel.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/model.h"
#include "testpaths.h"
#include "reference/naivellama.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <omp.h>

using qltest::naiveLogits;

class TestForward : public QObject {
    Q_OBJECT

private slots:
    void matchesNaiveReference_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<bool>("tied");
        QTest::addColumn<bool>("bias");
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("window");
        QTest::newRow("llama gqa tied") << "llama" << 4 << 2 << true << false << "F32" << 37 << 0;
        QTest::newRow("llama mha untied bias") << "llama" << 4 << 4 << false << true << "F32" << 20 << 0;
        QTest::newRow("llama mqa bf16") << "llama" << 8 << 1 << true << false << "BF16" << 9 << 0;
        QTest::newRow("qwen2 qkv bias") << "qwen2" << 4 << 2 << false << false << "F32" << 25 << 0;
        QTest::newRow("over query block (300 tokens)") << "llama" << 4 << 2 << true << false << "F32" << 300 << 0;
        QTest::newRow("mistral sliding window") << "mistral" << 4 << 2 << true << false << "F32" << 40 << 16;
    }
    void matchesNaiveReference()
    {
        QFETCH(QString, arch);
        QFETCH(int, heads);
        QFETCH(int, kvHeads);
        QFETCH(bool, tied);
        QFETCH(bool, bias);
        QFETCH(QString, dtype);
        QFETCH(int, tokens);
        QFETCH(int, window);
        qlfix::ModelSpec s;
        s.arch = arch.toStdString();
        s.heads = heads;
        s.kvHeads = kvHeads;
        s.tieEmbeddings = tied;
        s.qkvBias = bias;
        s.dtype = dtype.toStdString();
        s.weightStd = 0.15f;
        s.seed = 7;
        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        QVERIFY(qlfix::writeModel(dir, s));
        if (window > 0) { // add sliding_window to config.json
            auto cfg = qlfix::configJson(s);
            cfg.insert(cfg.rfind('}'), ", \"sliding_window\": " + std::to_string(window));
            std::ofstream(dir + "/config.json") << cfg;
        }
        auto m = ql::Model::open(dir);
        QVERIFY2(m.ok(), m.message().c_str());
        std::vector<int32_t> ids(tokens);
        for (int i = 0; i < tokens; ++i) ids[i] = (i * 37 + 11) % s.vocab;
        const auto ref = naiveLogits(s, qlfix::makeWeights(s), ids, window);

        ql::ForwardEngine engine(m->config(), *m);
        int events = 0;
        std::set<std::string> names;
        engine.setObserver([&](const ql::Activation& a) {
            ++events;
            names.insert(a.name);
            QVERIFY(a.x.cols() == tokens);
        });
        Eigen::MatrixXf got;
        auto r = engine.run({ids}, [&](int, const Eigen::MatrixXf& l) -> ql::Expected<void> {
            got = l;
            return {};
        });
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(got.cols(), Eigen::Index(tokens));
        double worst = 0;
        for (int t = 0; t < tokens; ++t)
            for (int v = 0; v < s.vocab; ++v)
                worst = std::max(worst, std::abs(got(v, t) - ref[t][v]) / (1.0 + std::abs(ref[t][v])));
        qInfo("max |logit error| / (1 + |logit|) = %.3g", worst);
        // fp32 accumulation over hidden, ffn and up to 300 attended tokens stays within 5e-5.
        QVERIFY2(worst < 5e-5, qPrintable(QString::number(worst)));
        QCOMPARE(events, s.layers * 13 + 1);
        QVERIFY(names.count("layers.1.down_in") && names.count("layers.0.attn_in") && names.count("final_norm"));
    }

    void batchAndLogitsFromAgree()
    {
        qlfix::ModelSpec s;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        std::vector<int32_t> a(30), b(17);
        for (int i = 0; i < 30; ++i) a[i] = (i * 13) % s.vocab;
        for (int i = 0; i < 17; ++i) b[i] = (i * 5 + 3) % s.vocab;
        ql::ForwardEngine engine(m->config(), *m);
        std::vector<Eigen::MatrixXf> single(2), batched(2);
        auto sinkTo = [](std::vector<Eigen::MatrixXf>& v, int off) {
            return [&v, off](int s, const Eigen::MatrixXf& l) -> ql::Expected<void> {
                v[s + off] = l;
                return {};
            };
        };
        QVERIFY(engine.run({a}, sinkTo(single, 0)).ok());
        QVERIFY(engine.run({b}, sinkTo(single, 1)).ok());
        QVERIFY(engine.run({a, b}, sinkTo(batched, 0)).ok());
        QVERIFY(single[0].isApprox(batched[0], 1e-6f));
        QVERIFY(single[1].isApprox(batched[1], 1e-6f));
        ql::ForwardOptions fo;
        fo.logitsFrom = 20;
        Eigen::MatrixXf tail;
        QVERIFY(engine
                    .run(
                        {a},
                        [&](int, const Eigen::MatrixXf& l) -> ql::Expected<void> {
                            tail = l;
                            return {};
                        },
                        fo)
                    .ok());
        QCOMPARE(tail.cols(), Eigen::Index(10));
        QVERIFY(tail.isApprox(single[0].rightCols(10), 1e-6f));
    }

    void blockPartsEqualTheWholeBlock()
    {
        // A block run in parts (input → each site in turn → end) gives the same output and the
        // same site values as one run of the block; a site behind the checkpoint is refused.
        qlfix::ModelSpec s;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        std::vector<int32_t> a(23), b(9);
        for (int i = 0; i < 23; ++i) a[i] = (i * 7 + 1) % s.vocab;
        for (int i = 0; i < 9; ++i) b[i] = (i * 11 + 2) % s.vocab;
        std::vector<Eigen::MatrixXf> whole(2);
        QVERIFY(m->embed(a, whole[0]).ok() && m->embed(b, whole[1]).ok());
        std::vector<Eigen::MatrixXf> parts = whole;
        ql::ForwardEngine engine(m->config(), *m);
        std::map<std::string, Eigen::MatrixXf> seen; // site of sequence 1 in the whole run
        engine.setObserver([&](const ql::Activation& x) {
            if (x.sequence == 1) seen[x.name] = x.x;
        });
        QVERIFY(engine.runLayers(1, 2, whole).ok());
        engine.setObserver(nullptr);
        ql::BlockCheckpoint cp;
        for (const char* site : {"attn_in", "o_in", "mlp_in", "down_in"}) {
            ql::ForwardOptions fo;
            fo.stopAfterSite = site;
            QVERIFY(engine.runBlockPart(1, parts, cp, fo).ok());
            QCOMPARE(cp.layer, 1);
            QCOMPARE(cp.values[1], seen[std::string("layers.1.") + site]);
        }
        ql::ForwardOptions back;
        back.stopAfterSite = "o_in";
        QVERIFY(!engine.runBlockPart(1, parts, cp, back).ok());
        QVERIFY(engine.runBlockPart(1, parts, cp).ok());
        QCOMPARE(cp.layer, -1);
        QCOMPARE(parts[0], whole[0]); // the same operations in the same order: bit-identical
        QCOMPARE(parts[1], whole[1]);
    }

    void cancelStopsTheRun()
    {
        struct Cancel : ql::Feedback {
            bool isCanceled() const override { return true; }
        } cancel;
        qlfix::ModelSpec s;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        ql::ForwardEngine engine(m->config(), *m);
        auto r = engine.run({{1, 2, 3}}, {}, {}, &cancel);
        QVERIFY(!r.ok());
        QVERIFY(QString::fromStdString(r.message()).contains("canceled"));
        auto bad = engine.run({{1, 9999}}, {});
        QVERIFY(!bad.ok());
        QVERIFY2(QString::fromStdString(bad.message()).contains("token id 9999"), bad.message().c_str());
    }

    // A run's thread count holds for the thread that runs it, for the forward pass and Eigen's
    // products alike, and is given back afterwards: two jobs on two threads keep their own.
    void threadCountsArePerJob()
    {
        qlfix::ModelSpec s;
        QTemporaryDir tmp;
        QVERIFY(qlfix::writeModel(tmp.path().toStdString(), s));
        auto m = ql::Model::open(tmp.path().toStdString());
        QVERIFY(m.ok());
        omp_set_num_threads(2);
        const int mainEigen = Eigen::nbThreads();
        QCOMPARE(mainEigen, 2);
        struct Seen {
            int eigen = -1, omp = -1, after = -1;
            bool ok = false;
        };
        auto job = [&](int threads, Seen& seen) {
            omp_set_num_threads(3); // this thread's own setting before the job
            ql::ForwardEngine engine(m->config(), *m);
            engine.setObserver([&](const ql::Activation&) {
                seen.eigen = Eigen::nbThreads();
                seen.omp = omp_get_max_threads();
            });
            ql::ForwardOptions o;
            o.threads = threads;
            seen.ok = engine.run({{1, 2, 3, 4}}, {}, o).ok();
            seen.after = omp_get_max_threads();
        };
        Seen one, two;
        std::thread a(job, 1, std::ref(one)), b(job, 2, std::ref(two));
        a.join();
        b.join();
        QVERIFY(one.ok && two.ok);
        QCOMPARE(one.eigen, 1);
        QCOMPARE(one.omp, 1);
        QCOMPARE(two.eigen, 2);
        QCOMPARE(two.omp, 2);
        QCOMPARE(one.after, 3); // given back
        QCOMPARE(two.after, 3);
        QCOMPARE(Eigen::nbThreads(), mainEigen); // the main thread's setting is untouched
        QCOMPARE(omp_get_max_threads(), 2);
    }

    void sharedModelsMatchNumpy_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QVector<int>>("ids");
        QTest::addColumn<QVector<double>>("rowMax");
        QTest::addColumn<QVector<double>>("rowLse");
        QTest::addColumn<QVector<double>>("last8");
        QTest::newRow("stories260k")
            << "stories260k" << QVector<int>{1, 410, 13, 410, 64, 410, 461, 414, 430, 285, 413, 368, 277}
            << QVector<double>{17.02351519984081,  10.973900281337873, 9.821307176420499,  10.3251506716071,
                               11.947028895911625, 11.93775627104809,  12.253904203902334, 12.612112757881595,
                               13.162400925069756, 7.904305245775972,  10.456411863487528, 12.023731609036462,
                               12.798757619206857}
            << QVector<double>{17.267258628447667, 11.989168311931838, 11.309865360204093, 11.515540002028686,
                               13.935964912324149, 12.615192122830319, 13.463541745631415, 13.141953797167172,
                               13.30015330815037,  10.46109343980182,  11.699306648063086, 13.206356153540572,
                               13.313126265610732}
            << QVector<double>{-14.722845641047211, -0.3884040670469163, -14.72242577962667,  -14.723298264590882,
                               -14.72214860866083,  -14.722373813456251, -14.722287873211384, -14.722875838790822};
        QTest::newRow("tinystories-656k")
            << "tinystories-656k" << QVector<int>{1, 80, 80, 3, 80, 0, 80, 43, 492, 91, 86, 27, 99}
            << QVector<double>{14.78167005758851,  11.51722744432453,  12.998624346813006, 11.388836622749974,
                               7.575344874797965,  10.677067551226681, 8.75979375043271,   12.610597108068047,
                               12.281103556436564, 10.28335146123031,  8.615604447211261,  12.88961044612355,
                               10.83856959115159}
            << QVector<double>{15.017095044975115, 11.900233347937544, 13.12218016562846,  12.768954598944228,
                               10.388711995658982, 11.877702237871313, 10.860857269094538, 13.57452956863694,
                               13.380053343683697, 11.550792771134237, 10.350562636021355, 14.229614948920783,
                               11.824187193493351}
            << QVector<double>{-1.9988670075094037, -4.194777222334223, -9.128936939782136, 0.27660339916772375,
                               -0.5067809565776112, -1.072415007581635, -4.213028474693536, 6.095832770512677};
    }
    void sharedModelsMatchNumpy()
    {
        QFETCH(QString, model);
        QFETCH(QVector<int>, ids);
        QFETCH(QVector<double>, rowMax);
        QFETCH(QVector<double>, rowLse);
        QFETCH(QVector<double>, last8);
        const QString dir = qltest::sharedModel(model);
        QL_REQUIRE_SHARED(dir);
        auto m = ql::Model::open(dir.toStdString());
        QVERIFY2(m.ok(), m.message().c_str());
        ql::ForwardEngine engine(m->config(), *m);
        Eigen::MatrixXf l;
        QVERIFY(engine
                    .run({std::vector<int32_t>(ids.begin(), ids.end())},
                         [&](int, const Eigen::MatrixXf& x) -> ql::Expected<void> {
                             l = x;
                             return {};
                         })
                    .ok());
        // fp32 against float64: logits of magnitude ~15 agree to ~1e-4 relative.
        const double tol = 2e-3;
        for (int t = 0; t < ids.size(); ++t) {
            const double mx = l.col(t).maxCoeff();
            const double lse = mx + std::log((l.col(t).array() - float(mx)).exp().cast<double>().sum());
            QVERIFY2(std::abs(mx - rowMax[t]) < tol,
                     qPrintable(QStringLiteral("pos %1 max %2 vs %3").arg(t).arg(mx).arg(rowMax[t])));
            QVERIFY2(std::abs(lse - rowLse[t]) < tol,
                     qPrintable(QStringLiteral("pos %1 lse %2 vs %3").arg(t).arg(lse).arg(rowLse[t])));
        }
        for (int v = 0; v < 8; ++v) QVERIFY(std::abs(l(v, ids.size() - 1) - last8[v]) < tol);
    }
};

QTEST_GUILESS_MAIN(TestForward)
#include "tst_forward.moc"
