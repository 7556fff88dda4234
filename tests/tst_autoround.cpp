// AutoRound's learned rounding: the fake quantization's gradients and a short training
// trajectory equal torch's (autograd in float64 on the same forward, tests/reference/torch_grad.py),
// training lowers the block's error below plain rounding's, and the codes it reports decode to
// exactly the weights it trained.
#include "blocktraining.h"
#include "quantlens/grad/blockgrad.h"
#include "quantlens/methods/autoround.h"

#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

namespace {

using ql::ConstRowMap;
using qltest::Exchange;
using qltest::randomMatrix;
using qltest::relError;
using qltest::RowMatrix;

using qltest::Windows;

// The share of entries that differ by more than tol (sign descent can flip on a gradient that
// is zero up to rounding, so a handful of entries may legitimately differ).
double offShare(const Eigen::Ref<const RowMatrix>& ours, const qltest::RowMatrixD& ref, double tol)
{
    return double(((ours.cast<double>() - ref).cwiseAbs().array() > tol).count()) / double(ref.size());
}

} // namespace

class TestAutoRound : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;

private slots:
    // ŵ, ∂/∂v, ∂/∂(min factor) and ∂/∂(max factor) equal torch autograd's; factors below 1
    // make codes clamp, so the clamped branch (the zero point's straight-through path) is exercised.
    void roundingGradientsMatchTorch_data()
    {
        QTest::addColumn<int>("cols");
        QTest::newRow("W3 g16") << 64;
        QTest::newRow("W3 g16, partial last group") << 72;
    }

    void roundingGradientsMatchTorch()
    {
        if (!qltest::torchAvailable()) QSKIP("torch is missing: /usr/bin/python3 cannot import torch");
        QFETCH(int, cols);
        std::mt19937 rng(5);
        const ql::RoundQuantSpec spec{3, 16, true};
        const RowMatrix w = randomMatrix(8, cols, 0.2f, rng);
        const Eigen::Index ng = ql::RoundingFakeQuant::groups(spec, w.cols());
        std::uniform_real_distribution<float> half(-0.5f, 0.5f), factor(0.6f, 1.f);
        RowMatrix v(8, cols);
        for (Eigen::Index i = 0; i < v.size(); ++i) v.data()[i] = half(rng);
        Eigen::MatrixXf mn(8, ng), mx(8, ng);
        for (Eigen::Index i = 0; i < mn.size(); ++i) {
            mn.data()[i] = factor(rng);
            mx.data()[i] = factor(rng);
        }
        const RowMatrix dOut = randomMatrix(8, cols, 1.f, rng);
        const ConstRowMap wm(w.data(), w.rows(), w.cols());
        RowMatrix wq, dV;
        ql::RoundingFakeQuant::forward(wm, spec, v, mn, mx, wq);
        Eigen::MatrixXf dMin = Eigen::MatrixXf::Zero(8, ng), dMax = dMin;
        ql::RoundingFakeQuant::backward(wm, spec, v, mn, mx, ConstRowMap(dOut.data(), 8, cols), dV, dMin, dMax);
        QVERIFY2((dV.array() == 0).count() > 0, "no code clamped: the clamped branch went untested");

        Exchange ex(m_tmp.path());
        ex.config() = {{"bits", 3}, {"group", 16}};
        ex.put("w", w);
        ex.put("v", v);
        ex.put("min", RowMatrix(mn));
        ex.put("max", RowMatrix(mx));
        ex.put("d_out", dOut);
        QVERIFY(ex.run("roundq"));
        QVERIFY2(relError(wq, ex.ref("wq")) < 1e-6, qPrintable(QString::number(relError(wq, ex.ref("wq")))));
        QVERIFY2(relError(dV, ex.ref("d_v")) < 1e-6, qPrintable(QString::number(relError(dV, ex.ref("d_v")))));
        QVERIFY2(relError(RowMatrix(dMin), ex.ref("d_min")) < 1e-4,
                 qPrintable(QString::number(relError(RowMatrix(dMin), ex.ref("d_min")))));
        QVERIFY2(relError(RowMatrix(dMax), ex.ref("d_max")) < 1e-4,
                 qPrintable(QString::number(relError(RowMatrix(dMax), ex.ref("d_max")))));
    }

    // Four iterations over three windows at W3 g16 (lr 0.02, keep-last): every iteration's loss
    // equals torch's within 1e-4 relative, and the offsets and factors the last iteration used
    // equal torch's to 1e-6 on all but at most 0.1 % of entries.
    void trainingMatchesTorch()
    {
        if (!qltest::torchAvailable()) QSKIP("torch is missing: /usr/bin/python3 cannot import torch");
        const ql::ModelConfig c = qltest::blockConfig();
        const qltest::FixtureBlock f = qltest::makeBlock(c, false, 23);
        const Windows win = qltest::makeWindows(c, f.w, 3, 16, 8);
        ql::AutoRoundOptions o;
        o.setAll({3, 16, true});
        o.iters = 4;
        o.lr = 0.02f;
        o.keepBest = false;
        auto r = ql::trainBlockRounding(c, f.w, win.quantInputs, win.targets, o);
        QVERIFY2(r, r ? "" : r.error().message.c_str());
        QCOMPARE(r->bestIter, 3);

        Exchange ex(m_tmp.path());
        qltest::putTrainingBlock(ex, c, f.w, win);
        ex.config().update({{"bits", 3}, {"group", 16}, {"iters", 4}, {"lr", 0.02}});
        const auto& names = qltest::kTorchLinearNames;
        QVERIFY(ex.run("autoround"));
        const auto& losses = ex.ref("iter_loss");
        QCOMPARE(r->iterLoss.size(), size_t(4));
        for (int i = 0; i < 4; ++i)
            QVERIFY2(std::abs(r->iterLoss[size_t(i)] - losses(i, 0)) <= 1e-4 * losses(i, 0),
                     qPrintable(QString("iteration %1: %2 against torch's %3")
                                    .arg(i)
                                    .arg(r->iterLoss[size_t(i)])
                                    .arg(losses(i, 0))));
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const double sv = offShare(r->v[size_t(k)], ex.ref(std::string("v_") + names[k]), 1e-6);
            const double smin = offShare(RowMatrix(r->minScale[size_t(k)]), ex.ref(std::string("min_") + names[k]),
                                         1e-6);
            const double smax = offShare(RowMatrix(r->maxScale[size_t(k)]), ex.ref(std::string("max_") + names[k]),
                                         1e-6);
            qInfo("%s: entries off torch: v %.4f%%, min %.4f%%, max %.4f%%", names[k], 100 * sv, 100 * smin,
                  100 * smax);
            QVERIFY2(sv <= 1e-3 && smin <= 1e-3 && smax <= 1e-3, names[k]);
            // The parameters moved: a missing update would pass the comparison otherwise.
            QVERIFY((r->v[size_t(k)].array() != 0.f).any());
            QVERIFY((r->minScale[size_t(k)].array() != 1.f).any() || (r->maxScale[size_t(k)].array() != 1.f).any());
        }
    }

    // With the published schedule (lr 1/iters) the kept rounding lowers the block's error below
    // plain rounding's, measured independently; the reported codes decode to the trained weights.
    void trainingLowersTheBlockErrorAndEncodesExactly()
    {
        const ql::ModelConfig c = qltest::blockConfig();
        const qltest::FixtureBlock f = qltest::makeBlock(c, false, 8);
        const Windows win = qltest::makeWindows(c, f.w, 4, 24, 6);
        ql::AutoRoundOptions o;
        o.setAll({3, 16, true});
        o.iters = 60;
        o.batch = 2;
        auto r = ql::trainBlockRounding(c, f.w, win.quantInputs, win.targets, o);
        QVERIFY(r);
        ql::BlockWeights q;
        ql::applyRounding(f.w, *r, o, q);
        ql::BlockBackward b(c);
        double sum = 0;
        for (size_t i = 0; i < win.quantInputs.size(); ++i) {
            Eigen::MatrixXf y;
            QVERIFY(b.forward(q, win.quantInputs[i], y));
            sum += (y - win.targets[i]).cast<double>().squaredNorm() / double(y.size());
        }
        QCOMPARE(sum / double(win.quantInputs.size()), r->lossAfter);
        qInfo("block MSE: plain rounding %.6g, learned %.6g (iteration %d kept)", r->lossBefore, r->lossAfter,
              r->bestIter);
        QVERIFY(r->lossAfter < r->lossBefore);
        for (int k = 0; k < ql::kLinearCount; ++k) {
            ql::FormatSpec fmt{"int3_asym", ql::Granularity::PerGroup, 16};
            auto t = ql::RoundingFakeQuant::encode(f.w[ql::LinearKind(k)], *o.specs[size_t(k)], r->v[size_t(k)],
                                                   r->minScale[size_t(k)], r->maxScale[size_t(k)], fmt);
            QVERIFY2(t, t ? "" : t.error().message.c_str());
            QVERIFY(t->dequantize() == Eigen::MatrixXf(q[ql::LinearKind(k)]));
        }
        // A format the grid does not fit is refused.
        auto bad = ql::RoundingFakeQuant::encode(f.w[ql::LinearKind::Q], {3, 16, true}, r->v[0], r->minScale[0],
                                                 r->maxScale[0], {"int4_asym", ql::Granularity::PerGroup, 16});
        QVERIFY(!bad);
    }
};

QTEST_GUILESS_MAIN(TestAutoRound)
#include "tst_autoround.moc"
