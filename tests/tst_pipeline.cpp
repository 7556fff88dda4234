// The quantization pipeline: the Hessians it hands each layer in sequential and parallel mode
// (against a capture recomputed here), the fake-quant model it returns, and incrementality
// (which layers an edit recomputes), counted.
#include "fixturemodel.h"
#include "testpaths.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/model.h"
#include "quantlens/base/params.h"
#include "quantlens/pipeline/pipeline.h"
#include "quantlens/quant/quantizedtensor.h"
#include "quantlens/quant/quantizer.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace {

// RTN that asks for the Hessian and remembers what it was given, per layer.
class ProbeQuantizer final : public ql::Quantizer {
public:
    explicit ProbeQuantizer(bool hessian) : m_hessian(hessian) {}
    std::string id() const override { return m_hessian ? "probe" : "plain"; }
    std::string description() const override { return "test probe"; }
    std::vector<ql::ParamSpec> parameters() const override
    {
        return {{.name = "tag",
                 .type = ql::ParamSpec::Type::Int,
                 .defaultValue = int64_t(0),
                 .max = 100,
                 .help = "changes the spec, not the result"}};
    }
    bool needsHessian() const override { return m_hessian; }
    ql::Expected<ql::LayerResult> quantize(const ql::LayerInput& in, const ql::QuantSpec& spec,
                                           const ql::ParamMap&) const override
    {
        if (m_hessian) seen[in.name] = *in.hessian;
        auto q = ql::quantize(Eigen::MatrixXf(*in.weight), spec.weight);
        if (!q) return q.error();
        ql::LayerResult r;
        r.dequantized = q->dequantize();
        r.report.bitsPerWeight = ql::effectiveBits(*q);
        r.tensor = std::move(*q);
        return r;
    }
    mutable std::map<std::string, Eigen::MatrixXd> seen;

private:
    bool m_hessian;
};

} // namespace

