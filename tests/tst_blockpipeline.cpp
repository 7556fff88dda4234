// Block methods in the quantization pipeline: each block is trained on the right streams (the
// quantized model's input and the float model's output, recomputed here independently), every
// linear gets codes that decode to what was trained, the block's loss is reported, a re-run is
// served from the cache, and plans the methods cannot run are refused with the reason.
#include "fixturemodel.h"
#include "testpaths.h"
#include "quantlens/forward/forward.h"
#include "quantlens/methods/autoroundquantizer.h"
#include "quantlens/methods/omniquant.h"
#include "quantlens/methods/omniquantquantizer.h"
#include "quantlens/methods/rtnquantizer.h"
#include "quantlens/model/model.h"
#include "quantlens/model/safetensors.h"
#include "quantlens/pipeline/pipeline.h"
#include "quantlens/store/runstate.h"

#include <QTemporaryDir>
#include <QtTest>

class TestBlockPipeline : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    std::string m_dir;
    ql::CalibrationSet m_calib;
    ql::OmniQuantQuantizer m_omni;
    ql::AutoRoundQuantizer m_autoround;
    ql::RtnQuantizer m_rtn;

    ql::MethodLookup lookup()
    {
        return [this](const std::string& id) -> const ql::Quantizer* {
            if (id == "omniquant") return &m_omni;
            if (id == "autoround") return &m_autoround;
            if (id == "rtn") return &m_rtn;
            return nullptr;
        };
    }
    static std::map<std::string, ql::QuantSpec> allLayers(const ql::Model& m, const std::string& method,
                                                          const ql::ParamMap& params)
    {
        std::map<std::string, ql::QuantSpec> specs;
        for (const auto& l : m.linearLayers()) {
            ql::QuantSpec s;
            s.method = method;
            s.params = params;
            s.weight = {"int3_asym", ql::Granularity::PerGroup, 32};
            specs[l.name] = s;
        }
        return specs;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        qlfix::ModelSpec spec;
        spec.layers = 2;
        spec.intermediate = 128;
        spec.vocab = 96;
        m_dir = m_tmp.filePath(QStringLiteral("model")).toStdString();
        QVERIFY(qlfix::writeModel(m_dir, spec));
        m_calib.windows = qltest::tokenWindows(3, 24, spec.vocab, 11);
        m_calib.sha256 = "calib";
    }

    // OmniQuant through the pipeline equals OmniQuant trained here on streams computed here:
    // block b's inputs are the quantized model's blocks before it, its targets the float
    // model's first b + 1 blocks.
    void omniQuantTrainsOnTheRightStreams()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        const ql::ParamMap params{{"epochs", int64_t(2)}};
        const auto specs = allLayers(*model, "omniquant", params);
        ql::QuantPipeline pipe(*model, lookup());
        auto qm = pipe.run(specs, m_calib);
        QVERIFY2(qm, qm ? "" : qm.error().message.c_str());
        QCOMPARE(pipe.lastRun().layersQuantized, 14);

        const ql::ModelConfig& c = model->config();
        ql::ForwardEngine floatEngine(c, *model), quantEngine(c, **qm);
        for (int b = 0; b < c.layers; ++b) {
            std::vector<Eigen::MatrixXf> inputs(m_calib.windows.size()), targets(m_calib.windows.size());
            for (size_t s = 0; s < inputs.size(); ++s) {
                QVERIFY(model->embed(m_calib.windows[s], inputs[s]));
                targets[s] = inputs[s];
            }
            QVERIFY(quantEngine.runLayers(0, b, inputs));
            QVERIFY(floatEngine.runLayers(0, b + 1, targets));
            ql::BlockWeights w;
            QVERIFY(model->block(b, w));
            ql::OmniQuantOptions o;
            o.setAll({3, 32, false});
            o.epochs = 2;
            auto clip = ql::trainBlockClipping(c, w, inputs, targets, o);
            QVERIFY(clip);
            ql::BlockWeights expected;
            ql::applyClipping(c, w, *clip, o, expected);
            for (int k = 0; k < ql::kLinearCount; ++k) {
                const auto* layer = (*qm)->layer(ql::Model::linearName(b, ql::LinearKind(k)));
                QVERIFY(layer && layer->result->tensor);
                QCOMPARE(layer->block, b);
                const Eigen::MatrixXf want = expected[layer->kind];
                const double diff = (layer->result->dequantized - want).cwiseAbs().maxCoeff();
                QVERIFY2(diff == 0.0, qPrintable(QString("%1: off by %2").arg(layer->name.c_str()).arg(diff)));
                QVERIFY(layer->result->tensor->dequantize() == layer->result->dequantized);
                const auto& m = layer->result->report.metrics;
                QCOMPARE(m.at("block_loss_before"), clip->lossBefore);
                QCOMPARE(m.at("block_loss_after"), clip->lossAfter);
            }
        }
        // Nothing changed: the second run is served from the cache.
        auto again = pipe.run(specs, m_calib);
        QVERIFY(again);
        QCOMPARE(pipe.lastRun().layersQuantized, 0);
        QCOMPARE(pipe.lastRun().layersReused, 14);
        // A changed parameter retrains.
        auto changed = pipe.run(allLayers(*model, "omniquant", {{"epochs", int64_t(1)}}), m_calib);
        QVERIFY(changed);
        QCOMPARE(pipe.lastRun().layersQuantized, 14);
    }

    // OmniQuant with LET at W4A4: the layers reading a norm carry the norm they were trained
    // with, the quantized model serves it, linears LET leaves alone carry none (block 1's o_proj
    // is skipped, so its v/o scale is not used), the state file keeps the norms, and the model
    // read back computes exactly what the run computed.
    void letTravelsWithTheLayers()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        auto specs = allLayers(*model, "omniquant", {{"epochs", int64_t(1)}, {"let", true}});
        for (auto& [name, spec] : specs) spec.activations = ql::ActQuantSpec{4, true, false};
        specs[ql::Model::linearName(1, ql::LinearKind::O)].skip = true;
        ql::QuantPipeline pipe(*model, lookup());
        auto qm = pipe.run(specs, m_calib);
        QVERIFY2(qm, qm ? "" : qm.error().message.c_str());
        const ql::ModelConfig& c = model->config();
        auto layer = [&](int b, ql::LinearKind k) { return (*qm)->layer(ql::Model::linearName(b, k)); };
        for (int b = 0; b < c.layers; ++b) {
            ql::BlockWeights fw, qw;
            QVERIFY(model->block(b, fw));
            QVERIFY((*qm)->block(b, qw));
            const Eigen::VectorXf& attn = layer(b, ql::LinearKind::Q)->result->inputNorm;
            const Eigen::VectorXf& mlp = layer(b, ql::LinearKind::Gate)->result->inputNorm;
            QCOMPARE(attn.size(), Eigen::Index(c.hidden));
            QCOMPARE(mlp.size(), Eigen::Index(c.hidden));
            QVERIFY(layer(b, ql::LinearKind::K)->result->inputNorm == attn);
            QVERIFY(layer(b, ql::LinearKind::V)->result->inputNorm == attn);
            QVERIFY(layer(b, ql::LinearKind::Up)->result->inputNorm == mlp);
            QVERIFY(layer(b, ql::LinearKind::Down)->result->inputNorm.size() == 0);
            QVERIFY(qw.attnNorm == attn && qw.mlpNorm == mlp);
            QVERIFY((attn - fw.attnNorm).cwiseAbs().maxCoeff() > 1e-3f);
            QVERIFY(layer(b, ql::LinearKind::Q)->result->report.notes.size() > 0);
        }
        // Block 1 has no v/o scale (o is skipped): its v codes are W_v·diag(s) on a 3-bit grid,
        // with s = the model's attn norm / the trained one; the errors each layer reports are
        // measured in that basis too (against the untransformed weight they would be large).
        QVERIFY(layer(1, ql::LinearKind::O) == nullptr);
        ql::BlockWeights fw1;
        QVERIFY(model->block(1, fw1));
        const Eigen::VectorXf s1 = fw1.attnNorm.cwiseQuotient(layer(1, ql::LinearKind::V)->result->inputNorm);
        const ql::RowMatrix v1 = ql::RowMatrix(fw1[ql::LinearKind::V]) * s1.asDiagonal();
        const double vErr = (layer(1, ql::LinearKind::V)->result->dequantized - v1).squaredNorm() / v1.squaredNorm();
        qInfo("block 1 v_proj: relative error %.3g against W·diag(s)", vErr);
        QVERIFY(vErr < 0.05);
        for (const auto& [name, l] : (*qm)->layers()) QVERIFY2(l.result->report.weightRelError < 0.05, name.c_str());

        const std::string path = m_tmp.filePath(QStringLiteral("let.safetensors")).toStdString();
        QVERIFY(ql::writeRunState(path, **qm, nullptr, "sha"));
        auto back = ql::readRunState(path, *model);
        QVERIFY2(back, back ? "" : back.error().message.c_str());
        ql::ForwardEngine runEngine(c, **qm), readEngine(c, *back->model);
        std::vector<Eigen::MatrixXf> a(1), b(1);
        QVERIFY(model->embed(m_calib.windows[0], a[0]));
        b[0] = a[0];
        QVERIFY(runEngine.runLayers(0, c.layers, a));
        QVERIFY(readEngine.runLayers(0, c.layers, b));
        QVERIFY(a[0] == b[0]);
        for (int blk = 0; blk < c.layers; ++blk) {
            ql::BlockWeights rw;
            QVERIFY(back->model->block(blk, rw));
            QVERIFY(rw.attnNorm == layer(blk, ql::LinearKind::Q)->result->inputNorm);
        }
    }

    // AutoRound through the pipeline: codes on the int3 grid with fp16 scales, the block's loss
    // lowered, a skipped linear left float.
    void autoRoundRunsWithASkippedLinear()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        auto specs = allLayers(*model, "autoround", {{"iters", int64_t(20)}, {"batch", int64_t(2)}});
        const std::string skipped = ql::Model::linearName(0, ql::LinearKind::O);
        specs[skipped].skip = true;
        ql::QuantPipeline pipe(*model, lookup());
        auto qm = pipe.run(specs, m_calib);
        QVERIFY2(qm, qm ? "" : qm.error().message.c_str());
        QCOMPARE(pipe.lastRun().layersQuantized, 13);
        QVERIFY(!(*qm)->layer(skipped));
        for (const auto& [name, layer] : (*qm)->layers()) {
            const ql::QuantizedTensor& t = *layer.result->tensor;
            QCOMPARE(t.spec().format, std::string("int3_asym"));
            for (Eigen::Index i = 0; i < t.scales().size(); ++i)
                QCOMPARE(t.scales().data()[i], ql::roundToHalf(t.scales().data()[i]));
            const auto& m = layer.result->report.metrics;
            QVERIFY2(m.at("block_loss_after") < m.at("block_loss_before"), name.c_str());
        }
    }

    void unrunnablePlansAreRefused()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        ql::QuantPipeline pipe(*model, lookup());
        auto name = [](ql::LinearKind k) { return ql::Model::linearName(0, k); };
        // Another method in a block that a block method trains.
        auto mixed = allLayers(*model, "omniquant", {});
        mixed[name(ql::LinearKind::K)].method = "rtn";
        mixed[name(ql::LinearKind::K)].params.clear();
        auto r = pipe.run(mixed, m_calib);
        QVERIFY(!r);
        QVERIFY2(r.error().message.find("quantizes whole blocks") != std::string::npos, r.error().message.c_str());
        // Different parameters within a block.
        auto params = allLayers(*model, "omniquant", {});
        params[name(ql::LinearKind::V)].params = {{"epochs", int64_t(3)}};
        r = pipe.run(params, m_calib);
        QVERIFY(!r);
        QVERIFY2(r.error().message.find("different parameters") != std::string::npos, r.error().message.c_str());
        // A symmetric format, and a grid over the whole tensor.
        auto sym = allLayers(*model, "autoround", {{"iters", int64_t(1)}});
        sym[name(ql::LinearKind::Q)].weight.format = "int3_sym";
        r = pipe.run(sym, m_calib);
        QVERIFY(!r);
        QVERIFY2(r.error().message.find(name(ql::LinearKind::Q)) != std::string::npos &&
                     r.error().message.find("asymmetric") != std::string::npos,
                 r.error().message.c_str());
        auto tensor = allLayers(*model, "autoround", {{"iters", int64_t(1)}});
        tensor[name(ql::LinearKind::Down)].weight.granularity = ql::Granularity::PerTensor;
        r = pipe.run(tensor, m_calib);
        QVERIFY(!r);
        QVERIFY2(r.error().message.find("per_group") != std::string::npos, r.error().message.c_str());
        // No calibration data.
        r = pipe.run(allLayers(*model, "omniquant", {}), ql::CalibrationSet{});
        QVERIFY(!r);
        QVERIFY2(r.error().message.find("calibration") != std::string::npos, r.error().message.c_str());
        // The per-layer entry point says where block methods run.
        const Eigen::MatrixXf w = Eigen::MatrixXf::Ones(4, 32);
        const ql::RowMatrix rw = w;
        ql::LayerInput in;
        in.name = "x";
        in.weight = &rw;
        auto single = m_omni.quantize(in, ql::QuantSpec{}, {});
        QVERIFY(!single);
        QVERIFY(single.error().message.find("whole decoder blocks") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestBlockPipeline)
#include "tst_blockpipeline.moc"
