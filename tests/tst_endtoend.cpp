// End-to-end sensitivity: restarting the forward pass at a block, KL with one linear replaced
// (against a float64 naive forward from the embeddings), Spearman rank correlation, held-out
// calibration windows, and the full analysis with its store round trip.
#include "fixturemodel.h"
#include "testpaths.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/analysis/endtoend.h"
#include "quantlens/forward/forward.h"
#include "quantlens/grad/fisher.h"
#include "quantlens/model/model.h"
#include "quantlens/quant/quantizedmodel.h"
#include "quantlens/quant/rtn.h"
#include "quantlens/methods/gptq.h"
#include "reference/naivellama.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

namespace {

// KL(P‖Q) per token in float64 from two sets of logits, averaged.
double naiveMeanKl(const std::vector<qltest::Vec>& ref, const std::vector<qltest::Vec>& model)
{
    double sum = 0;
    for (size_t t = 0; t < ref.size(); ++t) {
        auto logSoftmax = [](const qltest::Vec& z) {
            double m = z[0];
            for (double v : z) m = std::max(m, v);
            double s = 0;
            for (double v : z) s += std::exp(v - m);
            qltest::Vec out(z.size());
            for (size_t i = 0; i < z.size(); ++i) out[i] = z[i] - m - std::log(s);
            return out;
        };
        const qltest::Vec p = logSoftmax(ref[t]), q = logSoftmax(model[t]);
        for (size_t i = 0; i < p.size(); ++i) sum += std::exp(p[i]) * (p[i] - q[i]);
    }
    return sum / double(ref.size());
}

// Float64 logits of every window, one vector per token, in order.
std::vector<qltest::Vec> naiveLogitsAll(const qlfix::ModelSpec& spec, const std::vector<qlfix::Tensor>& tensors,
                                        const std::vector<std::vector<int32_t>>& windows)
{
    std::vector<qltest::Vec> out;
    for (const auto& w : windows) {
        auto r = qltest::naiveLogits(spec, tensors, w);
        out.insert(out.end(), r.begin(), r.end());
    }
    return out;
}

} // namespace

