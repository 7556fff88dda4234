// AWQ as a transform: the scale search against a direct implementation written here (own fake
// quantization, own module outputs), the folds preserve the float function, the clip search
// never increases its objective and respects max_shrink, AWQ + RTN beats plain RTN on a model
// with activation outliers, and the error messages.
#include "quantlens/methods/awq.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/model/model.h"
#include "quantlens/base/params.h"
#include "transformfixture.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qltest;

namespace {

// Round-to-nearest integer quantize-dequantize of one group, written from the rules of
// groupparams.h (range widened to 0, all-zero groups use [-1, 1], ties to even).
Eigen::VectorXf naiveFakeQuant(const Eigen::VectorXf& v, int bits, bool sym)
{
    float lo = 0, hi = 0;
    for (float x : v) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    if (sym) {
        hi = std::max(-lo, hi);
        lo = -hi;
    }
    if (lo == 0 && hi == 0) {
        lo = -1;
        hi = 1;
    }
    const float maxq = float((1 << bits) - 1);
    const float scale = (hi - lo) / maxq;
    const float zero = sym ? float(1 << (bits - 1)) : std::nearbyint(-lo / scale);
    Eigen::VectorXf out(v.size());
    for (Eigen::Index i = 0; i < v.size(); ++i) {
        const float q = std::min(std::max(std::nearbyint(v[i] / scale) + zero, 0.f), maxq);
        out[i] = scale * (q - zero);
    }
    return out;
}

ql::RowMatrix naiveFakeQuantMatrix(const ql::RowMatrix& w, int bits, bool sym, int group)
{
    ql::RowMatrix out(w.rows(), w.cols());
    for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index g0 = 0; g0 < w.cols(); g0 += group) {
            const Eigen::Index n = std::min<Eigen::Index>(group, w.cols() - g0);
            out.row(r).segment(g0, n) = naiveFakeQuant(w.row(r).segment(g0, n).transpose(), bits, sym).transpose();
        }
    return out;
}

// Every window's value of one named intermediate.
std::vector<Eigen::MatrixXf> perWindow(const ql::ModelConfig& cfg, const ql::WeightSource& src,
                                       const std::vector<std::vector<int32_t>>& windows, const std::string& name)
{
    std::vector<Eigen::MatrixXf> out(windows.size());
    logitsOf(cfg, src, windows, [&](const ql::Activation& a) {
        if (a.name == name) out[size_t(a.sequence)] = a.x;
    });
    return out;
}

double mse(const std::vector<Eigen::MatrixXf>& a, const std::vector<Eigen::MatrixXf>& b)
{
    double s = 0, n = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        s += (a[i].cast<double>() - b[i].cast<double>()).squaredNorm();
        n += double(a[i].size());
    }
    return s / n;
}

// The float weights with every linear replaced by its RTN quantize-dequantize (core's quantize()).
ql::FloatWeights rtnWeights(const ql::FloatWeights& fw, const ql::FormatSpec& spec)
{
    ql::FloatWeights q = fw;
    for (int i = 0; i < q.layers(); ++i)
        for (int k = 0; k < ql::kLinearCount; ++k) {
            auto t = ql::quantize(q.linear(i, ql::LinearKind(k)), spec);
            if (!t) qFatal("%s", t.message().c_str());
            q.linear(i, ql::LinearKind(k)) = t->dequantize();
        }
    return q;
}

qlfix::ModelSpec smallSpec(int kvHeads, const char* arch = "llama")
{
    qlfix::ModelSpec m;
    m.arch = arch;
    m.hidden = 64;
    m.intermediate = 172; // down_proj's 172 inputs end in a partial group of 12 at g32
    m.heads = 4;
    m.kvHeads = kvHeads;
    m.vocab = 128;
    m.tieEmbeddings = false;
    return m;
}

// A few large norm weights give attn_in and mlp_in outlier channels, as real models have.
void injectOutliers(std::vector<qlfix::Tensor>& ts, int layers)
{
    for (int i = 0; i < layers; ++i) {
        auto& a = tensorNamed(ts, "model.layers." + std::to_string(i) + ".input_layernorm.weight").data;
        auto& m = tensorNamed(ts, "model.layers." + std::to_string(i) + ".post_attention_layernorm.weight").data;
        a[3] *= 25.f;
        a[40] *= 12.f;
        m[9] *= 25.f;
        m[50] *= 12.f;
    }
}

} // namespace

