// Function-preserving transforms (SmoothQuant, Hadamard rotation) and the forward-pass hooks
// they use: logits before and after each transform (against the forward pass on the original
// model and the float64 naive reference), the scales against a naive formula, the effect on
// the activations they target, and the error messages.
#include "quantlens/quant/actquant.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/model/model.h"
#include "quantlens/base/params.h"
#include "quantlens/methods/quarot.h"
#include "quantlens/methods/smoothquant.h"
#include "reference/naivellama.h"
#include "transformfixture.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>

using namespace qltest;

namespace {

struct Shape {
    const char* name;
    const char* arch;
    int hidden, intermediate, heads, kvHeads;
    bool tied, bias;
};
// Power-of-two and other widths (48 → Paley 12 ⊗ 4, head_dim 12; 172 → random orthogonal 43 ⊗ 4;
// 176 → Paley 44 ⊗ 4), GQA and MHA, q/k/v biases (qwen2), o_proj bias (llama attention_bias).
const Shape kShapes[] = {
    {"llama gqa 64-172 tied", "llama", 64, 172, 4, 2, true, false},
    {"llama 48-172 head 12", "llama", 48, 172, 4, 2, true, false},
    {"llama 96-176 head 16", "llama", 96, 176, 6, 2, false, false},
    {"qwen2 qkv bias untied", "qwen2", 64, 172, 4, 2, false, false},
    {"llama mha o-bias untied", "llama", 64, 128, 4, 4, false, true},
};

qlfix::ModelSpec specOf(const Shape& s)
{
    qlfix::ModelSpec m;
    m.arch = s.arch;
    m.hidden = s.hidden;
    m.intermediate = s.intermediate;
    m.heads = s.heads;
    m.kvHeads = s.kvHeads;
    m.tieEmbeddings = s.tied;
    m.qkvBias = s.bias;
    m.vocab = 128;
    return m;
}

// One step of a transform chain.
struct Step {
    std::string id;
    ql::ParamMap params;
};

// vocab × tokens logits from the float64 naive forward.
Eigen::MatrixXf naiveMatrix(const qlfix::ModelSpec& spec, const std::vector<qlfix::Tensor>& ts,
                            const std::vector<int32_t>& ids)
{
    const auto rows = naiveLogits(spec, ts, ids);
    Eigen::MatrixXf m(spec.vocab, Eigen::Index(rows.size()));
    for (size_t t = 0; t < rows.size(); ++t)
        for (int v = 0; v < spec.vocab; ++v) m(v, Eigen::Index(t)) = float(rows[t][size_t(v)]);
    return m;
}

} // namespace

class TestTransforms : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    int m_models = 0;
    ql::SmoothQuantTransform m_smooth;
    ql::HadamardRotationTransform m_hadamard;
    std::map<int, std::vector<Eigen::MatrixXf>> m_naive; // float64 reference logits per shape

    std::string newModel(const qlfix::ModelSpec& spec,
                         const std::function<void(std::vector<qlfix::Tensor>&)>& edit = {})
    {
        const std::string dir = m_tmp.filePath(QString::number(m_models++)).toStdString();
        std::string err;
        if (!writeEditedModel(dir, spec, edit, &err)) qWarning("%s", err.c_str());
        return dir;
    }
    const ql::Transform* lookup(const std::string& id) const
    {
        return id == "smoothquant" ? static_cast<const ql::Transform*>(&m_smooth) : &m_hadamard;
    }
    // Applies the steps in order; statistics are measured on the weights as they are before each step.
    ql::Expected<void> applyChain(ql::FloatWeights& fw, const std::vector<Step>& steps, int vocab)
    {
        const auto calib = tokenWindows(3, 32, vocab, 99);
        for (const Step& s : steps) {
            const ql::Transform* t = lookup(s.id);
            std::vector<ql::SiteStats> sites;
            ql::TransformContext ctx;
            if (t->needsStatistics()) {
                sites = siteAbsmax(fw.config(), fw, calib);
                ctx.sites = &sites;
            }
            QL_TRY(t->apply(fw, ctx, s.params));
        }
        return {};
    }

