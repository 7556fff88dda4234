// The plugin host: discovery, metadata checked before loading, misbehaving methods contained,
// and the built-in RTN module against the core quantizer it wraps.
#include "pluginregistry.h"
#include "quantlens/params.h"
#include "quantlens/quantizedtensor.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdlib>
#include <random>

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
        QVERIFY(anyContains(reg.problems(), "badversion", "apiVersion 999, this QuantLens supports 1; not loaded"));
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
                 QStringLiteral("plugin misbehaving, method throws, layer model.layers.0.mlp.down_proj: threw: out of cheese"));
        auto failed = reg.quantizer("fails")->quantize(in, {}, {});
        QVERIFY(QString::fromStdString(failed.message()).endsWith(QStringLiteral("cannot quantize this")));
        auto shape = reg.quantizer("wrong_shape")->quantize(in, {}, {});
        QVERIFY(QString::fromStdString(shape.message()).contains(QStringLiteral("wrong shape")));

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

    void parameterChecks()
    {
        ql::PluginRegistry reg;
        reg.scanDefault();
        const auto specs = reg.quantizer("rtn")->parameters();
        auto unknown = ql::completeParams(specs, {{"msa_clip", true}}, "rtn");
        QVERIFY(QString::fromStdString(unknown.message()).contains(QStringLiteral("rtn: parameter \"msa_clip\" is unknown (known: mse_clip")));
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
