// OmniQuant's learnable equivalent transformation: the transformed block computes the same
// function (under grouped-query attention and RoPE), its scales start where the reference's
// formula puts them, their gradients equal torch autograd's through learnable clipping and
// activation quantization, and training follows torch's AdamW trajectory
// (tests/reference/torch_grad.py, float64).
#include "blocktraining.h"
#include "quantlens/grad/let.h"
#include "quantlens/methods/omniquant.h"

#include <QTemporaryDir>
#include <utility>
#include <QtTest>

namespace {

using qltest::RowMatrix;

constexpr const char* kScaleNames[4] = {"qkv", "fc1", "out", "qk"};

std::array<bool, ql::kLinearCount> allTrained()
{
    std::array<bool, ql::kLinearCount> t;
    t.fill(true);
    return t;
}

// Scales drawn from [lo, hi] for every scale of the config.
ql::LetScales randomScales(const ql::ModelConfig& c, float lo, float hi, std::mt19937& rng)
{
    std::uniform_real_distribution<float> u(lo, hi);
    auto draw = [&](Eigen::Index n) {
        Eigen::VectorXf v(n);
        for (float& x : v) x = u(rng);
        return v;
    };
    const Eigen::Index kvRows = Eigen::Index(c.kvHeads) * c.headDim;
    return {draw(c.hidden), draw(c.hidden), draw(kvRows), draw(kvRows / 2)};
}

Eigen::MatrixXf blockOutput(const ql::ModelConfig& c, const ql::BlockWeights& w, const Eigen::MatrixXf& x)
{
    ql::BlockBackward b(c);
    Eigen::MatrixXf y;
    if (!b.forward(w, x, y)) qFatal("forward failed");
    return y;
}

void setActivationQuant(ql::BlockWeights& w, int bits)
{
    for (int k = 0; k < ql::kLinearCount; ++k) w.actQuant[size_t(k)] = ql::ActQuantSpec{bits, true, false};
}

void putScales(qltest::Exchange& ex, const ql::LetScales& s)
{
    const auto all = s.all();
    for (size_t i = 0; i < all.size(); ++i)
        if (all[i]->size()) ex.putVector(std::string("s_") + kScaleNames[i], *all[i]);
}

} // namespace

class TestLet : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

