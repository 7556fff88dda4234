// The plugin host: discovery, metadata checked before loading, misbehaving methods contained,
// and the built-in RTN module against the core quantizer it wraps.
#include "fixturemodel.h"
#include "pluginregistry.h"
#include "quantlens/forward/forward.h"
#include "quantlens/model/model.h"
#include "quantlens/base/params.h"
#include "quantlens/quant/quantizedtensor.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

namespace {

bool anyContains(const std::vector<std::string>& v, const std::string& a, const std::string& b = {})
{
    for (const auto& s : v)
        if (s.find(a) != std::string::npos && s.find(b) != std::string::npos) return true;
    return false;
}

ql::RowMatrix randomWeight(int rows, int cols, unsigned seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.f, 0.05f);
    ql::RowMatrix w(rows, cols);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) w(r, c) = n(rng) * (c % 17 == 0 ? 8.f : 1.f);
    return w;
}

} // namespace

class TestPlugins : public QObject {
    Q_OBJECT

private slots:
    void builtInModulesLoad()
    {
        ql::PluginRegistry reg;
        reg.scanDefault();
        for (const auto& p : reg.problems()) qWarning("%s", p.c_str());
        QVERIFY(reg.problems().empty());
        QVERIFY(reg.quantizer("rtn"));
        QCOMPARE(reg.methods().at("rtn").plugin, std::string("rtn"));
        QVERIFY(!reg.quantizer("no-such-method"));
        QVERIFY(reg.transform("smoothquant") && reg.transform("hadamard"));
        QCOMPARE(reg.transforms().at("hadamard").plugin, std::string("hadamard"));
        QVERIFY(!reg.quantizer("hadamard") && !reg.transform("rtn"));
    }

    void transformModulesPreserveFunction()
    {
        ql::PluginRegistry reg;
        reg.scanDefault();
        QTemporaryDir tmp;
        const std::string dir = tmp.filePath(QStringLiteral("m")).toStdString();
        QVERIFY(qlfix::writeModel(dir, qlfix::ModelSpec{}));
        auto model = ql::Model::open(dir);
        QVERIFY(model.ok());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        const std::vector<std::vector<int32_t>> windows = {{1, 5, 9, 200, 3, 3, 7, 42, 11, 0}};
        auto logits = [&](const ql::WeightSource& src) {
            Eigen::MatrixXf out;
            ql::ForwardEngine e(model->config(), src);
            e.setObserver({});
            (void)e.run(windows, [&](int, const Eigen::MatrixXf& l) -> ql::Expected<void> {
                out = l;
                return {};
            });
            return out;
        };
        std::vector<ql::SiteStats> sites;
        ql::ForwardEngine stats(model->config(), *model);
        stats.setObserver([&](const ql::Activation& a) {
            if (a.name.ends_with("attn_in") || a.name.ends_with("mlp_in")) {
                sites.emplace_back();
                sites.back().name = a.name;
                sites.back().absmax = a.x.cwiseAbs().rowwise().maxCoeff();
            }
        });
        QVERIFY(stats.run(windows, {}).ok());
        ql::TransformContext ctx;
        ctx.sites = &sites;
        QVERIFY(reg.transform("smoothquant")->needsStatistics());
        auto s = reg.transform("smoothquant")->apply(*fw, ctx, {{"alpha", 0.8}});
        QVERIFY2(s.ok(), s.message().c_str());
        auto h = reg.transform("hadamard")->apply(*fw, {}, {{"seed", int64_t(4)}});
        QVERIFY2(h.ok(), h.message().c_str());
        const Eigen::MatrixXf a = logits(*model), b = logits(*fw);
        QVERIFY((a - b).cwiseAbs().maxCoeff() <= 1e-4 * a.cwiseAbs().maxCoeff());
        auto missing = reg.transform("smoothquant")->apply(*fw, {}, {});
        QVERIFY(QString::fromStdString(missing.message())
                    .startsWith(QStringLiteral("plugin smoothquant, transform smoothquant: ")));
    }

