// OmniQuant's learnable weight clipping trained block by block: the trajectory equals torch's
// (autograd and torch.optim.AdamW in float64 on the same forward, tests/reference/torch_grad.py),
// and training lowers the block's output error below the unclipped grid's.
#include "blocktraining.h"
#include "quantlens/grad/blockgrad.h"
#include "quantlens/methods/omniquant.h"

#include <QTemporaryDir>
#include <QtTest>

namespace {

using qltest::RowMatrix;

using qltest::Windows;

// Mean MSE of the block with the given clipping against the targets.
double blockLoss(const ql::ModelConfig& c, const ql::BlockWeights& w, const ql::BlockClipping& clip,
                 const ql::OmniQuantOptions& o, const Windows& win)
{
    ql::BlockWeights q;
    ql::applyClipping(c, w, clip, o, q);
    ql::BlockBackward b(c);
    double sum = 0;
    for (size_t i = 0; i < win.targets.size(); ++i) {
        Eigen::MatrixXf y;
        if (!b.forward(q, win.quantInputs[i], y)) qFatal("forward failed");
        sum += (y - win.targets[i]).cast<double>().squaredNorm() / double(y.size());
    }
    return sum / double(win.targets.size());
}

} // namespace

class TestOmniQuant : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

private slots:
    // Two epochs over three windows at W3 g16: every clipping factor of every linear and each
    // epoch's mean loss equal torch's within 5e-5 absolute (factors start at 4) and 1e-3 relative.
    void trainingMatchesTorch()
    {
        if (!qltest::torchAvailable())
            QSKIP("torch is missing: /usr/bin/python3 cannot import torch (cmake/install-deps.sh installs "
                  "python3-torch)");
        const ql::ModelConfig c = qltest::blockConfig();
        const qltest::FixtureBlock f = qltest::makeBlock(c, false, 21);
        const Windows win = qltest::makeWindows(c, f.w, 3, 16, 4);
        ql::OmniQuantOptions o;
        o.setAll({3, 16, false});
        o.epochs = 2;
        auto clip = ql::trainBlockClipping(c, f.w, win.quantInputs, win.targets, o);
        QVERIFY2(clip, clip ? "" : clip.error().message.c_str());

        qltest::Exchange ex(m_tmp.path());
        qltest::putTrainingBlock(ex, c, f.w, win);
        ex.config().update({{"bits", 3}, {"group", 16}, {"epochs", 2}, {"lr", 1e-2}, {"init", 4.0}});
        const auto& names = qltest::kTorchLinearNames;
        QVERIFY(ex.run("omniquant"));
        const auto& losses = ex.ref("epoch_loss");
        QCOMPARE(clip->epochLoss.size(), size_t(2));
        for (int e = 0; e < 2; ++e)
            QVERIFY2(std::abs(clip->epochLoss[size_t(e)] - losses(e, 0)) <= 1e-3 * losses(e, 0),
                     qPrintable(QString("epoch %1: %2 against torch's %3")
                                    .arg(e)
                                    .arg(clip->epochLoss[size_t(e)])
                                    .arg(losses(e, 0))));
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const double dg = (clip->gamma[size_t(k)].cast<double>() - ex.ref(std::string("gamma_") + names[k]))
                                  .cwiseAbs()
                                  .maxCoeff();
            const double db =
                (clip->beta[size_t(k)].cast<double>() - ex.ref(std::string("beta_") + names[k])).cwiseAbs().maxCoeff();
            qInfo("%s: |Δγ| %.3g |Δβ| %.3g", names[k], dg, db);
            QVERIFY2(dg <= 5e-5 && db <= 5e-5,
                     qPrintable(QString("%1: γ off by %2, β by %3").arg(names[k]).arg(dg).arg(db)));
            // The factors moved: the comparison would not see a missing update otherwise.
            QVERIFY((clip->gamma[size_t(k)].array() != 4.f).any());
        }
    }

    // Ten epochs lower the block's error below the initial clipping's and below the unclipped
    // min/max grid's (σ = 1, round-to-nearest), measured independently of the trainer.
    void trainingLowersTheBlockError()
    {
        const ql::ModelConfig c = qltest::blockConfig();
        const qltest::FixtureBlock f = qltest::makeBlock(c, false, 8);
        const Windows win = qltest::makeWindows(c, f.w, 4, 24, 6);
        ql::OmniQuantOptions o;
        o.setAll({3, 16, false});
        o.epochs = 10;
        auto clip = ql::trainBlockClipping(c, f.w, win.quantInputs, win.targets, o);
        QVERIFY(clip);
        ql::BlockClipping minMax = *clip;
        for (int k = 0; k < ql::kLinearCount; ++k) {
            minMax.gamma[size_t(k)].setConstant(40.f); // σ(40) = 1 in fp32
            minMax.beta[size_t(k)].setConstant(40.f);
        }
        const double learned = blockLoss(c, f.w, *clip, o, win), rtn = blockLoss(c, f.w, minMax, o, win);
        QCOMPARE(learned, clip->lossAfter);
        qInfo("block MSE: min/max grid %.6g, initial clipping %.6g, learned %.6g", rtn, clip->lossBefore, learned);
        QVERIFY(learned < clip->lossBefore);
        QVERIFY(learned < rtn);

        // A grid the trainer cannot fit is refused, naming the linear.
        o.setAll({1, 16, false});
        auto bad = ql::trainBlockClipping(c, f.w, win.quantInputs, win.targets, o);
        QVERIFY(!bad);
        QVERIFY(bad.error().message.find("q_proj") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestOmniQuant)
#include "tst_omniquant.moc"
