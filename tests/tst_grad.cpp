// The backward pass against torch autograd (float64, tests/reference/torch_grad.py, Debian's
// python3-torch) and against finite differences of QuantLens' own forward: a decoder block with
// GQA, q/k/v biases, an online rotation and a fake-quantized MLP input; the final norm, LM head
// and cross-entropy; OmniQuant's learnable weight clipping with its straight-through estimator.
#include "fixturemodel.h"
#include "testpaths.h"
#include "torchexchange.h"
#include "blockfixture.h"
#include "quantlens/forward/forward.h"
#include "quantlens/grad/fisher.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/model/model.h"
#include "quantlens/forward/rotation.h"
#include "quantlens/grad/blockgrad.h"
#include "quantlens/grad/clipquant.h"
#include "quantlens/grad/headgrad.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <random>

namespace {

using ql::ConstRowMap;
using ql::RowMatrix;
using qltest::blockConfig;
using qltest::Exchange;
using qltest::FixtureBlock;
using qltest::makeBlock;
using qltest::randomMatrix;
using qltest::relError;
using qltest::torchAvailable;
// Runs forward and backward on the fixture: output y, input gradient dx, parameter gradients g.
bool forwardBackward(ql::BlockBackward& b, const FixtureBlock& f, Eigen::MatrixXf& y, Eigen::MatrixXf& dx,
                     ql::BlockGradients& g)
{
    if (!b.forward(f.w, f.x, y)) return false;
    g.reset(f.w, true);
    b.backward(f.w, f.dy, dx, &g);
    return true;
}

// Summed next-token cross-entropy of one window in double, from ForwardEngine's logits (the
// forward pass the analysis uses, independent of the backward module's own forward).
double summedLoss(const ql::ModelConfig& c, const ql::WeightSource& w, const std::vector<int32_t>& ids)
{
    ql::ForwardEngine engine(c, w);
    double loss = 0;
    auto ran = engine.run({ids}, [&](int, const Eigen::MatrixXf& logits) -> ql::Expected<void> {
        for (Eigen::Index t = 0; t + 1 < logits.cols(); ++t) {
            const Eigen::VectorXd z = logits.col(t).cast<double>();
            const double m = z.maxCoeff();
            loss += m + std::log((z.array() - m).exp().sum()) - z(ids[size_t(t) + 1]);
        }
        return {};
    });
    if (!ran) qFatal("forward: %s", ran.error().message.c_str());
    return loss;
}

// Σ dy ⊙ block(x), in double: the scalar whose gradient backward() computes.
double blockLoss(ql::BlockBackward& b, const ql::BlockWeights& w, const Eigen::MatrixXf& x, const Eigen::MatrixXf& dy)
{
    Eigen::MatrixXf y;
    if (!b.forward(w, x, y)) qFatal("forward failed");
    return (y.cast<double>().array() * dy.cast<double>().array()).sum();
}

} // namespace

class TestGrad : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