    void badModulesAreReportedNotLoaded()
    {
        QTemporaryDir tmp;
        QFile fake(tmp.filePath(QStringLiteral("libfake.so")));
        QVERIFY(fake.open(QIODevice::WriteOnly));
        fake.write("not a library");
        fake.close();
        ql::PluginRegistry reg;
        reg.scan({QStringLiteral(QL_TEST_PLUGIN_DIR), tmp.path()});
        for (const auto& p : reg.problems()) qInfo("%s", p.c_str());
        QVERIFY(anyContains(reg.problems(), "badversion", "apiVersion 999, this QuantLens supports 3; not loaded"));
        QVERIFY2(!std::getenv("QL_TEST_BADVERSION_LOADED"), "the module's code ran although its version was refused");
        QVERIFY(anyContains(reg.problems(), "libfake.so", "not a Qt plugin"));
        QVERIFY(anyContains(reg.problems(), "misbehaving", "\"undeclared\" that its metadata does not declare"));
        QVERIFY(reg.quantizer("throws") && reg.quantizer("fails") && reg.quantizer("wrong_shape"));
        QVERIFY(!reg.quantizer("undeclared"));

        const ql::RowMatrix w = randomWeight(4, 8, 1);
        ql::LayerInput in;
        in.name = "model.layers.0.mlp.down_proj";
        in.weight = &w;
        auto thrown = reg.quantizer("throws")->quantize(in, {}, {});
        QVERIFY(!thrown.ok());
        QCOMPARE(QString::fromStdString(thrown.message()),
                 QStringLiteral(
                     "plugin misbehaving, method throws, layer model.layers.0.mlp.down_proj: threw: out of cheese"));
        auto failed = reg.quantizer("fails")->quantize(in, {}, {});
        QVERIFY(QString::fromStdString(failed.message()).endsWith(QStringLiteral("cannot quantize this")));
        auto shape = reg.quantizer("wrong_shape")->quantize(in, {}, {});
        QVERIFY(QString::fromStdString(shape.message()).contains(QStringLiteral("wrong shape")));
        auto nan = reg.quantizer("nan_codes")->quantize(in, {}, {});
        QCOMPARE(QString::fromStdString(nan.message()),
                 QStringLiteral("plugin misbehaving, method nan_codes, layer model.layers.0.mlp.down_proj: returned "
                                "NaN or infinite values in 1 of 32 dequantized weights"));

        // A call that does not return is listed, naming the plugin, while it runs, and not after.
        QTemporaryDir hangDir;
        const QString release = hangDir.filePath(QStringLiteral("release"));
        qputenv("QL_TEST_HANG_RELEASE", release.toLocal8Bit());
        QVERIFY(ql::PluginRegistry::callsInProgress().empty());
        std::thread stuck([&]() { (void)reg.quantizer("hangs")->quantize(in, {}, {}); });
        QTRY_COMPARE_WITH_TIMEOUT(int(ql::PluginRegistry::callsInProgress().size()), 1, 5000);
        QVERIFY(QString::fromStdString(ql::PluginRegistry::callsInProgress()[0])
                    .startsWith(QStringLiteral(
                        "plugin misbehaving, method hangs, layer model.layers.0.mlp.down_proj (running for ")));
        QFile(release).open(QIODevice::WriteOnly);
        stuck.join();
        qunsetenv("QL_TEST_HANG_RELEASE");
        QVERIFY(ql::PluginRegistry::callsInProgress().empty());

        QVERIFY(reg.transform("throwing_transform") && reg.transform("breaking_transform"));
        const std::string dir = tmp.filePath(QStringLiteral("m")).toStdString();
        QVERIFY(qlfix::writeModel(dir, qlfix::ModelSpec{}));
        auto model = ql::Model::open(dir);
        QVERIFY(model.ok());
        auto fw = ql::FloatWeights::load(*model);
        QVERIFY(fw.ok());
        QCOMPARE(QString::fromStdString(reg.transform("throwing_transform")->apply(*fw, {}, {}).message()),
                 QStringLiteral("plugin misbehaving, transform throwing_transform: threw: rotation jammed"));
        QVERIFY(QString::fromStdString(reg.transform("breaking_transform")->apply(*fw, {}, {}).message())
                    .contains(QStringLiteral(
                        "left the weights inconsistent: embedding has shape [256, 3], expected [256, 64]")));

        // The same method id from a second scan is refused, naming who provides it already.
        reg.scan({QStringLiteral(QL_TEST_PLUGIN_DIR)});
        QVERIFY(anyContains(reg.problems(), "method throws is already provided by misbehaving"));
    }

    void pluginPathVariable()
    {
        qputenv("QL_PLUGIN_PATH", QByteArray(QL_TEST_PLUGIN_DIR) + ":/nonexistent");
        const QStringList dirs = ql::PluginRegistry::defaultDirs();
        qunsetenv("QL_PLUGIN_PATH");
        QCOMPARE(dirs.value(0), QStringLiteral(QL_TEST_PLUGIN_DIR));
        QCOMPARE(dirs.value(1), QStringLiteral("/nonexistent"));
        QVERIFY(dirs.value(2).endsWith(QStringLiteral("lib/quantlens/plugins")));
    }