class TestPipeline : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    qlfix::ModelSpec m_spec;
    std::string m_dir;
    ql::CalibrationSet m_calib;
    ProbeQuantizer m_probe{true}, m_plain{false};

    ql::MethodLookup lookup()
    {
        return [this](const std::string& id) -> const ql::Quantizer* {
            if (id == "probe") return &m_probe;
            if (id == "plain") return &m_plain;
            return nullptr;
        };
    }
    std::map<std::string, ql::QuantSpec> allLayers(const ql::Model& m, const std::string& method,
                                                   const std::string& format)
    {
        std::map<std::string, ql::QuantSpec> specs;
        for (const auto& l : m.linearLayers()) {
            ql::QuantSpec s;
            s.method = method;
            s.weight.format = format;
            s.weight.groupSize = 16;
            specs[l.name] = s;
        }
        return specs;
    }
    // Σ x xᵀ at a site, recomputed here from a forward pass of the given weights.
    Eigen::MatrixXd captureHessian(const ql::Model& m, const ql::WeightSource& w, const std::string& site)
    {
        ql::ForwardEngine e(m.config(), w);
        Eigen::MatrixXd h;
        e.setObserver([&](const ql::Activation& a) {
            if (a.name != site) return;
            const Eigen::MatrixXd x = a.x.cast<double>();
            if (h.size() == 0) h = Eigen::MatrixXd::Zero(x.rows(), x.rows());
            h += x * x.transpose();
        });
        ql::ForwardOptions fo;
        fo.computeLogits = false;
        if (!e.run(m_calib.windows, {}, fo)) return {};
        return h;
    }
    static double relDiff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b)
    {
        return (a - b).cwiseAbs().maxCoeff() / std::max(1e-30, b.cwiseAbs().maxCoeff());
    }

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_spec.layers = 3;
        m_spec.vocab = 96;
        m_dir = m_tmp.filePath(QStringLiteral("model")).toStdString();
        QVERIFY(qlfix::writeModel(m_dir, m_spec));
        m_calib.windows = qltest::tokenWindows(3, 40, m_spec.vocab, 17);
        m_calib.sha256 = "calib";
    }

    void hessiansFollowTheMode()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        for (bool sequential : {true, false}) {
            m_probe.seen.clear();
            ql::QuantPipeline pipe(*model, lookup());
            ql::PipelineOptions opt;
            opt.sequential = sequential;
            auto qm = pipe.run(allLayers(*model, "probe", "int3_asym"), m_calib, opt);
            QVERIFY2(qm.ok(), qm.message().c_str());
            QCOMPARE(pipe.lastRun().layersQuantized, 7 * m_spec.layers);
            // Every layer's Hessian, recomputed: in sequential mode from a model holding only the
            // layers quantized before it (the true-sequential order q/k/v, o, gate/up, down);
            // in parallel mode from the float model.
            for (const auto& l : model->linearLayers()) {
                ql::QuantizedModel partial(*model);
                if (sequential)
                    for (const auto& [name, ql] : (*qm)->layers()) {
                        const auto* other = &ql;
                        const int order = other->block * 4 + (int(other->kind) <= 2   ? 0
                                                              : int(other->kind) == 3 ? 1
                                                              : int(other->kind) <= 5 ? 2
                                                                                      : 3);
                        const int mine = l.block * 4 + (int(l.kind) <= 2   ? 0
                                                        : int(l.kind) == 3 ? 1
                                                        : int(l.kind) <= 5 ? 2
                                                                           : 3);
                        if (order < mine) partial.setLayer(*other);
                    }
                const Eigen::MatrixXd expect = captureHessian(*model, partial, l.site);
                const double d = relDiff(m_probe.seen.at(l.name), expect);
                QVERIFY2(d < 1e-5, qPrintable(QStringLiteral("%1 (%2): Hessian differs by %3")
                                                  .arg(QString::fromStdString(l.name))
                                                  .arg(sequential)
                                                  .arg(d)));
            }
            // The returned model serves the quantized weights.
            ql::BlockWeights b;
            QVERIFY((*qm)->block(2, b).ok());
            const auto* down = (*qm)->layer("model.layers.2.mlp.down_proj");
            QVERIFY(down);
            QVERIFY(b[ql::LinearKind::Down] == down->result->dequantized);
        }
        // The two modes really differ once earlier layers are quantized.
        m_probe.seen.clear();
        ql::QuantPipeline seq(*model, lookup()), par(*model, lookup());
        QVERIFY(seq.run(allLayers(*model, "probe", "int2_asym"), m_calib).ok());
        const auto hs = m_probe.seen.at("model.layers.2.self_attn.q_proj");
        ql::PipelineOptions popt;
        popt.sequential = false;
        QVERIFY(par.run(allLayers(*model, "probe", "int2_asym"), m_calib, popt).ok());
        QVERIFY(relDiff(hs, m_probe.seen.at("model.layers.2.self_attn.q_proj")) > 1e-3);
    }

    void editsRecomputeOnlyWhatDependsOnThem()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        for (bool sequential : {true, false}) {
            ql::QuantPipeline pipe(*model, lookup());
            ql::PipelineOptions opt;
            opt.sequential = sequential;
            auto specs = allLayers(*model, "probe", "int4_asym");
            // Two layers that need no inputs: an edit upstream never recomputes them.
            specs["model.layers.2.mlp.up_proj"].method = "plain";
            specs["model.layers.1.self_attn.k_proj"].method = "plain";
            QVERIFY(pipe.run(specs, m_calib, opt).ok());
            QCOMPARE(pipe.lastRun().layersQuantized, 21);
            QVERIFY(pipe.run(specs, m_calib, opt).ok()); // nothing changed
            QCOMPARE(pipe.lastRun().layersQuantized, 0);
            QCOMPARE(pipe.lastRun().layersReused, 21);
            QCOMPARE(pipe.lastRun().blockForwards, 0);

            specs["model.layers.1.self_attn.o_proj"].params["tag"] = int64_t(1); // an edit in block 1
            QVERIFY(pipe.run(specs, m_calib, opt).ok());
            // Sequential: o_proj, then gate/up/down of block 1 and all of block 2 that reads
            // inputs (6 of its 7 layers; up_proj is weights-only). Parallel: o_proj alone.
            QCOMPARE(pipe.lastRun().layersQuantized, sequential ? 1 + 3 + 6 : 1);
            QCOMPARE(pipe.lastRun().layersReused, 21 - pipe.lastRun().layersQuantized);

            specs["model.layers.2.mlp.up_proj"].weight.format = "int3_asym"; // a weights-only layer
            QVERIFY(pipe.run(specs, m_calib, opt).ok());
            // In sequential mode the layer after it (down_proj) reads its output.
            QCOMPARE(pipe.lastRun().layersQuantized, sequential ? 2 : 1);
        }
    }

    // Salient channels: an explicit list and a selector on the site's activation absmax each get
    // their own format; every other column keeps the method's result; bits are recounted.
    void salientChannelsInTheirOwnFormat()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        ql::QuantPipeline pipe(*model, lookup());
        const std::string name = "model.layers.1.mlp.down_proj";
        ql::QuantSpec spec;
        spec.method = "plain";
        spec.weight = {"int2_asym", ql::Granularity::PerGroup, 16};
        ql::ChannelOverride listed, selected;
        listed.channels = {171, 5, 40};
        listed.weight = {"int8_sym", ql::Granularity::PerChannel, 0};
        selected.selector = "top_absmax_percent";
        selected.selectorValue = 2; // ceil(2 % of 172) = 4 channels
        selected.weight = {"int4_sym", ql::Granularity::PerChannel, 0};
        spec.channels = {listed, selected};
        ql::PipelineOptions opt;
        opt.sequential = false; // the site statistics are then the float model's, recomputed below
        auto qm = pipe.run({{name, spec}}, m_calib, opt);
        QVERIFY2(qm.ok(), qm.message().c_str());
        const ql::LayerResult& r = *(*qm)->layer(name)->result;
        QVERIFY(!r.tensor); // two formats: no single-format tensor

        ql::BlockWeights b;
        QVERIFY(model->block(1, b));
        const Eigen::MatrixXf w = b[ql::LinearKind::Down];
        // The selector's channels: the largest activation absmax at the site, the listed ones excluded.
        Eigen::VectorXd absmax;
        {
            ql::ForwardEngine e(model->config(), *model);
            e.setObserver([&](const ql::Activation& a) {
                if (a.name != "layers.1.down_in") return;
                const Eigen::VectorXd m = a.x.cast<double>().cwiseAbs().rowwise().maxCoeff();
                absmax = absmax.size() ? Eigen::VectorXd(absmax.cwiseMax(m)) : m;
            });
            ql::ForwardOptions fo;
            fo.computeLogits = false;
            QVERIFY(e.run(m_calib.windows, {}, fo).ok());
        }
        std::vector<int> order(size_t(absmax.size()));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return absmax[a] > absmax[c]; });
        std::vector<int> top(order.begin(), order.begin() + 4), mine;
        for (int c : top)
            if (c != 171 && c != 5 && c != 40) mine.push_back(c);
        auto base = ql::quantize(w, spec.weight);
        QVERIFY(base.ok());
        const Eigen::MatrixXf plain = base->dequantize();
        // Symmetric per-row rounding of a column set, written here: scale = absmax / (2^(b-1) - 1)
        // up to the format's code range, so each value is within half a step.
        auto within = [&](const std::vector<int>& cols, int bits) {
            for (Eigen::Index row = 0; row < w.rows(); ++row) {
                float m = 0;
                for (int c : cols) m = std::max(m, std::abs(w(row, c)));
                const float step = m / float((1 << (bits - 1)) - 1);
                for (int c : cols)
                    if (std::abs(r.dequantized(row, c) - w(row, c)) > 0.5f * step * 1.0001f + 1e-7f) return false;
            }
            return true;
        };
        QVERIFY(within({5, 40, 171}, 8));
        QVERIFY(within(mine, 4));
        std::set<int> salient{5, 40, 171};
        salient.insert(mine.begin(), mine.end());
        for (Eigen::Index c = 0; c < w.cols(); ++c)
            if (!salient.count(int(c))) QVERIFY(r.dequantized.col(c) == plain.col(c));
        QVERIFY((r.dequantized.col(40) - plain.col(40)).norm() > 0); // the override did change them
        // Bits: the base tensor's, minus the salient columns' 2-bit codes, plus their own codes and
        // one fp16 scale per row for each override.
        const double rows = double(w.rows()), cols = double(w.cols());
        const double expected = (ql::effectiveBits(*base) * rows * cols - 2.0 * rows * double(salient.size()) +
                                 8.0 * rows * 3 + 16.0 * rows + 4.0 * rows * double(mine.size()) + 16.0 * rows) /
                                (rows * cols);
        QVERIFY2(std::abs(r.report.bitsPerWeight - expected) < 1e-12,
                 qPrintable(QString::number(r.report.bitsPerWeight)));
        QCOMPARE(r.report.notes.size(), size_t(2));
        const double err = (r.dequantized - w).squaredNorm() / w.squaredNorm();
        QVERIFY(std::abs(r.report.weightRelError - err) < 1e-6 * err);
    }

    void groupLargerThanTheRowIsReported()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        ql::QuantPipeline pipe(*model, lookup());
        std::map<std::string, ql::QuantSpec> specs;
        specs["model.layers.0.mlp.down_proj"].method = "plain";
        specs["model.layers.0.mlp.down_proj"].weight.groupSize = 1000; // rows have 172 columns
        auto qm = pipe.run(specs, m_calib);
        QVERIFY2(qm.ok(), qm.message().c_str());
        const auto& notes = (*qm)->layer("model.layers.0.mlp.down_proj")->result->report.notes;
        QCOMPARE(notes.size(), size_t(1));
        QCOMPARE(notes[0], std::string("group size 1000 is larger than the row (172 columns): one group per row"));
    }

    void badSpecsAreRefused()
    {
        auto model = ql::Model::open(m_dir);
        QVERIFY(model.ok());
        ql::QuantPipeline pipe(*model, lookup());
        std::map<std::string, ql::QuantSpec> specs;
        specs["model.layers.9.mlp.down_proj"] = {};
        QVERIFY(QString::fromStdString(pipe.run(specs, m_calib).message())
                    .contains("no linear layer model.layers.9.mlp.down_proj"));
        specs.clear();
        specs["model.layers.0.mlp.down_proj"].method = "gptx";
        QVERIFY(QString::fromStdString(pipe.run(specs, m_calib).message())
                    .contains("asks for method \"gptx\", which no plugin provides"));
        specs["model.layers.0.mlp.down_proj"].method = "probe";
        specs["model.layers.0.mlp.down_proj"].params["tga"] = int64_t(1);
        const auto bad = pipe.run(specs, m_calib);
        QVERIFY2(QString::fromStdString(bad.message())
                     .contains("layer model.layers.0.mlp.down_proj: probe: parameter \"tga\" is unknown"),
                 bad.message().c_str());
        specs["model.layers.0.mlp.down_proj"].params.clear();
        specs["model.layers.0.mlp.down_proj"].weight.format = "int9";
        QVERIFY(!pipe.run(specs, m_calib).ok());
        specs["model.layers.0.mlp.down_proj"].skip = true; // skipped layers are not checked or run
        auto skipped = pipe.run(specs, m_calib);
        QVERIFY(skipped.ok());
        QVERIFY((*skipped)->layers().empty());
    }
};

QTEST_GUILESS_MAIN(TestPipeline)
#include "tst_pipeline.moc"
