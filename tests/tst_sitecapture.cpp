// captureSite: the activations entering a site for one window, against a float64 naive forward
// pass that records the inputs of every linear (itself checked against the shared naive
// reference's logits), against the full forward pass, and its errors.
#include "fixturemodel.h"
#include "quantlens/forward.h"
#include "quantlens/model.h"
#include "quantlens/sitecapture.h"
#include "reference/naivellama.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <map>
#include <optional>

namespace {

using qltest::Vec;

// The inputs of the linears of every block, per token, from a float64 forward pass written
// as plainly as qltest::naiveLogits (which it repeats, recording more), plus its logits.
struct NaiveRun {
    std::map<std::string, std::vector<Vec>> sites; ///< "layers.i.attn_in" -> [token][channel]
    std::vector<Vec> logits;
};

NaiveRun naiveSites(const qlfix::ModelSpec& s, const std::vector<qlfix::Tensor>& tensors, const std::vector<int32_t>& ids)
{
    std::map<std::string, const qlfix::Tensor*> W;
    for (const auto& t : tensors) W[t.name] = &t;
    auto val = [&](const std::string& n, size_t i) { return double(W.at(n)->data[i]); }; // F32 fixture
    auto matvec = [&](const std::string& n, const Vec& x, int out) {
        Vec y(out, 0.0);
        for (int o = 0; o < out; ++o)
            for (size_t i = 0; i < x.size(); ++i) y[o] += val(n + ".weight", o * x.size() + i) * x[i];
        if (W.count(n + ".bias"))
            for (int o = 0; o < out; ++o) y[o] += val(n + ".bias", o);
        return y;
    };
    auto norm = [&](const Vec& x, const std::string& n) {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double r = 1.0 / std::sqrt(ss / double(x.size()) + s.rmsEps);
        Vec y(x.size());
        for (size_t i = 0; i < x.size(); ++i) y[i] = val(n, i) * x[i] * r;
        return y;
    };
    const int T = int(ids.size()), H = s.hidden, hd = s.hidden / s.heads, half = hd / 2;
    auto rope = [&](Vec& v, int heads, int pos) {
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < half; ++i) {
                const double f = std::pow(s.ropeTheta, -2.0 * i / hd) * pos;
                const double a = v[h * hd + i], b = v[h * hd + i + half];
                v[h * hd + i] = a * std::cos(f) - b * std::sin(f);
                v[h * hd + i + half] = b * std::cos(f) + a * std::sin(f);
            }
    };
    NaiveRun run;
    std::vector<Vec> x(T, Vec(H));
    for (int t = 0; t < T; ++t)
        for (int i = 0; i < H; ++i) x[t][i] = val("model.embed_tokens.weight", size_t(ids[t]) * H + i);
    for (int L = 0; L < s.layers; ++L) {
        const std::string p = "model.layers." + std::to_string(L) + ".", site = "layers." + std::to_string(L) + ".";
        auto& attnIn = run.sites[site + "attn_in"];
        auto& oIn = run.sites[site + "o_in"];
        auto& mlpIn = run.sites[site + "mlp_in"];
        auto& downIn = run.sites[site + "down_in"];
        std::vector<Vec> q(T), k(T), v(T);
        for (int t = 0; t < T; ++t) {
            attnIn.push_back(norm(x[t], p + "input_layernorm.weight"));
            q[t] = matvec(p + "self_attn.q_proj", attnIn[t], s.heads * hd);
            k[t] = matvec(p + "self_attn.k_proj", attnIn[t], s.kvHeads * hd);
            v[t] = matvec(p + "self_attn.v_proj", attnIn[t], s.kvHeads * hd);
            rope(q[t], s.heads, t);
            rope(k[t], s.kvHeads, t);
        }
        for (int t = 0; t < T; ++t) {
            Vec attn(s.heads * hd, 0.0);
            for (int h = 0; h < s.heads; ++h) {
                const int kh = h / (s.heads / s.kvHeads);
                Vec sc(t + 1);
                double mx = -1e300, sum = 0;
                for (int u = 0; u <= t; ++u) {
                    double d = 0;
                    for (int i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[u][kh * hd + i];
                    sc[u] = d / std::sqrt(double(hd));
                    mx = std::max(mx, sc[u]);
                }
                for (int u = 0; u <= t; ++u) sum += std::exp(sc[u] - mx);
                for (int u = 0; u <= t; ++u)
                    for (int i = 0; i < hd; ++i) attn[h * hd + i] += std::exp(sc[u] - mx) / sum * v[u][kh * hd + i];
            }
            oIn.push_back(attn);
            const Vec o = matvec(p + "self_attn.o_proj", attn, H);
            for (int i = 0; i < H; ++i) x[t][i] += o[i];
            mlpIn.push_back(norm(x[t], p + "post_attention_layernorm.weight"));
            const Vec g = matvec(p + "mlp.gate_proj", mlpIn[t], s.intermediate);
            const Vec u = matvec(p + "mlp.up_proj", mlpIn[t], s.intermediate);
            Vec a(s.intermediate);
            for (int i = 0; i < s.intermediate; ++i) a[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
            downIn.push_back(a);
            const Vec d = matvec(p + "mlp.down_proj", a, H);
            for (int i = 0; i < H; ++i) x[t][i] += d[i];
        }
    }
    const std::string head = s.tieEmbeddings ? "model.embed_tokens" : "lm_head";
    for (int t = 0; t < T; ++t) run.logits.push_back(matvec(head, norm(x[t], "model.norm.weight"), s.vocab));
    return run;
}

// Cancels once `after` progress reports arrived; records the last fraction.
struct CancelAfter final : ql::Feedback {
    int after = 0, reports = 0;
    double last = -1;
    void progress(double f) override { ++reports, last = f; }
    bool isCanceled() const override { return after >= 0 && reports >= after; }
};

} // namespace

class TestSiteCapture : public QObject {
    Q_OBJECT