class TestEndToEnd : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    qlfix::ModelSpec m_spec;
    std::string m_dir;

    // Two calibration windows of 32 tokens, hashed "c".
    ql::CalibrationSet twoWindows() const
    {
        ql::CalibrationSet calib;
        calib.spec.samples = 2;
        calib.spec.seqlen = 32;
        calib.windows = qltest::tokenWindows(2, 32, m_spec.vocab, 5);
        calib.sha256 = "c";
        return calib;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_spec.layers = 3;
        m_spec.vocab = 96;
        m_dir = m_tmp.filePath(QStringLiteral("model")).toStdString();
        std::string err;
        QVERIFY2(qlfix::writeModel(m_dir, m_spec, &err), err.c_str());
    }

    void restartMatchesFullRun()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        const auto windows = qltest::tokenWindows(2, 40, m_spec.vocab, 3);
        for (int first = 0; first <= m_spec.layers; ++first) {
            ql::ForwardEngine engine(model->config(), *model);
            std::vector<Eigen::MatrixXf> inputs(windows.size()), full(windows.size()), restarted(windows.size());
            // Block `first`'s input; after the last block, the state the head reads.
            const std::string want = first < m_spec.layers ? "layers." + std::to_string(first) + ".input"
                                                           : "layers." + std::to_string(first - 1) + ".output";
            engine.setObserver([&](const ql::Activation& a) {
                if (a.name == want) inputs[size_t(a.sequence)] = a.x;
            });
            QVERIFY(engine
                        .run(windows,
                             [&](int s, const Eigen::MatrixXf& l) -> ql::Expected<void> {
                                 full[size_t(s)] = l;
                                 return {};
                             })
                        .ok());
            engine.setObserver(nullptr);
            QVERIFY(engine
                        .runFrom(first, inputs,
                                 [&](int s, const Eigen::MatrixXf& l) -> ql::Expected<void> {
                                     restarted[size_t(s)] = l;
                                     return {};
                                 })
                        .ok());
            for (size_t s = 0; s < windows.size(); ++s) {
                const double diff = (full[s] - restarted[s]).cwiseAbs().maxCoeff();
                QVERIFY2(diff <= 1e-5,
                         qPrintable(QStringLiteral("from block %1: max |Δlogit| %2").arg(first).arg(diff)));
            }
        }
        ql::ForwardEngine engine(model->config(), *model);
        std::vector<Eigen::MatrixXf> bad{Eigen::MatrixXf::Zero(5, 3)};
        QVERIFY(QString::fromStdString(engine.runFrom(0, bad, {}).message()).contains("expected 64"));
        QVERIFY(!engine.runFrom(m_spec.layers + 1, bad, {}).ok());
        // Stopping a block at a site publishes that site exactly as a full run does.
        const auto one16 = qltest::tokenWindows(1, 16, m_spec.vocab, 5);
        for (const char* site : {"attn_in", "o_in", "mlp_in", "down_in"}) {
            const std::string name = std::string("layers.1.") + site;
            Eigen::MatrixXf full, stopped;
            std::vector<std::string> seen;
            ql::ForwardEngine e(model->config(), *model);
            e.setObserver([&](const ql::Activation& a) {
                if (a.name == name) full = a.x;
            });
            std::vector<Eigen::MatrixXf> states(1);
            QVERIFY(model->embed(one16[0], states[0]).ok());
            std::vector<Eigen::MatrixXf> copy = states;
            QVERIFY(e.runLayers(0, 2, copy).ok());
            e.setObserver([&](const ql::Activation& a) {
                seen.push_back(a.name);
                if (a.name == name) stopped = a.x;
            });
            ql::ForwardOptions stop;
            stop.stopAfterSite = site;
            QVERIFY(e.runLayers(0, 2, states, stop).ok());
            QCOMPARE(seen.back(), name); // nothing after the site ran
            QVERIFY(stopped == full);
        }
        ql::ForwardOptions wrong;
        wrong.stopAfterSite = "q";
        std::vector<Eigen::MatrixXf> one(1);
        QVERIFY(model->embed(one16[0], one[0]).ok());
        QVERIFY(QString::fromStdString(engine.runLayers(0, 1, one, wrong).message()).contains("not a site"));
    }

    void klMatchesNaiveFromEmbeddings_data()
    {
        QTest::addColumn<int>("block");
        QTest::addColumn<QString>("linear");
        QTest::addColumn<int>("bits");
        QTest::newRow("block 0 q_proj 2 bits") << 0 << "self_attn.q_proj" << 2;
        QTest::newRow("block 1 down_proj 3 bits") << 1 << "mlp.down_proj" << 3;
        QTest::newRow("block 2 v_proj 4 bits") << 2 << "self_attn.v_proj" << 4;
        QTest::newRow("block 2 up_proj 8 bits") << 2 << "mlp.up_proj" << 8;
    }

    void klMatchesNaiveFromEmbeddings()
    {
        QFETCH(int, block);
        QFETCH(QString, linear);
        QFETCH(int, bits);
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        const auto windows = qltest::tokenWindows(2, 24, m_spec.vocab, 11);
        auto e2e = ql::EndToEndSensitivity::prepare(*model, windows);
        QVERIFY2(e2e.ok(), e2e.message().c_str());
        QCOMPARE(e2e->tokens(), int64_t(48));

        const std::string name = "model.layers." + std::to_string(block) + "." + linear.toStdString();
        const ql::LinearLayer* layer = nullptr;
        for (const auto& l : model->linearLayers())
            if (l.name == name) layer = &l;
        QVERIFY(layer);
        ql::BlockWeights bw;
        QVERIFY(model->block(block, bw).ok());
        const ql::RowMatrix q = ql::rtnFakeQuant(bw[layer->kind], bits, 16);
        auto kl = e2e->klWithLinear(block, layer->kind, q);
        QVERIFY2(kl.ok(), kl.message().c_str());

        // Reference: float64 forward from the embeddings, with and without the replaced weight.
        auto tensors = qlfix::makeWeights(m_spec);
        const std::vector<qltest::Vec> ref = naiveLogitsAll(m_spec, tensors, windows);
        for (auto& t : tensors)
            if (t.name == name + ".weight") t.data.assign(q.data(), q.data() + q.size());
        const std::vector<qltest::Vec> mod = naiveLogitsAll(m_spec, tensors, windows);
        const double expect = naiveMeanKl(ref, mod);
        QVERIFY2(expect > 0, "the replaced weight must change the output");
        QVERIFY2(std::abs(*kl - expect) <= 1e-3 * expect + 1e-9,
                 qPrintable(QStringLiteral("KL %1, float64 reference %2").arg(*kl, 0, 'g', 8).arg(expect, 0, 'g', 8)));
        // The float weight itself gives (numerically) zero.
        const ql::RowMatrix same = bw[layer->kind];
        auto zero = e2e->klWithLinear(block, layer->kind, same);
        QVERIFY(zero.ok());
        QVERIFY2(*zero < 1e-9, qPrintable(QString::number(*zero)));
    }

    // In a context (every linear at RTN 3 bits), replacing one layer gives the KL of the context
    // with that layer changed, against a float64 forward of exactly those weights; the context's
    // own KL is the same measure with the layer left as the context has it.
    void klInContextMatchesNaive()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        const auto windows = qltest::tokenWindows(2, 24, m_spec.vocab, 13);
        ql::QuantizedModel context(*model);
        std::map<std::string, ql::RowMatrix> contextWeights;
        for (const auto& l : model->linearLayers()) {
            ql::BlockWeights bw;
            QVERIFY(model->block(l.block, bw).ok());
            auto r = std::make_shared<ql::LayerResult>();
            r->dequantized = ql::rtnFakeQuant(bw[l.kind], 3, 16);
            contextWeights[l.name] = r->dequantized;
            context.setLayer({l.name, l.block, l.kind, {}, r});
        }
        auto e2e = ql::EndToEndSensitivity::prepare(*model, windows, 0, nullptr, &context);
        QVERIFY2(e2e.ok(), e2e.message().c_str());
        const std::string name = "model.layers.1.mlp.gate_proj";
        const ql::LinearLayer* layer = nullptr;
        for (const auto& l : model->linearLayers())
            if (l.name == name) layer = &l;
        QVERIFY(layer);
        ql::BlockWeights bw;
        QVERIFY(model->block(1, bw).ok());
        const ql::RowMatrix q = ql::rtnFakeQuant(bw[layer->kind], 2, 16);
        auto kl = e2e->klWithLinear(1, layer->kind, q);
        QVERIFY2(kl.ok(), kl.message().c_str());

        auto tensors = qlfix::makeWeights(m_spec);
        const std::vector<qltest::Vec> ref = naiveLogitsAll(m_spec, tensors, windows);
        for (auto& t : tensors) {
            const std::string n = t.name.size() > 7 ? t.name.substr(0, t.name.size() - 7) : "";
            if (auto it = contextWeights.find(n); it != contextWeights.end())
                t.data.assign(it->second.data(), it->second.data() + it->second.size());
        }
        const std::vector<qltest::Vec> ctx = naiveLogitsAll(m_spec, tensors, windows);
        for (auto& t : tensors)
            if (t.name == name + ".weight") t.data.assign(q.data(), q.data() + q.size());
        const std::vector<qltest::Vec> mod = naiveLogitsAll(m_spec, tensors, windows);
        const double expect = naiveMeanKl(ref, mod), expectContext = naiveMeanKl(ref, ctx);
        QVERIFY2(expect > expectContext && expectContext > 0, qPrintable(QString::number(expectContext)));
        QVERIFY2(std::abs(*kl - expect) <= 1e-3 * expect,
                 qPrintable(QStringLiteral("KL %1, float64 reference %2").arg(*kl).arg(expect)));
        QVERIFY2(
            std::abs(e2e->contextKl() - expectContext) <= 1e-3 * expectContext,
            qPrintable(QStringLiteral("context KL %1, float64 reference %2").arg(e2e->contextKl()).arg(expectContext)));
    }

    void spearmanKnownValues()
    {
        // scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]).statistic = 0.8207826816681233
        QVERIFY(std::abs(ql::spearman({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}) - 0.8207826816681233) < 1e-12);
        QCOMPARE(ql::spearman({1, 2, 3}, {10, 200, 3000}), 1.0);
        QCOMPARE(ql::spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
        // Ties average their ranks: ranks (1.5, 1.5, 3, 4) vs (1, 2, 3, 4) -> 0.9486832980505138.
        QVERIFY(std::abs(ql::spearman({7, 7, 8, 9}, {1, 2, 3, 4}) - 0.9486832980505138) < 1e-12);
        QVERIFY(std::isnan(ql::spearman({1, 1, 1}, {1, 2, 3})));
        QVERIFY(std::isnan(ql::spearman({1}, {2})));
    }

    void fullAnalysisAndStore()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        ql::CalibrationSet calib = twoWindows();
        ql::AnalyzeOptions opt;
        opt.sensitivity = ql::SensitivityMode::Full;
        opt.groupSize = 16;
        opt.modelSha256 = "m";
        opt.keepHessians = true; // the output Fisher's measure is recomputed from them below
        QVERIFY(QString::fromStdString(ql::analyze(*model, calib, opt).message()).contains("held-out"));
        calib.heldOutWindows = qltest::tokenWindows(2, 32, m_spec.vocab, 9);
        calib.heldOutSha256 = "h";
        auto r = ql::analyze(*model, calib, opt);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(r->sensitivity.size(), size_t(7 * m_spec.layers));
        auto e2e = ql::EndToEndSensitivity::prepare(*model, calib.heldOutWindows);
        QVERIFY(e2e.ok());
        ql::BlockWeights bw;
        for (const auto& ls : r->sensitivity) {
            QCOMPARE(ls.kl.size(), opt.bits.size());
            QVERIFY2(ls.kl.front() > ls.kl.back(), ls.name.c_str()); // 2 bits hurt more than 8
        }
        // One entry recomputed directly.
        const auto& l = model->linearLayers()[9];
        QVERIFY(model->block(l.block, bw).ok());
        auto kl3 = e2e->klWithLinear(l.block, l.kind, ql::rtnFakeQuant(bw[l.kind], 3, 16));
        QVERIFY(kl3.ok());
        const auto& ls = *std::find_if(r->sensitivity.begin(), r->sensitivity.end(),
                                       [&](auto& s) { return s.name == l.name; });
        QCOMPARE(ls.kl[1], *kl3);
        // Full includes the Fisher measure: ½·Σ F·ΔW² of the same RTN weights, F from the
        // calibration windows (DiagonalFisher is checked against finite differences in tst_grad).
        auto fisher = ql::DiagonalFisher::compute(model->config(), *model, calib.windows);
        QVERIFY(fisher.ok());
        const ql::RowMatrix w3 = ql::rtnFakeQuant(bw[l.kind], 3, 16);
        const ql::RowMatrix& f = fisher->of(l.block, l.kind);
        double expected = 0;
        for (Eigen::Index i = 0; i < f.size(); ++i) {
            const double d = double(w3.data()[i]) - double(bw[l.kind].data()[i]);
            expected += 0.5 * double(f.data()[i]) * d * d;
        }
        QCOMPARE(ls.fisher.size(), opt.bits.size());
        QVERIFY2(std::abs(ls.fisher[1] - expected) <= 1e-6 * expected,
                 qPrintable(QString("%1 against %2").arg(ls.fisher[1]).arg(expected)));
        QVERIFY(ls.fisher.front() > ls.fisher.back()); // 2 bits hurt more than 8
        // The output Fisher's measure, ½·Σ_i F_out,i·(ΔW H ΔWᵀ)_ii / n, in double from the site's
        // kept Hessian.
        const auto site = std::find_if(r->sites.begin(), r->sites.end(), [&](auto& s) { return s.name == l.site; });
        QVERIFY(site != r->sites.end() && site->hessian.rows() == bw[l.kind].cols());
        const Eigen::MatrixXd dw = (w3 - bw[l.kind]).cast<double>();
        const Eigen::VectorXd rowErr = (dw * site->hessian).cwiseProduct(dw).rowwise().sum() / double(site->nTokens);
        const double expectedOut = 0.5 * fisher->outputsOf(l.block, l.kind).cast<double>().dot(rowErr);
        QCOMPARE(ls.fisherOut.size(), opt.bits.size());
        QVERIFY2(std::abs(ls.fisherOut[1] - expectedOut) <= 1e-4 * expectedOut,
                 qPrintable(QString("%1 against %2").arg(ls.fisherOut[1]).arg(expectedOut)));
        // Correlations are those of the stored columns.
        const auto& e = r->endToEnd;
        QCOMPARE(e.windows, 2);
        QCOMPARE(e.tokens, int64_t(64));
        QCOMPARE(e.bits, std::vector<int32_t>({2, 3, 4, 8}));
        for (size_t i = 0; i < e.bits.size(); ++i) {
            std::vector<double> proxy, rel, kl, fi, fo;
            for (const auto& s : r->sensitivity) {
                proxy.push_back(s.proxy[i]);
                rel.push_back(s.relMse[i]);
                kl.push_back(s.kl[i]);
                fi.push_back(s.fisher[i]);
                fo.push_back(s.fisherOut[i]);
            }
            QCOMPARE(e.spearmanProxyKl[i], ql::spearman(proxy, kl));
            QCOMPARE(e.spearmanRelMseKl[i], ql::spearman(rel, kl));
            QCOMPARE(e.spearmanFisherKl[i], ql::spearman(fi, kl));
            QCOMPARE(e.spearmanFisherOutKl[i], ql::spearman(fo, kl));
            qInfo("%d bits: spearman proxy %.3f rel_mse %.3f fisher %.3f output fisher %.3f", e.bits[i],
                  e.spearmanProxyKl[i], e.spearmanRelMseKl[i], e.spearmanFisherKl[i], e.spearmanFisherOutKl[i]);
        }
        const std::string path = m_tmp.filePath(QStringLiteral("full.h5")).toStdString();
        QVERIFY(ql::AnalysisStore::write(path, *r).ok());
        auto back = ql::AnalysisStore::read(path);
        QVERIFY2(back.ok(), back.message().c_str());
        QCOMPARE(back->endToEnd.heldOutSha256, std::string("h"));
        QCOMPARE(back->endToEnd.spearmanProxyKl, e.spearmanProxyKl);
        QCOMPARE(back->sensitivity[4].kl, r->sensitivity[4].kl);
        QCOMPARE(back->sensitivity[4].fisher, r->sensitivity[4].fisher);
        QCOMPARE(back->sensitivity[4].fisherOut, r->sensitivity[4].fisherOut);
        QCOMPARE(back->endToEnd.spearmanFisherOutKl, e.spearmanFisherOutKl);
        QCOMPARE(back->endToEnd.spearmanFisherKl, e.spearmanFisherKl);
        // A store without the Fisher measure is not reused for a request that needs it.
        ql::AnalysisResult proxyOnly = *r;
        for (auto& s : proxyOnly.sensitivity) s.fisher.clear();
        QCOMPARE(QString::fromStdString(ql::AnalysisStore::missing(
                     proxyOnly, ql::AnalysisRequest{"m", "c", ql::SensitivityMode::Fisher, "", {}, ""})),
                 QStringLiteral("it holds no Fisher sensitivity"));
    }

    // GPTQ and per-row options: every measure of an option is that of the weights GPTQ gives
    // from the site's Hessian, recomputed here in double; the store keeps methods and groups.
    void gptqOptionsMeasuredAndStored()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        ql::CalibrationSet calib = twoWindows();
        calib.heldOutWindows = qltest::tokenWindows(2, 32, m_spec.vocab, 9);
        calib.heldOutSha256 = "h";
        ql::AnalyzeOptions opt;
        opt.sensitivity = ql::SensitivityMode::Full;
        opt.methods = {"rtn", "gptq"};
        opt.groups = {16, 0};
        opt.bits = {3, 4};
        opt.keepHessians = true;
        opt.modelSha256 = "m";
        const auto options = ql::sensitivityOptions(opt);
        QCOMPARE(options.size(), size_t(8));
        QCOMPARE(ql::sensitivityOptionLabel(options[5]), std::string("gptq w4 g16"));
        QCOMPARE(ql::sensitivityOptionLabel(options[7]), std::string("gptq w4 row"));
        auto r = ql::analyze(*model, calib, opt);
        QVERIFY2(r.ok(), r.message().c_str());
        auto e2e = ql::EndToEndSensitivity::prepare(*model, calib.heldOutWindows);
        QVERIFY(e2e.ok());
        const auto& l = model->linearLayers()[10]; // block 1
        ql::BlockWeights bw;
        QVERIFY(model->block(l.block, bw).ok());
        const ql::RowMatrix w = bw[l.kind];
        const auto site = std::find_if(r->sites.begin(), r->sites.end(), [&](auto& s) { return s.name == l.site; });
        QVERIFY(site != r->sites.end());
        const auto& ls = *std::find_if(r->sensitivity.begin(), r->sensitivity.end(),
                                       [&](auto& s) { return s.name == l.name; });
        QCOMPARE(ls.methods.size(), options.size());
        for (size_t k = 0; k < options.size(); ++k) {
            QVERIFY(ls.option(k) == options[k]);
            ql::RowMatrix q;
            if (options[k].method == "gptq") {
                ql::FormatSpec f;
                f.format = options[k].bits == 3 ? "int3_asym" : "int4_asym";
                f.granularity = options[k].group ? ql::Granularity::PerGroup : ql::Granularity::PerChannel;
                f.groupSize = options[k].group;
                auto g = ql::gptqQuantize(w, site->hessian, f);
                QVERIFY2(g.ok(), g.message().c_str());
                q = g->dequantized;
            } else {
                q = ql::rtnFakeQuant(w, options[k].bits, options[k].group);
            }
            const Eigen::MatrixXd dw = (q - w).cast<double>();
            const double proxy = (dw * site->hessian * dw.transpose()).trace() / double(site->nTokens);
            QVERIFY2(std::abs(ls.proxy[k] - proxy) <= 1e-4 * proxy, std::to_string(k).c_str());
            QVERIFY(std::abs(ls.weightSq[k] - dw.squaredNorm()) <= 1e-6 * dw.squaredNorm());
            auto kl = e2e->klWithLinear(l.block, l.kind, q);
            QVERIFY(kl.ok());
            QCOMPARE(ls.kl[k], *kl);
        }
        // GPTQ beats round to nearest on the objective it minimises, per option.
        for (size_t k = 0; k < 4; ++k) QVERIFY2(ls.proxy[k + 4] < ls.proxy[k], std::to_string(k).c_str());
        const auto& e = r->endToEnd;
        QCOMPARE(e.options.size(), options.size());
        QCOMPARE(e.options[6], std::string("gptq w3 row"));
        for (size_t i = 0; i < options.size(); ++i) {
            std::vector<double> hawq, kl;
            for (const auto& s : r->sensitivity) {
                const auto& layers = model->linearLayers();
                const auto lay = std::find_if(layers.begin(), layers.end(), [&](auto& x) { return x.name == s.name; });
                const auto st = std::find_if(r->sites.begin(), r->sites.end(),
                                             [&](auto& x) { return x.name == lay->site; });
                const double meanSquare =
                    (st->var.cast<double>().array() + st->mean.cast<double>().array().square()).mean();
                hawq.push_back(meanSquare * s.weightSq[i]);
                kl.push_back(s.kl[i]);
            }
            QCOMPARE(e.spearmanHawqKl[i], ql::spearman(hawq, kl));
        }
        const std::string path = m_tmp.filePath(QStringLiteral("options.h5")).toStdString();
        QVERIFY(ql::AnalysisStore::write(path, *r).ok());
        auto back = ql::AnalysisStore::read(path);
        QVERIFY2(back.ok(), back.message().c_str());
        QCOMPARE(back->sensitivity[10].methods, r->sensitivity[10].methods);
        QCOMPARE(back->sensitivity[10].groups, r->sensitivity[10].groups);
        QCOMPARE(back->sensitivity[10].weightSq, r->sensitivity[10].weightSq);
        QCOMPARE(back->endToEnd.options, e.options);
        QCOMPARE(back->endToEnd.spearmanHawqKl, e.spearmanHawqKl);
        ql::AnalysisRequest request{"m", "c", ql::SensitivityMode::Full, "h", options};
        QCOMPARE(ql::AnalysisStore::missing(*back, request), std::string());
        request.options.pop_back();
        QVERIFY(QString::fromStdString(ql::AnalysisStore::missing(*back, request)).contains("other options"));
    }
};

QTEST_GUILESS_MAIN(TestEndToEnd)
#include "tst_endtoend.moc"
