// captureSite: the activations entering a site for one window, against the inputs of every
// linear recorded by the shared float64 naive forward pass (qltest::naiveLogits), against the
// full forward pass, and its errors.
#include "fixturemodel.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/model.h"
#include "quantlens/forward/sitecapture.h"
#include "reference/naivellama.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <map>
#include <optional>

namespace {

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
        qltest::SiteInputs naive; // the reference's logits are checked in tst_forward
        qltest::naiveLogits(m_spec, m_tensors, m_ids, 0, &naive);

        auto got = ql::captureSite(*m_model, m_model->config(), m_ids, site.toStdString());
        QVERIFY2(got.ok(), got.message().c_str());
        const auto& expect = naive.at(site.toStdString());
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
        for (const char* bad :
             {"layers.3.attn_in", "layers.0.q", "layers.0.attn_in.x", "blocks.0.attn_in", "layers.x.mlp_in",
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
        QVERIFY2(
            QString::fromStdString(high.message()).contains(QStringLiteral("token id %1 at position 5").arg(cfg.vocab)),
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