    qlfix::ModelSpec m_spec;
    std::vector<qlfix::Tensor> m_tensors;
    QTemporaryDir m_dir;
    std::optional<ql::Model> m_model;
    std::vector<int32_t> m_ids;

private slots:
    void initTestCase()
    {
        m_spec.layers = 3;
        m_spec.intermediate = 171; // odd: down_in's width differs from every other site's
        m_spec.qkvBias = true;
        m_spec.weightStd = 0.15f;
        m_spec.seed = 11;
        m_tensors = qlfix::makeWeights(m_spec);
        QVERIFY(qlfix::writeModel(m_dir.path().toStdString(), m_spec));
        auto m = ql::Model::open(m_dir.path().toStdString());
        QVERIFY2(m.ok(), m.message().c_str());
        m_model.emplace(std::move(*m));
        for (int t = 0; t < 29; ++t) m_ids.push_back((t * 41 + 5) % m_spec.vocab);
    }

    // Sites of the first and the last block against the float64 naive pass. fp32 against float64
    // through up to three blocks: |error| / (1 + |value|) stays below 1e-4 (measured ~1e-6).
    void matchesNaiveForward_data()
    {
        QTest::addColumn<QString>("site");
        for (int layer : {0, 2})
            for (const char* s : {"attn_in", "o_in", "mlp_in", "down_in"}) {
                const QString name = QStringLiteral("layers.%1.%2").arg(layer).arg(s);
                QTest::newRow(qPrintable(name)) << name;
            }
    }
    void matchesNaiveForward()
    {
        QFETCH(QString, site);
        const NaiveRun naive = naiveSites(m_spec, m_tensors, m_ids);
        // The reference itself: its logits agree with the shared naive reference's.
        const auto ref = qltest::naiveLogits(m_spec, m_tensors, m_ids);
        for (size_t t = 0; t < ref.size(); ++t)
            for (int v = 0; v < m_spec.vocab; ++v)
                QVERIFY(std::abs(naive.logits[t][v] - ref[t][v]) <= 1e-9 * (1 + std::abs(ref[t][v])));

        auto got = ql::captureSite(*m_model, m_model->config(), m_ids, site.toStdString());
        QVERIFY2(got.ok(), got.message().c_str());
        const auto& expect = naive.sites.at(site.toStdString());
        QCOMPARE(got->rows(), Eigen::Index(m_ids.size()));
        QCOMPARE(got->cols(), Eigen::Index(expect[0].size()));
        QCOMPARE(got->cols(), Eigen::Index(site.endsWith("down_in") ? m_spec.intermediate : m_spec.hidden));
        double worst = 0, scale = 0;
        for (Eigen::Index t = 0; t < got->rows(); ++t)
            for (Eigen::Index c = 0; c < got->cols(); ++c) {
                worst = std::max(worst, std::abs((*got)(t, c) - expect[t][c]) / (1 + std::abs(expect[t][c])));
                scale = std::max(scale, std::abs(expect[t][c]));
            }
        qInfo("%s: max |error| / (1 + |value|) = %.3g, max |value| %.3g", qPrintable(site), worst, scale);
        QVERIFY2(worst < 1e-4, qPrintable(QString::number(worst)));
        QVERIFY(scale > 0.1); // a site of zeros would match anything small
    }