private slots:
    void initTestCase()
    {
        if (!torchAvailable())
            QSKIP("torch is missing: /usr/bin/python3 cannot import torch (install Debian's python3-torch, "
                  "cmake/install-deps.sh does)");
    }

    void blockGradientsMatchTorch_data()
    {
        QTest::addColumn<bool>("hooks");
        QTest::newRow("plain") << false;
        QTest::newRow("rotation and fake-quantized mlp input") << true;
    }

    // Every gradient of a block (input, norms, seven weights, three biases) equals torch
    // autograd's in float64 within 1e-4 relative; so does the output.
    void blockGradientsMatchTorch()
    {
        QFETCH(bool, hooks);
        const ql::ModelConfig c = blockConfig();
        FixtureBlock f = makeBlock(c, hooks, 11);
        ql::BlockBackward b(c);
        Eigen::MatrixXf y, dx;
        ql::BlockGradients g;
        QVERIFY(forwardBackward(b, f, y, dx, g));

        const QString dir = m_tmp.path() + (hooks ? "/hooks" : "/plain");
        QVERIFY(QDir().mkpath(dir));
        Exchange ex(dir);
        ex.config() = {{"heads", c.heads},        {"kv_heads", c.kvHeads}, {"head_dim", c.headDim}, {"eps", c.rmsEps},
                       {"theta", c.ropeTheta},    {"mlp_in_bits", 6}, // the fixture's hook on gate's and up's input
                       {"mlp_in_symmetric", true}};
        ex.put("x", f.x);
        ex.put("dy", f.dy);
        ex.putVector("attn_norm", f.w.attnNorm);
        ex.putVector("mlp_norm", f.w.mlpNorm);
        const char* names[] = {"q", "k", "v", "o", "gate", "up", "down"};
        for (int k = 0; k < ql::kLinearCount; ++k) {
            ex.put(names[k], f.w[ql::LinearKind(k)]);
            if (f.w.bias[size_t(k)].size()) ex.putVector(std::string("b_") + names[k], f.w.bias[size_t(k)]);
        }
        if (hooks) {
            ex.put("rotation", f.rotation);
            ex.put("mlp_in_quant", b.linearInput(ql::LinearKind::Gate));
            // The fake quantization changed gate's input (else a missing straight-through path
            // would go unseen): without the hook the same forward multiplies another input.
            ql::BlockWeights plain = f.w;
            plain.actQuant.fill(ql::ActQuantSpec{});
            ql::BlockBackward unhooked(c);
            Eigen::MatrixXf y2;
            QVERIFY(unhooked.forward(plain, f.x, y2));
            const double change = (unhooked.linearInput(ql::LinearKind::Gate) - b.linearInput(ql::LinearKind::Gate))
                                      .cwiseAbs()
                                      .maxCoeff();
            QVERIFY2(change > 1e-3, qPrintable(QString::number(change)));
        }
        QVERIFY(ex.run("block"));
        const double tol = 1e-4;
        QVERIFY2(relError(y, ex.ref("y")) < tol, qPrintable(QString::number(relError(y, ex.ref("y")))));
        auto check = [&](const std::string& what, const Eigen::Ref<const RowMatrix>& ours) {
            const double e = relError(ours, ex.ref(what));
            QVERIFY2(e < tol, qPrintable(QString::fromStdString(what) + ": relative error " + QString::number(e)));
        };
        check("d_x", dx);
        check("d_attn_norm", g.attnNorm);
        check("d_mlp_norm", g.mlpNorm);
        for (int k = 0; k < ql::kLinearCount; ++k) {
            check(std::string("d_") + names[k], g.weight[size_t(k)]);
            if (g.bias[size_t(k)].size()) check(std::string("d_b_") + names[k], g.bias[size_t(k)]);
            check(std::string("out_sq_") + names[k], g.outputSq[size_t(k)]);
        }
    }

    // Central differences of QuantLens' own forward agree with backward() on the largest
    // gradient coordinate of every parameter kind (fp32 forward, loss in double, h = 2e-3).
    void blockGradientsMatchFiniteDifferences()
    {
        const ql::ModelConfig c = blockConfig();
        FixtureBlock f = makeBlock(c, false, 5);
        ql::BlockBackward b(c);
        Eigen::MatrixXf y, dx;
        ql::BlockGradients g;
        QVERIFY(forwardBackward(b, f, y, dx, g));
        const float h = 2e-3f;
        auto fd = [&](float& v) {
            const float keep = v;
            v = keep + h;
            const double up = blockLoss(b, f.w, f.x, f.dy);
            v = keep - h;
            const double down = blockLoss(b, f.w, f.x, f.dy);
            v = keep;
            return (up - down) / (2.0 * double(h));
        };
        auto checkAt = [&](const char* what, float* values, const float* grads, Eigen::Index n) {
            Eigen::Index at = 0;
            for (Eigen::Index i = 1; i < n; ++i)
                if (std::abs(grads[i]) > std::abs(grads[at])) at = i;
            const double numeric = fd(values[at]), analytic = grads[at];
            QVERIFY2(
                std::abs(numeric - analytic) <= 1e-2 * std::abs(analytic) + 5e-3,
                qPrintable(
                    QString("%1[%2]: finite difference %3, backward %4").arg(what).arg(at).arg(numeric).arg(analytic)));
        };
        const char* names[] = {"q", "k", "v", "o", "gate", "up", "down"};
        for (int k = 0; k < ql::kLinearCount; ++k)
            checkAt(names[k], f.w.storage[size_t(k)].data(), g.weight[size_t(k)].data(), g.weight[size_t(k)].size());
        checkAt("b_k", f.w.bias[1].data(), g.bias[1].data(), g.bias[1].size());
        checkAt("attn_norm", f.w.attnNorm.data(), g.attnNorm.data(), g.attnNorm.size());
        checkAt("mlp_norm", f.w.mlpNorm.data(), g.mlpNorm.data(), g.mlpNorm.size());
        checkAt("x", f.x.data(), dx.data(), dx.size());
    }

    // The loss and every gradient of final norm + LM head + cross-entropy (ignored positions
    // included) equal torch's F.cross_entropy under autograd, and finite differences agree.
    void headGradientsMatchTorch()
    {
        std::mt19937 rng(3);
        const Eigen::Index hidden = 64, vocab = 50, n = 20;
        const Eigen::MatrixXf x = randomMatrix(hidden, n, 1.f, rng);
        RowMatrix head = randomMatrix(vocab, hidden, 0.3f, rng);
        const Eigen::VectorXf norm = Eigen::VectorXf::Ones(hidden) + randomMatrix(hidden, 1, 0.1f, rng).col(0);
        std::vector<int32_t> targets(static_cast<size_t>(n), 0);
        for (Eigen::Index j = 0; j < n; ++j) targets[size_t(j)] = j % 7 == 3 ? -1 : int32_t(rng() % vocab);
        ql::HeadBackward hb;
        Eigen::MatrixXf dx;
        ql::HeadGradients g{Eigen::VectorXf::Zero(hidden), RowMatrix::Zero(vocab, hidden)};
        auto loss = hb.lossAndGradient(norm, ConstRowMap(head.data(), vocab, hidden), 1e-5f, x, targets, dx, &g);
        QVERIFY(loss);

        Exchange ex(m_tmp.path());
        ex.config() = {{"eps", 1e-5}};
        ex.put("x", x);
        ex.putVector("norm", norm);
        ex.put("head", head);
        Eigen::VectorXf t(n);
        for (Eigen::Index j = 0; j < n; ++j) t(j) = float(targets[size_t(j)]);
        ex.putVector("targets", t);
        QVERIFY(ex.run("head"));
        QVERIFY2(std::abs(*loss - ex.ref("loss")(0, 0)) < 1e-5 * ex.ref("loss")(0, 0),
                 qPrintable(QString("loss %1, torch %2").arg(*loss).arg(ex.ref("loss")(0, 0))));
        QVERIFY2(relError(dx, ex.ref("d_x")) < 1e-4, qPrintable(QString::number(relError(dx, ex.ref("d_x")))));
        QVERIFY(relError(g.norm, ex.ref("d_norm")) < 1e-4);
        QVERIFY(relError(g.head, ex.ref("d_head")) < 1e-4);

        // A finite difference on the head's largest gradient.
        Eigen::Index r, cidx;
        g.head.cwiseAbs().maxCoeff(&r, &cidx);
        const float keep = head(r, cidx), h = 1e-2f;
        auto lossAt = [&](float v) {
            head(r, cidx) = v;
            Eigen::MatrixXf unused;
            return *hb.lossAndGradient(norm, ConstRowMap(head.data(), vocab, hidden), 1e-5f, x, targets, unused,
                                       nullptr);
        };
        const double numeric = (lossAt(keep + h) - lossAt(keep - h)) / (2.0 * h);
        head(r, cidx) = keep;
        QVERIFY2(std::abs(numeric - g.head(r, cidx)) <= 1e-2 * std::abs(g.head(r, cidx)) + 1e-4,
                 qPrintable(QString("finite difference %1, backward %2").arg(numeric).arg(g.head(r, cidx))));

        // A target outside the vocabulary is refused with its position.
        targets[4] = int32_t(vocab);
        auto bad = hb.lossAndGradient(norm, ConstRowMap(head.data(), vocab, hidden), 1e-5f, x, targets, dx, nullptr);
        QVERIFY(!bad);
        QVERIFY(bad.error().message.find("position 4") != std::string::npos);
    }

    // The diagonal Fisher of one window is (∂L/∂W)²/N with L the window's summed loss; on a
    // two-block fixture model, central differences of ForwardEngine's loss give ∂L/∂W at the
    // largest entry of each linear kind, and ½ΣF·ΔW² follows from F as documented.
    void fisherMatchesFiniteDifferences()
    {
        const QString dir = m_tmp.path() + "/fishermodel";
        qlfix::ModelSpec spec;
        spec.weightStd = 0.15f;
        std::string err;
        QVERIFY2(qlfix::writeModel(dir.toStdString(), spec, &err), err.c_str());
        auto model = ql::Model::open(dir.toStdString());
        QVERIFY2(model, model ? "" : model.error().message.c_str());
        const ql::ModelConfig& c = model->config();
        std::vector<int32_t> ids;
        for (int i = 0; i < 24; ++i) ids.push_back((i * 37 + 11) % c.vocab);
        auto fisher = ql::DiagonalFisher::compute(c, *model, {ids});
        QVERIFY2(fisher, fisher ? "" : fisher.error().message.c_str());
        QCOMPARE(fisher->tokens(), int64_t(ids.size() - 1));
        QVERIFY(std::abs(fisher->meanLoss() * double(fisher->tokens()) - summedLoss(c, *model, ids)) <
                1e-4 * summedLoss(c, *model, ids));

        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw);
        const double n = double(fisher->tokens());
        for (int layer = 0; layer < c.layers; ++layer)
            for (int k = 0; k < ql::kLinearCount; ++k) {
                const RowMatrix& f = fisher->of(layer, ql::LinearKind(k));
                Eigen::Index r, col;
                f.maxCoeff(&r, &col);
                float& v = fw->linear(layer, ql::LinearKind(k))(r, col);
                const float keep = v, h = 1e-2f;
                v = keep + h;
                const double up = summedLoss(c, *fw, ids);
                v = keep - h;
                const double down = summedLoss(c, *fw, ids);
                v = keep;
                const double grad = (up - down) / (2.0 * h), expected = grad * grad / n;
                QVERIFY2(std::abs(f(r, col) - expected) <= 2e-2 * expected + 1e-6,
                         qPrintable(QString("layer %1 %2 [%3,%4]: Fisher %5, finite differences give %6")
                                        .arg(layer)
                                        .arg(ql::linearShortName(ql::LinearKind(k)))
                                        .arg(r)
                                        .arg(col)
                                        .arg(f(r, col))
                                        .arg(expected)));
            }
        // ½ΣF·ΔW² for a change of one weight.
        const RowMatrix& w = fw->linear(1, ql::LinearKind::Down);
        RowMatrix moved = w;
        moved(3, 5) += 0.1f;
        const double s = fisher->sensitivity(1, ql::LinearKind::Down, w, moved);
        QVERIFY(std::abs(s - 0.5 * fisher->of(1, ql::LinearKind::Down)(3, 5) * 0.01) < 1e-4 * s + 1e-12);
    }

    void clipGradientsMatchTorch_data()
    {
        QTest::addColumn<bool>("symmetric");
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("cols");
        QTest::newRow("asymmetric W3 g16") << false << 3 << 64;
        QTest::newRow("symmetric W4 g16") << true << 4 << 64;
        QTest::newRow("asymmetric W3 g16, partial last group") << false << 3 << 72;
    }

    // OmniQuant's learnable clipping: ŵ, ∂/∂γ, ∂/∂β and the straight-through ∂/∂w equal torch
    // autograd's on the same forward; some codes clamp, so the clamped branch is exercised.
    void clipGradientsMatchTorch()
    {
        QFETCH(bool, symmetric);
        QFETCH(int, bits);
        QFETCH(int, cols);
        std::mt19937 rng(9);
        const ql::ClipQuantSpec spec{bits, 16, symmetric};
        const RowMatrix w = randomMatrix(8, cols, 0.2f, rng);
        const Eigen::Index ng = ql::ClippedFakeQuant::groups(spec, w.cols());
        std::uniform_real_distribution<float> u(0.5f, 4.f);
        Eigen::MatrixXf gamma(w.rows(), ng), beta(w.rows(), ng);
        for (Eigen::Index i = 0; i < gamma.size(); ++i) {
            gamma.data()[i] = u(rng);
            beta.data()[i] = u(rng);
        }
        const RowMatrix dOut = randomMatrix(8, cols, 1.f, rng);
        RowMatrix wq, dw;
        const ConstRowMap wm(w.data(), w.rows(), w.cols());
        ql::ClippedFakeQuant::forward(wm, spec, gamma, beta, wq);
        Eigen::MatrixXf dGamma = Eigen::MatrixXf::Zero(w.rows(), ng), dBeta = dGamma;
        ql::ClippedFakeQuant::backward(wm, spec, gamma, beta, ConstRowMap(dOut.data(), 8, cols), dGamma, dBeta, &dw);
        QVERIFY2((dw.array() == 0).count() > 0, "no code clamped: the clamped branch went untested");

        const QString dir = m_tmp.path() + (symmetric ? "/clipsym" : "/clipasym") + QString::number(cols);
        QVERIFY(QDir().mkpath(dir));
        Exchange ex(dir);
        ex.config() = {{"bits", bits}, {"group", 16}, {"symmetric", symmetric}};
        ex.put("w", w);
        ex.put("gamma", RowMatrix(gamma));
        ex.put("beta", RowMatrix(beta));
        ex.put("d_out", dOut);
        QVERIFY(ex.run("clip"));
        QVERIFY2(relError(wq, ex.ref("wq")) < 1e-5, qPrintable(QString::number(relError(wq, ex.ref("wq")))));
        QVERIFY2(relError(RowMatrix(dGamma), ex.ref("d_gamma")) < 1e-4,
                 qPrintable(QString::number(relError(RowMatrix(dGamma), ex.ref("d_gamma")))));
        if (!symmetric || ex.ref("d_beta").cwiseAbs().maxCoeff() > 0)
            QVERIFY2(relError(RowMatrix(dBeta), ex.ref("d_beta")) < 1e-4,
                     qPrintable(QString::number(relError(RowMatrix(dBeta), ex.ref("d_beta")))));
        QVERIFY(relError(dw, ex.ref("d_w")) < 1e-6);
    }
};

QTEST_GUILESS_MAIN(TestGrad)
#include "tst_grad.moc"
