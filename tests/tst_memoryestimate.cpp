// The memory guard: sizes as QL_MEMORY_LIMIT takes them, the estimate's terms from a model's
// shapes and dtypes, and the refusal that names the estimate and what is available.
#include "fixturemodel.h"
#include "quantlens/analysis/analyzer.h"
#include "quantlens/base/sysmemory.h"
#include "quantlens/model/memoryestimate.h"
#include "quantlens/model/model.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>

using namespace ql;

namespace {

int64_t term(const MemoryEstimate& e, const std::string& what)
{
    for (const MemoryTerm& t : e.terms)
        if (t.what == what) return t.bytes;
    return -1;
}

} // namespace

class TestMemoryEstimate : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;

    Model open(const std::string& name, const qlfix::ModelSpec& spec)
    {
        const std::string dir = m_tmp.path().toStdString() + "/" + name;
        if (!qlfix::writeModel(dir, spec)) qFatal("cannot write %s", dir.c_str());
        auto m = Model::open(dir);
        if (!m) qFatal("%s", m.message().c_str());
        return std::move(*m);
    }

private slots:
    void sizes()
    {
        QCOMPARE(parseMemorySize("1024"), int64_t(1024));
        QCOMPARE(parseMemorySize("2K"), int64_t(2048));
        QCOMPARE(parseMemorySize("100M"), int64_t(100) << 20);
        QCOMPARE(parseMemorySize("1.5G"), int64_t(3) << 29);
        QCOMPARE(parseMemorySize("2GiB"), int64_t(2) << 30);
        QCOMPARE(parseMemorySize("1T"), int64_t(1) << 40);
        QCOMPARE(parseMemorySize("none"), int64_t(-1));
        for (const char* bad : {"", "G", "-1G", "12Q", "1e30T", "nan"}) QCOMPARE(parseMemorySize(bad), int64_t(-2));
        QCOMPARE(formatBytes(int64_t(100) << 20), std::string("100 MiB"));
        QCOMPARE(formatBytes(int64_t(3) << 29), std::string("1.5 GiB"));

        qputenv("QL_MEMORY_LIMIT", "64M");
        AvailableMemory a = availableMemory();
        QCOMPARE(a.bytes, int64_t(64) << 20);
        QCOMPARE(a.source, std::string("QL_MEMORY_LIMIT"));
        qputenv("QL_MEMORY_LIMIT", "none");
        QCOMPARE(availableMemory().bytes, int64_t(-1));
        qunsetenv("QL_MEMORY_LIMIT");
        a = availableMemory();
        QVERIFY(a.bytes > 0);
        QVERIFY(a.source == "MemAvailable" || a.source == "the cgroup's memory limit");
    }

    // Each term from the shapes: hidden 64, 4 heads of 16 (2 KV heads), ffn 172, 2 blocks.
    void termsFromShapes()
    {
        qlfix::ModelSpec spec;
        const Model f32 = open("f32", spec);
        spec.dtype = "BF16";
        const Model bf16 = open("bf16", spec);
        const int64_t blockParams = 64 * 64 * 2 + 32 * 64 * 2 + 3 * 64 * 172, linear = 2 * blockParams;

        AnalyzeOptions opt;
        CalibrationSpec calib;
        calib.samples = 8;
        calib.seqlen = 32;
        const MemoryJob job = analysisMemoryJob(opt, calib);
        const MemoryEstimate a = estimateMemory(f32, job), b = estimateMemory(bf16, job);
        QCOMPARE(term(a, "per-site activation buffers"), int64_t(4 * 8 * 32 * (64 + 64 + 64 + 172)));
        QCOMPARE(term(a, "calibration states"), int64_t(4 * 8 * 32 * 64));
        QCOMPARE(term(a, "one site's Hessian"), int64_t(12 * 172 * 172));
        QCOMPARE(term(a, "one block converted to fp32"), int64_t(-1)); // F32 is read in place
        QCOMPARE(term(b, "one block converted to fp32"), 4 * blockParams);
        QCOMPARE(b.peakBytes() - a.peakBytes(), 4 * blockParams);
        QVERIFY(std::is_sorted(a.terms.begin(), a.terms.end(),
                               [](const MemoryTerm& x, const MemoryTerm& y) { return x.bytes > y.bytes; }));
        QCOMPARE(b.mappedBytes * 2, a.mappedBytes);

        // More windows cost more; the Fisher adds its diagonal; a full run adds its references.
        calib.samples = 16;
        QVERIFY(estimateMemory(f32, analysisMemoryJob(opt, calib)).peakBytes() > a.peakBytes());
        opt.sensitivity = SensitivityMode::Full;
        calib.heldOut = 2;
        const MemoryEstimate full = estimateMemory(f32, analysisMemoryJob(opt, calib));
        QCOMPARE(term(full, "diagonal Fisher"), 4 * linear);
        QVERIFY(term(full, "end-to-end KL references") > 0);

        MemoryJob q;
        q.kind = MemoryJob::Kind::Quantize;
        QCOMPARE(term(estimateMemory(f32, q), "quantized layers"), 5 * linear);
        QCOMPARE(term(estimateMemory(f32, q), "calibration states"), int64_t(-1));
        q.transforms = true;
        QCOMPARE(term(estimateMemory(f32, q), "the model in fp32 for the transforms"), 4 * (linear + 2 * 256 * 64));

        // whatif and pareto: the quick slice's references and block inputs, and two plans.
        MemoryJob w;
        w.kind = MemoryJob::Kind::Eval;
        w.quantizes = true;
        w.ctx = 128;
        w.evalWindows = w.quickWindows = 8;
        w.plansKept = 2;
        const MemoryEstimate quick = estimateMemory(f32, w);
        QCOMPARE(term(quick, "quick-slice float log-probabilities"), int64_t(4 * 8 * 128 * 256));
        QCOMPARE(term(quick, "quick-slice block inputs"), int64_t(4 * 3 * 8 * 128 * 64));
        QCOMPARE(term(quick, "quantized layers"), 2 * 5 * linear);
        // analyze --kl-context keeps the context plan's layers through the analysis.
        MemoryJob ctxJob = job;
        ctxJob.klContext = true;
        QCOMPARE(estimateMemory(f32, ctxJob).peakBytes() - a.peakBytes(), 5 * linear);
    }

    void refusal()
    {
        const Model m = open("refuse", qlfix::ModelSpec{});
        MemoryJob job;
        job.kind = MemoryJob::Kind::Quantize;
        const MemoryEstimate e = estimateMemory(m, job);
        QVERIFY(checkMemory(e, {e.peakBytes(), "test"}, "x"));
        QVERIFY(checkMemory(e, {-1, "QL_MEMORY_LIMIT=none"}, "x"));
        auto refused = checkMemory(e, {e.peakBytes() - 1, "MemAvailable"}, "model: quantizing");
        QVERIFY(!refused);
        const QString msg = QString::fromStdString(refused.message());
        QVERIFY2(msg.startsWith(QStringLiteral("model: quantizing needs an estimated ")), qPrintable(msg));
        QVERIFY2(msg.contains(QStringLiteral("(program 192 MiB, quantized layers")), qPrintable(msg));
        QVERIFY2(msg.contains(QStringLiteral("is available (MemAvailable); set QL_MEMORY_LIMIT=none to run anyway")),
                 qPrintable(msg));
    }
};

QTEST_GUILESS_MAIN(TestMemoryEstimate)
#include "tst_memoryestimate.moc"