    // Stopping at the site changes nothing: the values equal those a full forward pass publishes.
    void equalsFullForwardPass()
    {
        std::map<std::string, Eigen::MatrixXf> full;
        ql::ForwardEngine engine(m_model->config(), *m_model);
        engine.setObserver([&](const ql::Activation& a) { full[a.name] = a.x; });
        QVERIFY(engine.run({m_ids}, {}).ok());
        for (const char* site : {"layers.0.attn_in", "layers.1.o_in", "layers.2.mlp_in", "layers.2.down_in"}) {
            auto got = ql::captureSite(*m_model, m_model->config(), m_ids, site, 2);
            QVERIFY2(got.ok(), got.message().c_str());
            const Eigen::MatrixXf& x = full.at(site);
            QVERIFY2(got->rows() == x.cols() && got->cols() == x.rows() && *got == x.transpose(), site);
        }
    }

    void unknownSitesNameTheValidForms()
    {
        for (const char* bad : {"layers.3.attn_in", "layers.0.q", "layers.0.attn_in.x", "blocks.0.attn_in", "layers.x.mlp_in",
                                "layers.-1.o_in", "layers.01.down_in", "layers..down_in", "", "layers.0."}) {
            auto r = ql::captureSite(*m_model, m_model->config(), m_ids, bad);
            QVERIFY2(!r.ok(), bad);
            const QString msg = QString::fromStdString(r.message());
            QVERIFY2(msg.contains(QStringLiteral("unknown site \"%1\"").arg(bad)), qPrintable(msg));
            QVERIFY2(msg.contains("layers.<i>.attn_in") && msg.contains("layers.<i>.down_in"), qPrintable(msg));
            QVERIFY2(msg.contains("0 <= i < 3") && msg.contains("3 layers"), qPrintable(msg));
        }
    }

    void badWindowsAreRefused()
    {
        const auto& cfg = m_model->config();
        auto empty = ql::captureSite(*m_model, cfg, std::vector<int32_t>{}, "layers.0.attn_in");
        QVERIFY(!empty.ok());
        QVERIFY2(QString::fromStdString(empty.message()).contains("token window is empty"), empty.message().c_str());

        std::vector<int32_t> ids = m_ids;
        ids[5] = cfg.vocab;
        auto high = ql::captureSite(*m_model, cfg, ids, "layers.1.mlp_in");
        QVERIFY(!high.ok());
        QVERIFY2(QString::fromStdString(high.message()).contains(QStringLiteral("token id %1 at position 5").arg(cfg.vocab)),
                 high.message().c_str());
        QVERIFY2(QString::fromStdString(high.message()).contains(QStringLiteral("0..%1").arg(cfg.vocab - 1)),
                 high.message().c_str());
        ids = m_ids;
        ids[0] = -1;
        auto low = ql::captureSite(*m_model, cfg, ids, "layers.1.mlp_in");
        QVERIFY2(QString::fromStdString(low.message()).contains("token id -1 at position 0"), low.message().c_str());
    }

    void feedbackReportsAndCancels()
    {
        const auto& cfg = m_model->config();
        CancelAfter none;
        none.after = -1;
        QVERIFY(ql::captureSite(*m_model, cfg, m_ids, "layers.2.down_in", 0, &none).ok());
        QCOMPARE(none.reports, 3); // one per block run
        QCOMPARE(none.last, 1.0);

        CancelAfter now; // canceled before anything runs
        auto r0 = ql::captureSite(*m_model, cfg, m_ids, "layers.2.down_in", 0, &now);
        QCOMPARE(QString::fromStdString(r0.message()), QString(ql::canceledMessage()));
        QCOMPARE(now.reports, 0);

        CancelAfter midway;
        midway.after = 1; // canceled after the first block
        auto r1 = ql::captureSite(*m_model, cfg, m_ids, "layers.2.down_in", 0, &midway);
        QCOMPARE(QString::fromStdString(r1.message()), QString(ql::canceledMessage()));
        QCOMPARE(midway.reports, 1);
    }
};

QTEST_GUILESS_MAIN(TestSiteCapture)
#include "tst_sitecapture.moc"