class TestAwq : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    int m_models = 0;
    ql::AwqTransform m_awq;

    ql::FloatWeights load(const qlfix::ModelSpec& spec, bool outliers)
    {
        const std::string dir = m_tmp.filePath(QString::number(m_models++)).toStdString();
        std::string err;
        auto edit = [&](std::vector<qlfix::Tensor>& ts) {
            if (outliers) injectOutliers(ts, spec.layers);
        };
        if (!writeEditedModel(dir, spec, edit, &err)) qFatal("%s", err.c_str());
        auto model = ql::Model::open(dir);
        if (!model) qFatal("%s", model.message().c_str());
        auto fw = ql::FloatWeights::load(*model);
        if (!fw) qFatal("%s", fw.message().c_str());
        return std::move(*fw);
    }

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    void scaleSearchMatchesNaive_data()
    {
        QTest::addColumn<int>("group");
        QTest::addColumn<int>("bits");
        QTest::newRow("attn_in int4 g32") << int(ql::AwqGroup::AttnIn) << 4;
        QTest::newRow("o_in int4 g32") << int(ql::AwqGroup::OIn) << 4;
        QTest::newRow("mlp_in int3 g32") << int(ql::AwqGroup::MlpIn) << 3;
        QTest::newRow("down_in int4 g32") << int(ql::AwqGroup::DownIn) << 4;
    }

    void scaleSearchMatchesNaive()
    {
        QFETCH(int, group);
        QFETCH(int, bits);
        const ql::AwqGroup g = ql::AwqGroup(group);
        const qlfix::ModelSpec spec = smallSpec(4); // MHA: v→o applies
        ql::FloatWeights fw = load(spec, true);
        const ql::FloatWeights original = fw;
        const auto windows = tokenWindows(3, 24, spec.vocab, 7);
        const int layer = 1;
        ql::AwqOptions o;
        o.weight = {"int" + std::to_string(bits) + "_asym", ql::Granularity::PerGroup, 32};
        o.grid = 10;
        auto in = ql::awqCaptureBlock(fw, layer, perWindow(fw.config(), fw, windows, "layers.1.input"));
        QVERIFY2(in.ok(), in.message().c_str());
        auto r = ql::awqSearchGroup(fw, layer, g, *in, o);
        QVERIFY2(r.ok(), r.message().c_str());
        QVERIFY(r->applied);
        for (int k = 0; k < ql::kLinearCount; ++k) // the search leaves the weights as they were
            QVERIFY(fw.linear(layer, ql::LinearKind(k)) == original.linear(layer, ql::LinearKind(k)));

        // Direct implementation: site inputs from the forward observer, loops over α.
        const char* site = ql::awqGroupSite(g);
        const auto xs = perWindow(fw.config(), fw, windows, "layers.1." + std::string(site));
        Eigen::VectorXd sx = Eigen::VectorXd::Zero(xs[0].rows());
        double tokens = 0;
        for (const auto& x : xs) {
            for (Eigen::Index c = 0; c < x.cols(); ++c)
                for (Eigen::Index j = 0; j < x.rows(); ++j) sx[j] += std::abs(double(x(j, c)));
            tokens += double(x.cols());
        }
        sx /= tokens;
        std::vector<ql::LinearKind> kinds;
        switch (g) {
        case ql::AwqGroup::AttnIn: kinds = {ql::LinearKind::Q, ql::LinearKind::K, ql::LinearKind::V}; break;
        case ql::AwqGroup::OIn: kinds = {ql::LinearKind::O}; break;
        case ql::AwqGroup::MlpIn: kinds = {ql::LinearKind::Gate, ql::LinearKind::Up}; break;
        case ql::AwqGroup::DownIn: kinds = {ql::LinearKind::Down}; break;
        }
        auto mlp = [&](const ql::RowMatrix& wg, const ql::RowMatrix& wu, const Eigen::MatrixXf& x) {
            const Eigen::MatrixXd gt = wg.cast<double>() * x.cast<double>(), ut = wu.cast<double>() * x.cast<double>();
            Eigen::MatrixXd h(gt.rows(), gt.cols());
            for (Eigen::Index i = 0; i < h.size(); ++i) h(i) = gt(i) / (1 + std::exp(-gt(i))) * ut(i);
            return Eigen::MatrixXd(original.linear(layer, ql::LinearKind::Down).cast<double>() * h);
        };
        const std::string attnOut = "layers.1.attn_out";
        const auto floatAttn = perWindow(fw.config(), fw, windows, attnOut);
        double bestLoss = INFINITY, bestAlpha = -1;
        Eigen::VectorXd bestS;
        std::vector<double> losses;
        for (int i = 0; i < o.grid; ++i) {
            const double alpha = double(i) / o.grid;
            Eigen::VectorXd s(sx.size());
            for (Eigen::Index j = 0; j < s.size(); ++j) s[j] = std::max(std::pow(sx[j], alpha), 1e-4);
            s /= std::sqrt(s.maxCoeff() * s.minCoeff());
            std::vector<ql::RowMatrix> trial;
            for (auto k : kinds) {
                const ql::RowMatrix ws = original.linear(layer, k) * s.cast<float>().asDiagonal();
                trial.push_back(naiveFakeQuantMatrix(ws, bits, false, 32) *
                                s.cast<float>().cwiseInverse().asDiagonal());
            }
            double sum = 0, n = 0;
            if (g == ql::AwqGroup::AttnIn) {
                ql::FloatWeights q = original;
                for (size_t k = 0; k < kinds.size(); ++k) q.linear(layer, kinds[k]) = trial[k];
                const auto out = perWindow(q.config(), q, windows, attnOut);
                sum = mse(out, floatAttn);
                n = 1;
            } else {
                for (const auto& x : xs) {
                    Eigen::MatrixXd ref, got;
                    if (g == ql::AwqGroup::MlpIn) {
                        ref = mlp(original.linear(layer, ql::LinearKind::Gate),
                                  original.linear(layer, ql::LinearKind::Up), x);
                        got = mlp(trial[0], trial[1], x);
                    } else {
                        ref = original.linear(layer, kinds[0]).cast<double>() * x.cast<double>();
                        got = trial[0].cast<double>() * x.cast<double>();
                    }
                    sum += (got - ref).squaredNorm();
                    n += double(ref.size());
                }
            }
            losses.push_back(sum / n);
            if (sum / n < bestLoss) {
                bestLoss = sum / n;
                bestAlpha = alpha;
                bestS = s;
            }
        }
        qInfo("%s: best α %.2f (core %.2f), loss %.4g -> %.4g", site, bestAlpha, r->alpha, losses[0], bestLoss);
        QCOMPARE(r->losses.size(), losses.size());
        for (size_t i = 0; i < losses.size(); ++i)
            QVERIFY2(std::abs(r->losses[i] - losses[i]) <= 1e-3 * losses[i],
                     qPrintable(QStringLiteral("α index %1: %2 vs %3").arg(i).arg(r->losses[i]).arg(losses[i])));
        QCOMPARE(r->alpha, bestAlpha);
        QVERIFY((r->scales.cast<double>() - bestS).cwiseAbs().maxCoeff() <= 1e-6 * bestS.cwiseAbs().maxCoeff());
        QCOMPARE(r->lossPlain, r->losses[0]);
        QVERIFY(r->lossBest <= r->lossPlain);
    }

    void foldPreservesFunction_data()
    {
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<QString>("arch");
        QTest::newRow("llama mha") << 4 << QStringLiteral("llama");
        QTest::newRow("llama gqa") << 2 << QStringLiteral("llama");
        QTest::newRow("qwen2 mha qkv bias") << 4 << QStringLiteral("qwen2");
    }

    void foldPreservesFunction()
    {
        QFETCH(int, kvHeads);
        QFETCH(QString, arch);
        const std::string a = arch.toStdString();
        const qlfix::ModelSpec spec = smallSpec(kvHeads, a.c_str());
        ql::FloatWeights fw = load(spec, true);
        const ql::FloatWeights original = fw;
        const auto calib = tokenWindows(3, 24, spec.vocab, 11), eval = tokenWindows(2, 20, spec.vocab, 3);
        ql::AwqOptions o;
        o.weight = {"int4_asym", ql::Granularity::PerGroup, 32};
        o.clip = false;
        auto r = ql::applyAwq(fw, calib, o);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(int(r->blocks.size()), spec.layers);
        bool moved = false;
        for (const auto& b : r->blocks) {
            QCOMPARE(b.groups.size(), size_t(ql::kAwqGroupCount));
            QVERIFY(b.clips.empty());
            const auto& vo = b.groups[size_t(ql::AwqGroup::OIn)];
            QCOMPARE(vo.applied, kvHeads == spec.heads);
            if (!vo.applied) QVERIFY(vo.skipReason.find("grouped-query") != std::string::npos);
            for (const auto& gr : b.groups) moved = moved || (gr.applied && gr.alpha > 0);
        }
        QVERIFY(moved); // some scale differs from 1, so the check below tests the folds
        const double err = maxRelError(logitsOf(fw.config(), fw, eval), logitsOf(original.config(), original, eval));
        qInfo("max relative logit change %.3g", err);
        QVERIFY2(err < 1e-4, qPrintable(QString::number(err)));
    }

    void clipSearch_data()
    {
        QTest::addColumn<double>("maxShrink");
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("group");
        QTest::newRow("0.5 int4 g32") << 0.5 << 4 << 32;
        QTest::newRow("0.2 int3 g32") << 0.2 << 3 << 32;
        QTest::newRow("0.5 int4 per channel") << 0.5 << 4 << 0;
    }

    void clipSearch()
    {
        QFETCH(double, maxShrink);
        QFETCH(int, bits);
        QFETCH(int, group);
        // Heavy-tailed weights (a few large values per row) are where clipping pays.
        ql::RowMatrix w = ql::RowMatrix::Random(40, 100);
        for (Eigen::Index r = 0; r < w.rows(); ++r) w(r, (r * 7) % w.cols()) *= 6.f;
        const Eigen::MatrixXf x = Eigen::MatrixXf::Random(100, 300);
        const ql::RowMatrix orig = w;
        ql::AwqOptions o;
        o.weight = {"int" + std::to_string(bits) + "_asym",
                    group > 0 ? ql::Granularity::PerGroup : ql::Granularity::PerChannel, group};
        o.maxShrink = maxShrink;
        auto r = ql::awqClipLinear(w, x, o);
        QVERIFY2(r.ok(), r.message().c_str());
        const int gs = group > 0 ? group : 100;
        // The objective of a (row, group) with weights v, computed here.
        auto objective = [&](Eigen::Index row, Eigen::Index g0, const Eigen::VectorXf& v) {
            const Eigen::Index n = v.size();
            const Eigen::VectorXf q = naiveFakeQuant(v, bits, false);
            const Eigen::VectorXf w0 = orig.row(row).segment(g0, n).transpose();
            const Eigen::MatrixXd xg = x.middleRows(g0, n).cast<double>();
            return (xg.transpose() * (q.cast<double>() - w0.cast<double>())).squaredNorm() / double(x.cols());
        };
        double before = 0, after = 0;
        int64_t clipped = 0;
        for (Eigen::Index row = 0; row < w.rows(); ++row)
            for (Eigen::Index g0 = 0; g0 < w.cols(); g0 += gs) {
                const Eigen::Index n = std::min<Eigen::Index>(gs, w.cols() - g0);
                const Eigen::VectorXf v0 = orig.row(row).segment(g0, n).transpose(),
                                      v1 = w.row(row).segment(g0, n).transpose();
                const float m0 = v0.cwiseAbs().maxCoeff(), m1 = v1.cwiseAbs().maxCoeff();
                QVERIFY(m1 <= m0);
                QVERIFY2(m1 >= (1 - maxShrink) * m0 * (1 - 1e-6),
                         qPrintable(QStringLiteral("%1 < %2").arg(m1).arg(m0)));
                // Clipping is a clamp to a symmetric range, nothing else.
                QVERIFY((v1 - v0.cwiseMax(-m1).cwiseMin(m1)).cwiseAbs().maxCoeff() == 0.f);
                const double e0 = objective(row, g0, v0), e1 = objective(row, g0, v1);
                QVERIFY2(e1 <= e0 * (1 + 1e-5), qPrintable(QStringLiteral("row %1: %2 > %3").arg(row).arg(e1).arg(e0)));
                before += e0;
                after += e1;
                clipped += m1 < m0;
            }
        qInfo("clip objective %.4g -> %.4g, %lld of %lld groups clipped, min ratio %.2f", before, after,
              (long long)r->groupsClipped, (long long)r->groups, r->minRatio);
        QVERIFY(r->errorAfter <= r->errorBefore);
        QVERIFY(std::abs(r->errorBefore - before) <= 1e-3 * before);
        QVERIFY(std::abs(r->errorAfter - after) <= 1e-3 * after);
        QCOMPARE(r->groupsClipped, clipped);
        QVERIFY(clipped > 0 && after < before);
        QVERIFY(r->minRatio >= 1 - maxShrink - 1e-6);
    }

    void awqBeatsRtnOnOutliers_data()
    {
        QTest::addColumn<int>("bits");
        QTest::newRow("w3 g32") << 3;
        QTest::newRow("w4 g32") << 4;
    }

    void awqBeatsRtnOnOutliers()
    {
        QFETCH(int, bits);
        const qlfix::ModelSpec spec = smallSpec(2);
        const ql::FloatWeights original = load(spec, true);
        const auto calib = tokenWindows(4, 32, spec.vocab, 21), eval = tokenWindows(3, 32, spec.vocab, 77);
        const ql::FormatSpec fs{"int" + std::to_string(bits) + "_asym", ql::Granularity::PerGroup, 32};
        ql::FloatWeights awq = original;
        ql::TransformContext ctx;
        ctx.windows = &calib;
        auto applied = m_awq.apply(awq, ctx, {{"bits", int64_t(bits)}, {"group", int64_t(32)}});
        QVERIFY2(applied.ok(), applied.message().c_str());
        const ql::FloatWeights rtn = rtnWeights(original, fs), awqRtn = rtnWeights(awq, fs);
        for (int i = 0; i < spec.layers; ++i) {
            const std::string name = "layers." + std::to_string(i) + ".output";
            const auto ref = perWindow(original.config(), original, eval, name);
            const double eRtn = mse(perWindow(rtn.config(), rtn, eval, name), ref);
            const double eAwq = mse(perWindow(awqRtn.config(), awqRtn, eval, name), ref);
            qInfo("W%d block %d output MSE: rtn %.4g, awq+rtn %.4g", bits, i, eRtn, eAwq);
            QVERIFY2(eAwq < eRtn, qPrintable(QStringLiteral("block %1: %2 >= %3").arg(i).arg(eAwq).arg(eRtn)));
        }
    }

    void declarations()
    {
        QCOMPARE(m_awq.id(), std::string("awq"));
        QVERIFY(m_awq.needsCalibration());
        QVERIFY(!m_awq.needsStatistics());
        auto p = ql::completeParams(m_awq.parameters(), {}, "awq");
        QVERIFY(p.ok());
        QCOMPARE(ql::paramInt(*p, "bits"), int64_t(4));
        QVERIFY(!ql::paramBool(*p, "sym"));
        QCOMPARE(ql::paramInt(*p, "group"), int64_t(128));
        QCOMPARE(ql::paramInt(*p, "alpha_grid"), int64_t(20));
        QVERIFY(ql::paramBool(*p, "clip"));
        QCOMPARE(ql::paramDouble(*p, "max_shrink"), 0.5);
        QCOMPARE(ql::paramInt(*p, "clip_grid"), int64_t(20));
    }

    void errorsHaveMessages()
    {
        const qlfix::ModelSpec spec = smallSpec(2);
        ql::FloatWeights fw = load(spec, false);
        ql::FloatWeights original = fw;
        auto contains = [](const auto& r, const char* text) {
            if (r.ok()) return false;
            qInfo("%s", r.message().c_str());
            return QString::fromStdString(r.message()).contains(QLatin1String(text));
        };
        QVERIFY(contains(m_awq.apply(fw, {}, {}), "awq needs calibration windows"));
        const std::vector<std::vector<int32_t>> none, calib = tokenWindows(1, 12, spec.vocab, 1);
        ql::TransformContext ctx;
        ctx.windows = &none;
        QVERIFY(contains(m_awq.apply(fw, ctx, {}), "awq needs calibration windows"));
        ctx.windows = &calib;
        QVERIFY(contains(m_awq.apply(fw, ctx, {{"bits", int64_t(9)}}), "bits\" must be in"));
        QVERIFY(contains(m_awq.apply(fw, ctx, {{"alpha_grid", int64_t(1)}}), "alpha_grid\" must be in"));
        QVERIFY(contains(m_awq.apply(fw, ctx, {{"max_shrink", 0.99}}), "max_shrink\" must be in"));
        QVERIFY(contains(m_awq.apply(fw, ctx, {{"clip", 1.0}}), "clip"));
        QVERIFY(contains(m_awq.apply(fw, ctx, {{"alfa", 0.5}}), "parameter \"alfa\" is unknown"));
        QVERIFY(contains(ql::applyAwq(fw, none, {}), "awq needs calibration data"));
        ql::AwqOptions o;
        o.weight.granularity = ql::Granularity::PerTensor;
        QVERIFY(contains(ql::applyAwq(fw, calib, o), "per-tensor weight quantization is not supported"));
        o = {};
        o.weight.format = "int9_asym";
        QVERIFY(contains(ql::applyAwq(fw, calib, o), "int9_asym"));
        o = {};
        o.maxShrink = 1.0;
        QVERIFY(contains(ql::applyAwq(fw, calib, o), "max_shrink must be in [0, 1)"));
        for (int k = 0; k < ql::kLinearCount; ++k) // every refusal left the weights alone
            QVERIFY(fw.linear(0, ql::LinearKind(k)) == original.linear(0, ql::LinearKind(k)));
        QVERIFY(fw.blockWeights(0).attnNorm == original.blockWeights(0).attnNorm);
    }
};

QTEST_GUILESS_MAIN(TestAwq)
#include "tst_awq.moc"
