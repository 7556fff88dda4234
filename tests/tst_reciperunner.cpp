// RecipeRunner: the same model as transforms and pipeline composed by hand, and what a second
// run after an edit recomputes (windows, transformed weights, layers), counted; errors name the
// step.
#include "fixturemodel.h"
#include "quantlens/model/floatweights.h"
#include "quantlens/model/model.h"
#include "quantlens/base/params.h"
#include "quantlens/recipe/reciperunner.h"
#include "quantlens/forward/siteranges.h"
#include "quantlens/methods/smoothquant.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

namespace {

// Plain RTN through the quantizer interface (the built-in methods are plugins).
class RtnQuantizer final : public ql::Quantizer {
public:
    std::string id() const override { return "rtn"; }
    std::string description() const override { return "test RTN"; }
    std::vector<ql::ParamSpec> parameters() const override { return {}; }
    ql::Expected<ql::LayerResult> quantize(const ql::LayerInput& in, const ql::QuantSpec& spec,
                                           const ql::ParamMap&) const override
    {
        auto q = ql::quantize(Eigen::MatrixXf(*in.weight), spec.weight);
        if (!q) return q.error();
        ql::LayerResult r;
        r.dequantized = q->dequantize();
        r.tensor = std::move(*q);
        return r;
    }
};

std::string text(int variant)
{
    std::string t;
    for (int i = 0; i < 300; ++i)
        t += (variant == 0 ? "a small model reads story number " : "another text counts line ") + std::to_string(i) +
             " again.\n";
    return t;
}

} // namespace