private slots:
    // Random scales over [0.2, 5] on a block with 4 heads over 2 kv heads, RoPE and q/k/v biases:
    // the transformed block's output equals the original's within float rounding (1e-5 of its
    // largest value), and the norms and weights did change.
    void transformationIsAnEquivalence()
    {
        const ql::ModelConfig c = qltest::blockConfig();
        const qltest::FixtureBlock f = qltest::makeBlock(c, false, 3);
        std::mt19937 rng(5);
        const ql::LetScales s = randomScales(c, 0.2f, 5.f, rng);
        ql::BlockWeights t;
        ql::applyLet(c, f.w, s, t);
        const Eigen::MatrixXf y0 = blockOutput(c, f.w, f.x), y1 = blockOutput(c, t, f.x);
        const double rel = (y1 - y0).cwiseAbs().maxCoeff() / y0.cwiseAbs().maxCoeff();
        qInfo("max |Δy| / max |y| = %.3g", rel);
        QVERIFY(rel < 1e-5);
        QVERIFY((t.attnNorm - f.w.attnNorm).cwiseAbs().maxCoeff() > 0.1f);
        for (int k = 0; k < 6; ++k) // down is the one linear LET leaves alone
            QVERIFY((RowMatrix(t[ql::LinearKind(k)]) - RowMatrix(f.w[ql::LinearKind(k)])).cwiseAbs().maxCoeff() >
                    1e-3f);
        QVERIFY(t[ql::LinearKind::Down].data() == f.w[ql::LinearKind::Down].data());

        // A q/k scale that is not shared by a rotary pair would not commute with RoPE: the
        // tie is what keeps the equivalence exact.
        ql::BlockWeights broken;
        ql::applyLet(c, f.w, s, broken);
        RowMatrix& k = broken.storage[size_t(ql::LinearKind::K)];
        k.row(0) *= 3.f;
        broken.bias[size_t(ql::LinearKind::K)](0) *= 3.f;
        RowMatrix& q = broken.storage[size_t(ql::LinearKind::Q)];
        q.row(0) /= 3.f;
        q.row(c.headDim).array() /= 3.f; // head 1 shares kv head 0
        broken.bias[size_t(ql::LinearKind::Q)](0) /= 3.f;
        broken.bias[size_t(ql::LinearKind::Q)](c.headDim) /= 3.f;
        const Eigen::MatrixXf y2 = blockOutput(c, broken, f.x);
        QVERIFY((y2 - y0).cwiseAbs().maxCoeff() / y0.cwiseAbs().maxCoeff() > 1e-4);
    }

    // The initial scales against the reference's formula computed here: max(a^α / m^(1−α), 1e-5)
    // with a the site absmax and m the signed column maximum of q_proj, up_proj or o_proj (out:
    // the largest over the heads sharing a kv head), qk at 1; a scale whose linears are not all
    // trained is absent.
    void initialScalesFollowTheReference()
    {
        const ql::ModelConfig c = qltest::blockConfig();
        const qltest::FixtureBlock f = qltest::makeBlock(c, false, 4);
        std::mt19937 rng(6);
        ql::SiteAbsmax a;
        a[0] = qltest::randomMatrix(c.hidden, 1, 2.f, rng).col(0).cwiseAbs();
        a[1] = qltest::randomMatrix(c.heads * c.headDim, 1, 2.f, rng).col(0).cwiseAbs();
        a[2] = qltest::randomMatrix(c.hidden, 1, 2.f, rng).col(0).cwiseAbs();
        const float alpha = 0.6f;
        const ql::LetScales s = ql::initialLetScales(c, f.w, allTrained(), a, alpha);
        auto expected = [&](float act, float m) {
            return std::max(std::pow(std::max(act, 1e-5f), alpha) / std::pow(std::max(m, 1e-5f), 1.f - alpha), 1e-5f);
        };
        auto colMax = [&](ql::LinearKind k, Eigen::Index j) {
            const auto w = f.w[k];
            float m = -INFINITY;
            for (Eigen::Index i = 0; i < w.rows(); ++i) m = std::max(m, w(i, j));
            return m;
        };
        for (Eigen::Index j = 0; j < c.hidden; ++j) {
            QVERIFY(std::abs(s.qkv(j) - expected(a[0](j), colMax(ql::LinearKind::Q, j))) <= 1e-6f * s.qkv(j));
            QVERIFY(std::abs(s.fc1(j) - expected(a[2](j), colMax(ql::LinearKind::Up, j))) <= 1e-6f * s.fc1(j));
        }
        const int group = c.heads / c.kvHeads;
        for (int kvh = 0; kvh < c.kvHeads; ++kvh)
            for (int d = 0; d < c.headDim; ++d) {
                float act = 0, m = -INFINITY;
                for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                    act = std::max(act, a[1](h * c.headDim + d));
                    m = std::max(m, colMax(ql::LinearKind::O, h * c.headDim + d));
                }
                const float got = s.out(kvh * c.headDim + d);
                QVERIFY(std::abs(got - expected(act, m)) <= 1e-6f * got);
            }
        QCOMPARE(s.qk.size(), Eigen::Index(0)); // no quantized attention operands: nothing to learn

        std::array<bool, ql::kLinearCount> some = allTrained();
        some[size_t(ql::LinearKind::O)] = false;
        some[size_t(ql::LinearKind::Gate)] = false;
        const ql::LetScales partial = ql::initialLetScales(c, f.w, some, a, alpha);
        QVERIFY(partial.qkv.size() && !partial.out.size() && !partial.fc1.size());

        ql::LetScales tiny = s;
        tiny.qkv(0) = 3e-3f;
        tiny.qkv(1) = -4e-3f;
        ql::truncateLetScales(tiny);
        QCOMPARE(tiny.qkv(0), 1e-2f);
        QCOMPARE(tiny.qkv(1), -1e-2f);
        QCOMPARE(tiny.qkv(2), s.qkv(2));
    }

    // ∂(Σ y·dy)/∂ of the four scales and every clipping factor, with every linear clipped at W3
    // g16 (the groups' ranges following the transformed weights) and every input fake-quantized
    // at 4 bits per token: equal to torch autograd's within 1e-4 relative per tensor.
    void gradientsMatchTorch()
    {
        if (!qltest::torchAvailable())
            QSKIP("torch is missing: /usr/bin/python3 cannot import torch (cmake/install-deps.sh installs "
                  "python3-torch)");
        const ql::ModelConfig c = qltest::blockConfig();
        qltest::FixtureBlock f = qltest::makeBlock(c, false, 11);
        setActivationQuant(f.w, 4);
        std::mt19937 rng(12);
        ql::OmniQuantOptions o;
        o.setAll({3, 16, false});
        ql::BlockClipping clip;
        clip.let = randomScales(c, 0.5f, 2.f, rng);
        std::uniform_real_distribution<float> u(0.5f, 4.f);
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const Eigen::Index g = (f.w[ql::LinearKind(k)].cols() + 15) / 16;
            clip.gamma[size_t(k)].resize(f.w[ql::LinearKind(k)].rows(), g);
            clip.beta[size_t(k)].resize(f.w[ql::LinearKind(k)].rows(), g);
            for (float& v : clip.gamma[size_t(k)].reshaped()) v = u(rng);
            for (float& v : clip.beta[size_t(k)].reshaped()) v = u(rng);
        }
        ql::BlockWeights t, q;
        ql::applyLet(c, f.w, clip.let, t);
        ql::applyClipping(c, f.w, clip, o, q);
        ql::BlockBackward bb(c);
        Eigen::MatrixXf y, dx;
        QVERIFY(bb.forward(q, f.x, y));
        ql::BlockGradients g;
        g.reset(q);
        bb.backward(q, f.dy, dx, &g);
        std::array<RowMatrix, ql::kLinearCount> dT;
        std::array<Eigen::MatrixXf, ql::kLinearCount> dGamma, dBeta;
        for (int k = 0; k < ql::kLinearCount; ++k) {
            dGamma[size_t(k)] = Eigen::MatrixXf::Zero(clip.gamma[size_t(k)].rows(), clip.gamma[size_t(k)].cols());
            dBeta[size_t(k)] = dGamma[size_t(k)];
            const RowMatrix& dW = g.weight[size_t(k)];
            ql::ClippedFakeQuant::backward(t[ql::LinearKind(k)], *o.specs[size_t(k)], clip.gamma[size_t(k)],
                                           clip.beta[size_t(k)], ql::ConstRowMap(dW.data(), dW.rows(), dW.cols()),
                                           dGamma[size_t(k)], dBeta[size_t(k)], &dT[size_t(k)], true);
        }
        ql::LetScales dLet;
        ql::letBackward(c, f.w, t, clip.let, g.attnNorm, g.mlpNorm, dT, g.bias, dLet);

        qltest::Exchange ex(m_tmp.path());
        ex.config() = {{"heads", c.heads}, {"kv_heads", c.kvHeads}, {"head_dim", c.headDim},
                       {"eps", c.rmsEps},  {"theta", c.ropeTheta},  {"bits", 3},
                       {"group", 16},      {"act_bits", 4}};
        ex.put("x", f.x);
        ex.put("dy", f.dy);
        ex.putVector("attn_norm", f.w.attnNorm);
        ex.putVector("mlp_norm", f.w.mlpNorm);
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const std::string n = qltest::kTorchLinearNames[k];
            ex.put(n, f.w[ql::LinearKind(k)]);
            if (f.w.bias[size_t(k)].size()) ex.putVector("b_" + n, f.w.bias[size_t(k)]);
            ex.put("gamma_" + n, RowMatrix(clip.gamma[size_t(k)]));
            ex.put("beta_" + n, RowMatrix(clip.beta[size_t(k)]));
        }
        putScales(ex, clip.let);
        QVERIFY(ex.run("let"));
        QVERIFY2(qltest::relError(RowMatrix(y), ex.ref("y")) < 1e-5,
                 qPrintable(QString::number(qltest::relError(RowMatrix(y), ex.ref("y")))));
        const auto scales = std::as_const(dLet).all();
        for (size_t i = 0; i < 3; ++i) {
            const double e = qltest::relError(RowMatrix(*scales[i]), ex.ref(std::string("d_s_") + kScaleNames[i]));
            qInfo("d %s: relative error %.3g", kScaleNames[i], e);
            QVERIFY2(e < 1e-4, kScaleNames[i]);
        }
        // Without quantized attention operands the loss does not depend on qk: row-wise grids
        // scale with their rows, and q·k is unchanged. Both gradients vanish against the others'.
        const double qkOurs = dLet.qk.cwiseAbs().maxCoeff(), qkRef = ex.ref("d_s_qk").cwiseAbs().maxCoeff();
        const double scale = dLet.qkv.cwiseAbs().maxCoeff();
        qInfo("max |d qk|: %.3g (torch %.3g) against max |d qkv| %.3g", qkOurs, qkRef, scale);
        QVERIFY(qkOurs < 1e-4 * scale && qkRef < 1e-6 * scale);
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const std::string n = qltest::kTorchLinearNames[k];
            const double eg = qltest::relError(RowMatrix(dGamma[size_t(k)]), ex.ref("d_gamma_" + n));
            const double eb = qltest::relError(RowMatrix(dBeta[size_t(k)]), ex.ref("d_beta_" + n));
            QVERIFY2(eg < 1e-4 && eb < 1e-4, qPrintable(QString("%1: γ %2, β %3").arg(n.c_str()).arg(eg).arg(eb)));
        }
    }

    // Two epochs over three windows of W4 g16 with 4-bit activations, LET and the augmented loss:
    // the scales, the clipping factors and the epochs' mean loss follow torch's AdamW (two
    // parameter groups at 5e-3 and 1e-2) and OmniQuant's truncation.
    void trainingMatchesTorch()
    {
        if (!qltest::torchAvailable())
            QSKIP("torch is missing: /usr/bin/python3 cannot import torch (cmake/install-deps.sh installs "
                  "python3-torch)");
        const ql::ModelConfig c = qltest::blockConfig();
        qltest::FixtureBlock f = qltest::makeBlock(c, false, 21);
        const qltest::Windows win = qltest::makeWindows(c, f.w, 3, 16, 4);
        setActivationQuant(f.w, 4);
        ql::OmniQuantOptions o;
        o.setAll({4, 16, false});
        o.epochs = 2;
        o.let = true;
        o.augLoss = true;
        std::mt19937 rng(22);
        o.actAbsmax[0] = qltest::randomMatrix(c.hidden, 1, 2.f, rng).col(0).cwiseAbs();
        o.actAbsmax[1] = qltest::randomMatrix(c.heads * c.headDim, 1, 2.f, rng).col(0).cwiseAbs();
        o.actAbsmax[2] = qltest::randomMatrix(c.hidden, 1, 2.f, rng).col(0).cwiseAbs();
        auto clip = ql::trainBlockClipping(c, f.w, win.quantInputs, win.targets, o);
        QVERIFY2(clip, clip ? "" : clip.error().message.c_str());

        qltest::Exchange ex(m_tmp.path());
        qltest::putTrainingBlock(ex, c, f.w, win);
        ex.config().update({{"bits", 4},
                            {"group", 16},
                            {"epochs", 2},
                            {"lr", 1e-2},
                            {"init", 4.0},
                            {"act_bits", 4},
                            {"let", true},
                            {"let_lr", 5e-3},
                            {"aug", true}});
        putScales(ex, ql::initialLetScales(c, f.w, allTrained(), o.actAbsmax, o.alpha));
        QVERIFY(ex.run("omniquant"));
        const auto& losses = ex.ref("epoch_loss");
        for (int e = 0; e < 2; ++e)
            QVERIFY2(std::abs(clip->epochLoss[size_t(e)] - losses(e, 0)) <= 1e-3 * losses(e, 0),
                     qPrintable(
                         QString("epoch %1: %2 against %3").arg(e).arg(clip->epochLoss[size_t(e)]).arg(losses(e, 0))));
        const auto scales = std::as_const(clip->let).all();
        for (size_t i = 0; i < scales.size(); ++i) {
            if (!scales[i]->size()) continue; // qk (see initialScalesFollowTheReference)
            const qltest::RowMatrixD& ref = ex.ref(std::string("s_") + kScaleNames[i]);
            const double d = (scales[i]->cast<double>() - Eigen::Map<const Eigen::VectorXd>(ref.data(), ref.size()))
                                 .cwiseAbs()
                                 .maxCoeff();
            qInfo("%s: |Δs| %.3g", kScaleNames[i], d);
            QVERIFY2(d <= 1e-4, kScaleNames[i]);
        }
        for (int k = 0; k < ql::kLinearCount; ++k) {
            const std::string n = qltest::kTorchLinearNames[k];
            const double dg = (clip->gamma[size_t(k)].cast<double>() - ex.ref("gamma_" + n)).cwiseAbs().maxCoeff();
            const double db = (clip->beta[size_t(k)].cast<double>() - ex.ref("beta_" + n)).cwiseAbs().maxCoeff();
            QVERIFY2(dg <= 1e-4 && db <= 1e-4, qPrintable(QString("%1: γ %2, β %3").arg(n.c_str()).arg(dg).arg(db)));
        }
        QVERIFY(clip->lossAfter < clip->lossBefore);
    }
};

QTEST_GUILESS_MAIN(TestLet)
#include "tst_let.moc"