    void rtnModuleMatchesCore_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("group");
        QTest::newRow("int4_asym g32") << "int4_asym" << 32;
        QTest::newRow("int3_sym g64 partial") << "int3_sym" << 64;
        QTest::newRow("nf4 g16") << "nf4" << 16;
        QTest::newRow("fp4_e2m1 g32") << "fp4_e2m1" << 32;
    }

    void rtnModuleMatchesCore()
    {
        QFETCH(QString, format);
        QFETCH(int, group);
        ql::PluginRegistry reg;
        reg.scanDefault();
        const ql::Quantizer* rtn = reg.quantizer("rtn");
        QVERIFY(rtn);
        const ql::RowMatrix w = randomWeight(12, 172, 7);
        ql::QuantSpec spec;
        spec.method = "rtn";
        spec.weight.format = format.toStdString();
        spec.weight.groupSize = group;
        ql::LayerInput in;
        in.name = "layer";
        in.weight = &w;
        auto params = ql::completeParams(rtn->parameters(), {}, "rtn");
        QVERIFY(params.ok());
        auto r = rtn->quantize(in, spec, *params);
        QVERIFY2(r.ok(), r.message().c_str());
        auto direct = ql::quantize(Eigen::MatrixXf(w), spec.weight);
        QVERIFY(direct.ok());
        QCOMPARE(ql::RowMatrix(direct->dequantize()), r->dequantized); // the module is the core quantizer
        QVERIFY(r->tensor.has_value());
        QVERIFY(r->report.weightRelError > 0 && r->report.weightRelError < 0.2);

        // The clip search never does worse on its own objective, Σ|q - w|^2.4 per group.
        auto clipped = ql::completeParams(rtn->parameters(), {{"mse_clip", true}}, "rtn");
        QVERIFY(clipped.ok());
        auto rc = rtn->quantize(in, spec, *clipped);
        QVERIFY2(rc.ok(), rc.message().c_str());
        const double plain = (r->dequantized - w).array().abs().pow(2.4f).cast<double>().sum();
        const double searched = (rc->dequantized - w).array().abs().pow(2.4f).cast<double>().sum();
        QVERIFY2(searched <= plain * (1 + 1e-6), qPrintable(QStringLiteral("%1 > %2").arg(searched).arg(plain)));
    }

    void gptqRaisesDampingWhenNeeded()
    {
        // A Hessian of rank 2 (two tokens) is singular; with no dampening GPTQ cannot factor it.
        ql::PluginRegistry reg;
        reg.scanDefault();
        const ql::Quantizer* gptq = reg.quantizer("gptq");
        QVERIFY(gptq);
        const ql::RowMatrix w = randomWeight(8, 32, 3);
        Eigen::MatrixXd x = Eigen::MatrixXd::Random(32, 2);
        const Eigen::MatrixXd h = x * x.transpose();
        ql::LayerInput in;
        in.name = "layer";
        in.weight = &w;
        in.hessian = &h;
        ql::QuantSpec spec;
        spec.weight.format = "int4_asym";
        spec.weight.groupSize = 16;
        auto fixed = ql::completeParams(gptq->parameters(), {{"damp", 0.0}, {"auto_damp", false}}, "gptq");
        QVERIFY(fixed.ok());
        auto refused = gptq->quantize(in, spec, *fixed);
        QVERIFY(!refused.ok());
        QVERIFY2(QString::fromStdString(refused.message()).contains(QStringLiteral("increase the dampening")),
                 refused.message().c_str());
        auto automatic = ql::completeParams(gptq->parameters(), {{"damp", 0.0}}, "gptq");
        auto r = gptq->quantize(in, spec, *automatic);
        QVERIFY2(r.ok(), r.message().c_str());
        QCOMPARE(r->report.metrics.at("damp"), 0.01);
        QVERIFY(!r->report.notes.empty());
        QVERIFY2(QString::fromStdString(r->report.notes.front()).contains(QStringLiteral("raised to 0.01")),
                 r->report.notes.front().c_str());
        // What it produced is GPTQ at that dampening.
        auto at = ql::completeParams(gptq->parameters(), {{"damp", 0.01}}, "gptq");
        auto direct = gptq->quantize(in, spec, *at);
        QVERIFY(direct.ok());
        QCOMPARE(direct->dequantized, r->dequantized);
    }

    void parameterChecks()
    {
        ql::PluginRegistry reg;
        reg.scanDefault();
        const auto specs = reg.quantizer("rtn")->parameters();
        auto unknown = ql::completeParams(specs, {{"msa_clip", true}}, "rtn");
        QVERIFY(QString::fromStdString(unknown.message())
                    .contains(QStringLiteral("rtn: parameter \"msa_clip\" is unknown (known: mse_clip")));
        auto type = ql::completeParams(specs, {{"mse_clip", int64_t(1)}}, "rtn");
        QVERIFY(QString::fromStdString(type.message()).contains(QStringLiteral("expects true or false")));
        auto range = ql::completeParams(specs, {{"clip_max_shrink", 1.5}}, "rtn");
        QVERIFY(QString::fromStdString(range.message()).contains(QStringLiteral("must be in [0, 0.99], got 1.5")));
        auto ok = ql::completeParams(specs, {{"clip_norm", int64_t(2)}}, "rtn");
        QVERIFY(ok.ok());
        QCOMPARE(ql::paramDouble(*ok, "clip_norm"), 2.0);
        QCOMPARE(ql::paramInt(*ok, "clip_grid"), int64_t(100)); // default filled in
    }
};

QTEST_GUILESS_MAIN(TestPlugins)
#include "tst_plugins.moc"