private slots:
    void initTestCase() { QVERIFY(m_tmp.isValid()); }

    void noHookPathIsBitwiseIdentical()
    {
        const qlfix::ModelSpec spec = specOf(kShapes[0]);
        auto model = ql::Model::open(newModel(spec));
        QVERIFY2(model.ok(), model.message().c_str());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY2(fw.ok(), fw.message().c_str());
        QVERIFY(fw->validate().ok());
        const auto windows = tokenWindows(2, 30, spec.vocab, 5);
        const auto a = logitsOf(model->config(), *model, windows), b = logitsOf(fw->config(), *fw, windows);
        QCOMPARE(b.size(), a.size());
        for (size_t s = 0; s < a.size(); ++s) QVERIFY(a[s] == b[s]); // same weights, same path: same bits
        ql::FloatWeights copy = *fw;                                 // a copy serves its own storage
        copy.linear(0, ql::LinearKind::Q).setZero();
        QVERIFY(logitsOf(fw->config(), *fw, windows)[0] == a[0]);
        QVERIFY(!(logitsOf(copy.config(), copy, windows)[0] == a[0]));
    }

    void preservesFunction_data()
    {
        QTest::addColumn<int>("shape");
        QTest::addColumn<QString>("chain");
        const QStringList chains = {"smoothquant 0.5", "smoothquant 0.85", "hadamard", "hadamard offline",
                                    "hadamard+smoothquant"};
        for (int s = 0; s < int(std::size(kShapes)); ++s)
            for (const QString& c : chains)
                QTest::newRow(qPrintable(QStringLiteral("%1 / %2").arg(kShapes[s].name, c))) << s << c;
    }
    void preservesFunction()
    {
        QFETCH(int, shape);
        QFETCH(QString, chain);
        std::vector<Step> steps;
        if (chain == "smoothquant 0.5") steps = {{"smoothquant", {{"alpha", 0.5}}}};
        if (chain == "smoothquant 0.85") steps = {{"smoothquant", {{"alpha", 0.85}}}};
        if (chain == "hadamard") steps = {{"hadamard", {}}};
        if (chain == "hadamard offline")
            steps = {{"hadamard", {{"online_down", false}, {"rotate_ov", false}, {"seed", int64_t(3)}}}};
        if (chain == "hadamard+smoothquant") steps = {{"hadamard", {{"seed", int64_t(7)}}}, {"smoothquant", {}}};
        const qlfix::ModelSpec spec = specOf(kShapes[shape]);
        auto model = ql::Model::open(newModel(spec));
        QVERIFY2(model.ok(), model.message().c_str());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        auto applied = applyChain(*fw, steps, spec.vocab);
        QVERIFY2(applied.ok(), applied.message().c_str());
        QVERIFY2(fw->validate().ok(), fw->validate().message().c_str());

        const auto windows = tokenWindows(2, 24, spec.vocab, 11);
        const auto before = logitsOf(model->config(), *model, windows);
        const auto after = logitsOf(fw->config(), *fw, windows);
        ql::BlockWeights orig;
        QVERIFY(model->block(0, orig).ok());
        const double moved = (fw->linear(0, ql::LinearKind::Q) - orig[ql::LinearKind::Q]).norm() /
                             orig[ql::LinearKind::Q].norm();
        const double err = maxRelError(after, before);
        qInfo("q_proj changed by %.2f (relative); max |Δlogit| / max |logit| vs the original forward: %.3g", moved,
              err);
        QVERIFY(moved > 0.05);                                  // the weights really are different ...
        QVERIFY2(err < 1e-4, qPrintable(QString::number(err))); // ... the function is not
        // Against the float64 naive forward over the generator's own values (computed once per shape).
        std::vector<Eigen::MatrixXf>& naive = m_naive[shape];
        if (naive.empty()) {
            const auto tensors = qlfix::makeWeights(spec);
            for (const auto& w : windows) naive.push_back(naiveMatrix(spec, tensors, w));
        }
        const double errNaive = maxRelError(after, naive);
        qInfo("vs the float64 reference: %.3g (untransformed: %.3g)", errNaive, maxRelError(before, naive));
        QVERIFY2(errNaive < 1e-4, qPrintable(QString::number(errNaive)));

        if (chain.startsWith("hadamard")) {
            // Norms folded; the tied head unties unless the final norm was all ones (never in the fixture).
            QVERIFY(fw->blockWeights(0).attnNorm.isOnes() || chain.contains("smoothquant"));
            QVERIFY(fw->finalNormWeight().isOnes());
            QVERIFY(!fw->lmHeadTied());
            QCOMPARE(bool(fw->blockWeights(0).downInputRotation), chain != "hadamard offline");
        }
    }

    void smoothQuantScalesMatchNaiveFormula()
    {
        qlfix::ModelSpec spec = specOf(kShapes[0]);
        // Outlier channels at the norm-fed sites, as in real models: a few large norm weights.
        auto model = ql::Model::open(newModel(spec, [&](std::vector<qlfix::Tensor>& ts) {
            for (int i = 0; i < spec.layers; ++i) {
                tensorNamed(ts, "model.layers." + std::to_string(i) + ".input_layernorm.weight").data[5] *= 30.f;
                tensorNamed(ts, "model.layers." + std::to_string(i) + ".post_attention_layernorm.weight").data[9] *=
                    30.f;
            }
        }));
        QVERIFY(model.ok());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        ql::FloatWeights original = *fw;
        const auto calib = tokenWindows(3, 32, spec.vocab, 99);
        const auto sites = siteAbsmax(fw->config(), *fw, calib);
        const double alpha = 0.6;
        auto scales = ql::smoothQuant(*fw, sites, {alpha});
        QVERIFY2(scales.ok(), scales.message().c_str());
        QCOMPARE(int(scales->size()), 2 * spec.layers);

        auto siteOf = [&](const std::vector<ql::SiteStats>& ss, const std::string& n) -> const ql::SiteStats& {
            return *std::find_if(ss.begin(), ss.end(), [&](const ql::SiteStats& s) { return s.name == n; });
        };
        auto ratio = [](const Eigen::VectorXf& a) { // max / median channel absmax
            std::vector<float> v(a.data(), a.data() + a.size());
            std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
            return double(a.maxCoeff()) / double(v[v.size() / 2]);
        };
        const auto smoothedSites = siteAbsmax(fw->config(), *fw, calib);
        for (int i = 0; i < spec.layers; ++i)
            for (bool attn : {true, false}) {
                const std::string name = "layers." + std::to_string(i) + (attn ? ".attn_in" : ".mlp_in");
                const std::vector<ql::LinearKind> kinds = attn ? std::vector{ql::LinearKind::Q, ql::LinearKind::K,
                                                                             ql::LinearKind::V}
                                                               : std::vector{ql::LinearKind::Gate, ql::LinearKind::Up};
                const Eigen::VectorXf& a = siteOf(sites, name).absmax;
                const Eigen::VectorXf& s = scales->at(name);
                for (int j = 0; j < spec.hidden; ++j) {
                    double w = 0;
                    for (auto k : kinds)
                        for (int r = 0; r < original.linear(i, k).rows(); ++r)
                            w = std::max(w, double(std::abs(original.linear(i, k)(r, j))));
                    const double naive = std::max(
                        std::pow(double(a[j]), alpha) / std::pow(std::max(w, 1e-5), 1 - alpha), 1e-5);
                    QVERIFY2(std::abs(s[j] - naive) <= 1e-6 * naive,
                             qPrintable(QStringLiteral("%1 channel %2").arg(name.c_str()).arg(j)));
                }
                const Eigen::VectorXf& g0 = attn ? original.blockWeights(i).attnNorm : original.blockWeights(i).mlpNorm;
                const Eigen::VectorXf& g1 = attn ? fw->blockWeights(i).attnNorm : fw->blockWeights(i).mlpNorm;
                QVERIFY((g1 - g0.cwiseQuotient(s)).cwiseAbs().maxCoeff() <= 1e-6 * g0.cwiseAbs().maxCoeff());
                for (auto k : kinds)
                    QVERIFY((fw->linear(i, k) - original.linear(i, k) * s.asDiagonal()).cwiseAbs().maxCoeff() < 1e-6);
                // The outlier channel no longer dominates the site: a_j becomes a_j^(1-α) · w_j^(1-α).
                const double r0 = ratio(a), r1 = ratio(siteOf(smoothedSites, name).absmax);
                qInfo("%s: absmax max/median %.1f -> %.1f", name.c_str(), r0, r1);
                QVERIFY2(r0 > 10 && r1 < r0 / 3,
                         qPrintable(QStringLiteral("%1: %2 -> %3").arg(name.c_str()).arg(r0).arg(r1)));
            }
    }

    void onlineHadamardLowersDownInputKurtosis()
    {
        qlfix::ModelSpec spec = specOf(kShapes[0]);
        // A massive channel at down_in: one up_proj row made 40x larger in every block.
        auto model = ql::Model::open(newModel(spec, [&](std::vector<qlfix::Tensor>& ts) {
            for (int i = 0; i < spec.layers; ++i) {
                auto& up = tensorNamed(ts, "model.layers." + std::to_string(i) + ".mlp.up_proj.weight");
                for (int c = 0; c < spec.hidden; ++c) up.data[size_t(7 * spec.hidden + c)] *= 40.f;
            }
        }));
        QVERIFY(model.ok());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        ql::FloatWeights offline = *fw;
        const auto windows = tokenWindows(3, 32, spec.vocab, 21);
        QVERIFY(m_hadamard.apply(*fw, {}, {}).ok());
        QVERIFY(m_hadamard.apply(offline, {}, {{"online_down", false}}).ok());
        for (int i = 0; i < spec.layers; ++i) {
            const std::string site = "layers." + std::to_string(i) + ".down_in";
            const Eigen::MatrixXf x0 = siteValues(model->config(), *model, windows, site);
            const Eigen::MatrixXf x1 = siteValues(fw->config(), *fw, windows, site);
            const Eigen::MatrixXf x2 = siteValues(offline.config(), offline, windows, site);
            const double k0 = excessKurtosis(x0), k1 = excessKurtosis(x1);
            qInfo("%s: excess kurtosis %.1f -> %.2f with the online Hadamard (%s)", site.c_str(), k0, k1,
                  ql::HadamardRotation::create(spec.intermediate, 0)->construction().c_str());
            QVERIFY2(k0 > 20 && k1 < k0 / 4, qPrintable(QStringLiteral("%1 -> %2").arg(k0).arg(k1)));
            // Observers see what down_proj reads: the rotated input, and without the online
            // rotation the original values (the residual rotation is undone by o/down and the norms).
            QVERIFY((x2 - x0).cwiseAbs().maxCoeff() <= 1e-4 * x0.cwiseAbs().maxCoeff());
            QVERIFY(std::abs(x1.squaredNorm() / x0.squaredNorm() - 1) < 1e-4); // a rotation keeps the energy
        }
    }

    void rotationIsOrthogonal_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<QString>("construction");
        QTest::newRow("1") << 1 << "Sylvester 1";
        QTest::newRow("64") << 64 << "Sylvester 64";
        QTest::newRow("12") << 12 << "Paley I 12 ⊗ Sylvester 1";
        QTest::newRow("20") << 20 << "Paley I 20 ⊗ Sylvester 1";
        QTest::newRow("28") << 28 << "Paley II 28 ⊗ Sylvester 1";
        QTest::newRow("36") << 36 << "Paley II 36 ⊗ Sylvester 1";
        QTest::newRow("48") << 48 << "Paley I 12 ⊗ Sylvester 4";
        QTest::newRow("76") << 76 << "Paley II 76 ⊗ Sylvester 1";
        QTest::newRow("96") << 96 << "Paley I 12 ⊗ Sylvester 8";
        QTest::newRow("176") << 176 << "Paley I 44 ⊗ Sylvester 4";
        QTest::newRow("576 (SmolLM hidden)") << 576 << "Paley II 36 ⊗ Sylvester 16";
        QTest::newRow("172") << 172 << "random orthogonal 43 ⊗ Sylvester 4";
        QTest::newRow("43") << 43 << "random orthogonal 43 ⊗ Sylvester 1";
    }
    void rotationIsOrthogonal()
    {
        QFETCH(int, n);
        QFETCH(QString, construction);
        for (uint64_t seed : {uint64_t(0), uint64_t(9)}) {
            auto r = ql::HadamardRotation::create(n, seed);
            QVERIFY2(r.ok(), r.message().c_str());
            QCOMPARE(QString::fromStdString(r->construction()), construction);
            const Eigen::MatrixXd q = r->matrix();
            const double orth = (q.transpose() * q - Eigen::MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff();
            QVERIFY2(orth < 1e-6, qPrintable(QString::number(orth)));
            if (r->isHadamard()) QVERIFY((q.cwiseAbs().array() - 1 / std::sqrt(double(n))).abs().maxCoeff() < 1e-12);
            // The fast application equals the dense matrix, from both sides, in double and float.
            const Eigen::MatrixXd x = Eigen::MatrixXd::Random(n, 5);
            Eigen::MatrixXd y = x, yt = x;
            r->leftMultiply(y);
            r->leftMultiply(yt, true);
            QVERIFY((y - q * x).cwiseAbs().maxCoeff() < 1e-12 &&
                    (yt - q.transpose() * x).cwiseAbs().maxCoeff() < 1e-12);
            ql::RowMatrixD rows = x.transpose(), rowsT = x.transpose();
            r->rightMultiply(rows);
            r->rightMultiply(rowsT, true);
            QVERIFY((rows - x.transpose() * q).cwiseAbs().maxCoeff() < 1e-12);
            QVERIFY((rowsT - x.transpose() * q.transpose()).cwiseAbs().maxCoeff() < 1e-12);
            Eigen::MatrixXf xf = x.cast<float>();
            r->leftMultiply(xf);
            QVERIFY((xf.cast<double>() - q * x).cwiseAbs().maxCoeff() < 1e-5);
        }
        const Eigen::MatrixXd a = ql::HadamardRotation::create(n, 1)->matrix(),
                              b = ql::HadamardRotation::create(n, 2)->matrix();
        QVERIFY(n < 4 || !a.isApprox(b));                           // the seed draws the signs
        QVERIFY(ql::HadamardRotation::create(n, 1)->matrix() == a); // deterministically
    }

    void largeRotationSizes_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<QString>("construction");
        QTest::newRow("896 (Qwen2 hidden)") << 896 << "Paley II 28 ⊗ Sylvester 32";
        QTest::newRow("1536 (SmolLM ffn)") << 1536 << "Paley I 12 ⊗ Sylvester 128";
        QTest::newRow("4864 (Qwen2 ffn)") << 4864 << "Paley II 76 ⊗ Sylvester 64";
        QTest::newRow("11008 (LLaMA-7B ffn)") << 11008 << "random orthogonal 43 ⊗ Sylvester 256";
        QTest::newRow("14336 (LLaMA-3 ffn)") << 14336 << "Paley II 28 ⊗ Sylvester 512";
    }
    void largeRotationSizes()
    {
        QFETCH(int, n);
        QFETCH(QString, construction);
        auto r = ql::HadamardRotation::create(n, 3);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(QString::fromStdString(r->construction()), construction);
        const Eigen::MatrixXd x = Eigen::MatrixXd::Random(n, 3);
        Eigen::MatrixXd y = x;
        r->leftMultiply(y);
        QVERIFY(std::abs(y.squaredNorm() / x.squaredNorm() - 1) < 1e-12);
        r->leftMultiply(y, true); // Rᵀ·R = I
        QVERIFY((y - x).cwiseAbs().maxCoeff() < 1e-12);
    }

    void activationFakeQuantMatchesNaive_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("perToken");
        QTest::addColumn<bool>("symmetric");
        for (int b : {8, 4, 3, 2})
            for (bool t : {true, false})
                for (bool sym : {true, false})
                    QTest::newRow(qPrintable(QStringLiteral("%1 bits %2 %3")
                                                 .arg(b)
                                                 .arg(t ? "per token" : "per tensor", sym ? "sym" : "asym")))
                        << b << t << sym;
    }
    void activationFakeQuantMatchesNaive()
    {
        QFETCH(int, bits);
        QFETCH(bool, perToken);
        QFETCH(bool, symmetric);
        std::srand(7);
        Eigen::MatrixXf x = Eigen::MatrixXf::Random(48, 9);
        x.row(3) *= 20.f;               // an outlier channel
        x.col(4).setZero();             // a silent token
        x.col(6) = x.col(6).cwiseAbs(); // a token with no negative value (asymmetric range keeps 0)
        const ql::ActQuantSpec spec{bits, perToken, symmetric};
        Eigen::MatrixXf out;
        ql::fakeQuantizeActivations(x, spec, out);
        const Eigen::MatrixXf ref = naiveActQuant(x, spec);
        QVERIFY2((out - ref).cwiseAbs().maxCoeff() <= 1e-6f * x.cwiseAbs().maxCoeff(),
                 qPrintable(QString::number((out - ref).cwiseAbs().maxCoeff())));
        QVERIFY(out.col(4).isZero());
        for (Eigen::Index c = 0; c < (perToken ? x.cols() : 1); ++c) {
            const Eigen::MatrixXf part = perToken ? Eigen::MatrixXf(out.col(c)) : out;
            std::vector<float> v(part.data(), part.data() + part.size());
            std::sort(v.begin(), v.end());
            QVERIFY(std::unique(v.begin(), v.end()) - v.begin() <= (1 << bits));
        }
    }

    void activationQuantHookInForward()
    {
        const qlfix::ModelSpec spec = specOf(kShapes[3]); // qwen2: the hook sits before the bias
        auto model = ql::Model::open(newModel(spec));
        QVERIFY(model.ok());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        ql::FloatWeights hooked = *fw;
        const ql::ActQuantSpec a4{4, true, true}, a8{8, false, true}, down{4, true, false};
        hooked.blockWeights(0).actQuant[size_t(ql::LinearKind::Q)] = a4;
        hooked.blockWeights(0).actQuant[size_t(ql::LinearKind::K)] = a4;
        hooked.blockWeights(0).actQuant[size_t(ql::LinearKind::V)] = a8;
        hooked.blockWeights(1).actQuant[size_t(ql::LinearKind::Down)] = down;
        std::map<std::string, Eigen::MatrixXf> plain, seen;
        auto keep = [](std::map<std::string, Eigen::MatrixXf>& m) {
            return [&m](const ql::Activation& a) {
                if (a.sequence == 0) m[a.name] = a.x;
            };
        };
        const auto windows = tokenWindows(2, 20, spec.vocab, 8);
        QVERIFY(!logitsOf(fw->config(), *fw, windows, keep(plain)).empty());
        QVERIFY(!logitsOf(hooked.config(), hooked, windows, keep(seen)).empty());
        QVERIFY(seen.at("layers.0.attn_in") == plain.at("layers.0.attn_in")); // observers see the float site
        auto rel = [](const Eigen::MatrixXf& got, const Eigen::MatrixXf& want) {
            return double((got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff());
        };
        const ql::BlockWeights& b0 = hooked.blockWeights(0);
        const Eigen::MatrixXf& x0 = seen.at("layers.0.attn_in");
        const Eigen::MatrixXf q = (b0[ql::LinearKind::Q] * naiveActQuant(x0, a4)).colwise() + b0.bias[0];
        const Eigen::MatrixXf v = (b0[ql::LinearKind::V] * naiveActQuant(x0, a8)).colwise() + b0.bias[2];
        QVERIFY2(rel(seen.at("layers.0.q"), q) < 1e-5, qPrintable(QString::number(rel(seen.at("layers.0.q"), q))));
        QVERIFY(rel(seen.at("layers.0.v"), v) < 1e-5);
        QVERIFY(rel(plain.at("layers.0.q"), q) > 1e-3); // 4-bit inputs change the output visibly
        const Eigen::MatrixXf d = hooked.blockWeights(1)[ql::LinearKind::Down] *
                                  naiveActQuant(seen.at("layers.1.down_in"), down);
        QVERIFY(rel(seen.at("layers.1.mlp_out"), d) < 1e-5);
        // A float source refilling a block removes the hooks another source installed.
        ql::BlockWeights bw;
        QVERIFY(hooked.block(0, bw).ok());
        QCOMPARE(bw.actQuant[0].bits, 4);
        QVERIFY(model->block(0, bw).ok());
        QCOMPARE(bw.actQuant[0].bits, 0);
    }

    void declarations()
    {
        QCOMPARE(m_smooth.id(), std::string("smoothquant"));
        QVERIFY(m_smooth.needsStatistics());
        QCOMPARE(m_hadamard.id(), std::string("hadamard"));
        QVERIFY(!m_hadamard.needsStatistics());
        auto p = ql::completeParams(m_hadamard.parameters(), {}, "hadamard");
        QVERIFY(p.ok());
        QCOMPARE(ql::paramInt(*p, "seed"), int64_t(0));
        QVERIFY(ql::paramBool(*p, "online_down") && ql::paramBool(*p, "rotate_ov"));
        auto s = ql::completeParams(m_smooth.parameters(), {}, "smoothquant");
        QVERIFY(s.ok());
        QCOMPARE(ql::paramDouble(*s, "alpha"), 0.5);
    }

    void errorsHaveMessages()
    {
        const qlfix::ModelSpec spec = specOf(kShapes[0]);
        auto model = ql::Model::open(newModel(spec));
        QVERIFY(model.ok());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        ql::FloatWeights original = *fw;
        auto contains = [](const ql::Expected<void>& r, const char* text) {
            if (r.ok()) return false;
            qInfo("%s", r.message().c_str());
            return QString::fromStdString(r.message()).contains(QLatin1String(text));
        };
        QVERIFY(contains(m_smooth.apply(*fw, {}, {}), "smoothquant needs activation statistics"));
        auto sites = siteAbsmax(fw->config(), *fw, tokenWindows(1, 16, spec.vocab, 1));
        ql::TransformContext ctx;
        ctx.sites = &sites;
        QVERIFY(contains(m_smooth.apply(*fw, ctx, {{"alpha", 1.5}}), "alpha\" must be in [0, 1], got 1.5"));
        QVERIFY(contains(m_smooth.apply(*fw, ctx, {{"alfa", 0.5}}), "parameter \"alfa\" is unknown"));
        std::vector<ql::SiteStats> partial;
        for (const auto& s : sites)
            if (s.name != "layers.1.mlp_in") partial.push_back(s);
        ctx.sites = &partial;
        QVERIFY(contains(m_smooth.apply(*fw, ctx, {}), "no activation statistics for site layers.1.mlp_in"));
        QVERIFY(fw->blockWeights(0).attnNorm == original.blockWeights(0).attnNorm); // untouched
        partial = sites;
        partial[0].absmax.conservativeResize(10);
        ctx.sites = &partial;
        QVERIFY(contains(m_smooth.apply(*fw, ctx, {}), "have 10 channels, the model's hidden size is 64"));

        QVERIFY(contains(m_hadamard.apply(*fw, {}, {{"seed", int64_t(-1)}}), "seed\" must be in"));
        QVERIFY(contains(m_hadamard.apply(*fw, {}, {{"online_down", 1.0}}), "online_down"));
        QVERIFY(m_hadamard.apply(*fw, {}, {}).ok());
        QVERIFY(contains(m_hadamard.apply(*fw, {}, {}), "already has an online rotation before down_proj"));
        // Rotating a rotated model again (without a second online rotation) still preserves the function.
        QVERIFY(m_hadamard.apply(*fw, {}, {{"online_down", false}, {"seed", int64_t(5)}}).ok());
        const auto windows = tokenWindows(2, 20, spec.vocab, 4);
        const double err = maxRelError(logitsOf(fw->config(), *fw, windows),
                                       logitsOf(model->config(), *model, windows));
        QVERIFY2(err < 1e-4, qPrintable(QString::number(err)));
        QVERIFY(!ql::HadamardRotation::create(0, 1).ok());
    }
};

QTEST_GUILESS_MAIN(TestTransforms)
#include "tst_transforms.moc"