class TestRecipeRunner : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    std::string m_dir, m_calibFile;
    RtnQuantizer m_rtn;
    ql::SmoothQuantTransform m_smooth;

    ql::MethodLookup quantizers()
    {
        return [this](const std::string& id) -> const ql::Quantizer* { return id == "rtn" ? &m_rtn : nullptr; };
    }
    ql::TransformLookup transforms()
    {
        return
            [this](const std::string& id) -> const ql::Transform* { return id == "smoothquant" ? &m_smooth : nullptr; };
    }
    ql::Recipe recipe(const std::string& extra = "")
    {
        const std::string json = R"({"version": 1, "pipeline": "parallel",
            "calibration": {"samples": 4, "seqlen": 32, "sampling": "random", "seed": 3},
            "transforms": [{"method": "smoothquant", "params": {"alpha": 0.6}}],
            "rules": [{"match": "*", "method": "rtn", "bits": 4, "group": 16}])" +
                                 extra + "}";
        auto r = ql::parseRecipe(json);
        if (!r) qFatal("%s", r.message().c_str());
        r->calibrationFile = m_calibFile;
        return *r;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_dir = m_tmp.filePath(QStringLiteral("model")).toStdString();
        qlfix::ModelSpec spec;
        spec.vocab = 400;
        QVERIFY(qlfix::writeModel(m_dir, spec));
        std::string err;
        QVERIFY2(qlfix::writeSentencePieceTokenizer(m_dir, text(0), 400, &err), err.c_str());
        m_calibFile = m_tmp.filePath(QStringLiteral("calib.txt")).toStdString();
        std::ofstream(m_calibFile) << text(0);
    }

    // Every layer equals the by-hand composition: windows, statistics, SmoothQuant, pipeline.
    void equalsTheStepsComposedByHand()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY2(model.ok(), model.message().c_str());
        auto tok = ql::loadTokenizer(m_dir);
        QVERIFY2(tok.ok(), tok.message().c_str());
        const ql::Recipe r = recipe();
        ql::RecipeRunner runner(*model, quantizers(), transforms());
        auto run = runner.run(r, tok->get());
        QVERIFY2(run.ok(), run.message().c_str());

        auto calib = ql::makeCalibrationSet(text(0), **tok, r.calibration);
        QVERIFY(calib.ok());
        QCOMPARE(run->calib.sha256, calib->sha256);
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        auto sites = ql::siteRanges(fw->config(), *fw, calib->windows);
        QVERIFY(sites.ok());
        ql::TransformContext ctx;
        ctx.sites = &*sites;
        auto params = ql::completeParams(m_smooth.parameters(), r.transforms[0].params, "smoothquant");
        QVERIFY(params.ok());
        QVERIFY(m_smooth.apply(*fw, ctx, *params).ok());
        auto specs = ql::resolveRecipe(r, model->linearLayers());
        QVERIFY(specs.ok());
        ql::QuantPipeline pipe(*model, quantizers());
        ql::PipelineOptions po;
        po.sequential = false;
        po.base = &*fw;
        auto qm = pipe.run(*specs, *calib, po);
        QVERIFY2(qm.ok(), qm.message().c_str());

        QCOMPARE(run->model->layers().size(), (*qm)->layers().size());
        QCOMPARE(int(run->model->layers().size()), int(model->linearLayers().size()));
        for (const auto& l : model->linearLayers()) {
            const auto* a = run->model->layer(l.name);
            const auto* b = (*qm)->layer(l.name);
            QVERIFY(a && b);
            QVERIFY2(a->result->dequantized == b->result->dequantized, l.name.c_str()); // same arithmetic: same bits
        }
        QVERIFY(run->transformed);
        for (int i = 0; i < model->config().layers; ++i)
            QVERIFY(run->transformed->linear(i, ql::LinearKind::Q) == fw->linear(i, ql::LinearKind::Q));
    }

    // A second run of the same recipe recomputes nothing; an edited layer is the only one
    // quantized again (parallel mode); other transform parameters or another text recompute all.
    void recomputesOnlyWhatChanged()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        auto tok = ql::loadTokenizer(m_dir);
        QVERIFY(tok.ok());
        const int n = int(model->linearLayers().size());
        ql::RecipeRunner runner(*model, quantizers(), transforms());
        auto first = runner.run(recipe(), tok->get());
        QVERIFY2(first.ok(), first.message().c_str());
        QCOMPARE(first->stats.layersQuantized, n);

        auto again = runner.run(recipe(), tok->get());
        QVERIFY(again.ok());
        QCOMPARE(again->stats.layersQuantized, 0);
        QCOMPARE(again->stats.layersReused, n);
        QCOMPARE(again->transformed.get(), first->transformed.get()); // the transform did not run again

        auto edited = runner.run(recipe(R"(, "overrides": {"model.layers.1.mlp.down_proj": {"bits": 8}})"), tok->get());
        QVERIFY2(edited.ok(), edited.message().c_str());
        QCOMPARE(edited->stats.layersQuantized, 1);
        QCOMPARE(edited->transformed.get(), first->transformed.get());

        ql::Recipe alpha = recipe();
        alpha.transforms[0].params["alpha"] = 0.7;
        auto otherAlpha = runner.run(alpha, tok->get());
        QVERIFY(otherAlpha.ok());
        QVERIFY(otherAlpha->transformed.get() != first->transformed.get());
        QCOMPARE(otherAlpha->stats.layersQuantized, n);

        // Same file name, other content: other windows, so everything is measured again.
        std::ofstream(m_calibFile) << text(1);
        auto otherText = runner.run(recipe(), tok->get());
        std::ofstream(m_calibFile) << text(0);
        QVERIFY(otherText.ok());
        QVERIFY(otherText->calib.sha256 != first->calib.sha256);
        QVERIFY(otherText->transformed.get() != first->transformed.get());
        QCOMPARE(otherText->stats.layersQuantized, n);
    }

    void errorsNameTheStep()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        auto tok = ql::loadTokenizer(m_dir);
        QVERIFY(tok.ok());
        ql::RecipeRunner runner(*model, quantizers(), transforms());
        ql::Recipe unknown = recipe();
        unknown.transforms.push_back({"nope", {}});
        auto a = runner.run(unknown, tok->get());
        QVERIFY(!a.ok());
        QCOMPARE(QString::fromStdString(a.message()),
                 QStringLiteral("transforms[1] (nope): no plugin provides this transform"));

        ql::Recipe noCalib = recipe();
        noCalib.calibrationFile.clear();
        auto b = runner.run(noCalib, nullptr);
        QVERIFY(!b.ok());
        QVERIFY2(b.message().find("transforms[0] (smoothquant): needs activation statistics") != std::string::npos,
                 b.message().c_str());

        ql::Recipe noTokenizer = recipe();
        auto c = runner.run(noTokenizer, nullptr);
        QVERIFY(!c.ok());
        QVERIFY2(c.message().find("tokenizer") != std::string::npos, c.message().c_str());
    }
};

QTEST_GUILESS_MAIN(TestRecipeRunner)
#include "tst_reciperunner.moc"
