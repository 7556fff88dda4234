// The quantlens-cli contract: subcommands, JSON fields, exit codes and one-line errors.
#include "fixturemodel.h"
#include "testpaths.h"
#include "quantlens/model/model.h"
#include "quantlens/quant/formats.h"
#include "quantlens/recipe/recipe.h"
#include "quantlens/store/analysisstore.h"

#include <QDir>
#include <QElapsedTimer>
#include <QProcess>
#include <QThread>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>

using qltest::readAll;

namespace {

struct Run {
    int code = -1;
    QString out;
    QString err;
};

Run cli(const QStringList& args, int timeoutMs = 120000)
{
    QProcess p;
    p.start(QStringLiteral(QL_CLI_PATH), args);
    p.waitForFinished(timeoutMs);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

} // namespace

class TestCli : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_model;

private slots:
    void initTestCase()
    {
        m_model = m_tmp.path() + QStringLiteral("/model");
        qlfix::ModelSpec spec;
        spec.vocab = 400;
        const std::string text = qlfix::storyText(300);
        std::string err;
        QVERIFY2(qlfix::writeTokenizedModel(m_model.toStdString(), spec, text, &err), err.c_str());
        std::ofstream(m_tmp.path().toStdString() + "/eval.txt") << text;
    }

    void info()
    {
        const Run r = cli({QStringLiteral("info"), m_model, QStringLiteral("--json")});
        QCOMPARE(r.code, 0);
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["architecture"].get<std::string>(), std::string("llama"));
        QCOMPARE(j["num_layers"].get<int>(), 2);
        QCOMPARE(j["linear_layers"].size(), size_t(14));
        QCOMPARE(j["linear_layers"][6]["shape"][1].get<int>(), 172);
        QCOMPARE(j["tokenizer"]["kind"].get<std::string>(), std::string("sentencepiece"));
        const Run text = cli({QStringLiteral("info"), m_model});
        QCOMPARE(text.code, 0);
        QVERIFY(text.out.contains(QStringLiteral("model.layers.1.mlp.down_proj")));

        // The memory estimate of each command: terms that add up, sized by the shapes (hidden 64,
        // 4 heads of 16, ffn 172, 128 windows of 512 tokens), against what the kernel says is free.
        const auto& mem = j["memory"];
        QCOMPARE(mem["commands"].size(), size_t(8));
        for (const auto& [name, c] : mem["commands"].items()) {
            int64_t sum = 0;
            for (const auto& [what, bytes] : c["terms"].items()) sum += bytes.get<int64_t>();
            QCOMPARE(c["peak_bytes"].get<int64_t>(), sum);
            QVERIFY2(c["fits"].get<bool>(), name.c_str());
        }
        const int64_t tokens = 128 * 512;
        QCOMPARE(mem["commands"]["analyze"]["terms"]["per-site activation buffers"].get<int64_t>(),
                 4 * tokens * (64 + 64 + 64 + 172));
        QCOMPARE(mem["commands"]["quantize (gptq)"]["terms"]["one site's Hessian"].get<int64_t>(), 12 * 172 * 172);
        QCOMPARE(mem["commands"]["quantize (rtn)"]["terms"]["quantized layers"].get<int64_t>(),
                 5 * j["linear_parameters"].get<int64_t>());
        QVERIFY(!mem["commands"]["quantize (rtn)"]["terms"].contains("calibration states"));
        int64_t memAvailable = -1;
        QFile meminfo(QStringLiteral("/proc/meminfo"));
        QVERIFY(meminfo.open(QIODevice::ReadOnly));
        for (const QByteArray& line : meminfo.readAll().split('\n'))
            if (line.startsWith("MemAvailable:")) memAvailable = line.simplified().split(' ')[1].toLongLong() * 1024;
        const int64_t available = mem["available_bytes"].get<int64_t>();
        QVERIFY2(available > 0 && available <= memAvailable * 5 / 4, qPrintable(QString::number(available)));
        QVERIFY(text.out.contains(QStringLiteral("estimated peak memory")));

        qputenv("QL_MEMORY_LIMIT", "1.5G");
        const Run limited = cli({QStringLiteral("info"), m_model, QStringLiteral("--json")});
        qunsetenv("QL_MEMORY_LIMIT");
        const auto lj = nlohmann::json::parse(limited.out.toStdString())["memory"];
        QCOMPARE(lj["available_bytes"].get<int64_t>(), int64_t(1.5 * 1024 * 1024 * 1024));
        QCOMPARE(lj["available_source"].get<std::string>(), std::string("QL_MEMORY_LIMIT"));
    }

    void tokenizeGolden_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("stories260k (SentencePiece)") << "stories260k";
        QTest::newRow("tinystories-656k (tokenizer.json)") << "tinystories-656k";
    }
    void tokenizeGolden()
    {
        QFETCH(QString, model);
        const QString dir = qltest::sharedModel(model);
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        const QString golden = qltest::sharedFile(QStringLiteral("golden/%1.wiki.test.ids").arg(model));
        QL_REQUIRE_SHARED(dir);
        QL_REQUIRE_SHARED(golden);
        const QString out = m_tmp.path() + QStringLiteral("/%1.ids").arg(model);
        const Run r = cli(
            {QStringLiteral("tokenize"), dir, QStringLiteral("--text"), text, QStringLiteral("--out"), out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const std::string got = readAll(out), expect = readAll(golden);
        QVERIFY(!expect.empty());
        QCOMPARE(got.size(), expect.size());
        QVERIFY2(got == expect, "token ids differ from the golden file");
    }

    void evalJson()
    {
        const Run r = cli({QStringLiteral("eval"), m_model, QStringLiteral("--data"), m_tmp.path() + "/eval.txt",
                           QStringLiteral("--ctx"), QStringLiteral("64"), QStringLiteral("--chunks"),
                           QStringLiteral("3"), QStringLiteral("--protocol"), QStringLiteral("paper"),
                           QStringLiteral("--threads"), QStringLiteral("2"), QStringLiteral("--kl-ref"), m_model,
                           QStringLiteral("--json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        for (const char* key : {"ppl", "protocol", "n_ctx", "chunks", "tokens_scored", "seconds", "tokens_per_s"})
            QVERIFY2(j.contains(key), key);
        QCOMPARE(j["protocol"].get<std::string>(), std::string("paper"));
        QCOMPARE(j["n_ctx"].get<int>(), 64);
        QCOMPARE(j["chunks"].get<int>(), 3);
        QCOMPARE(j["tokens_scored"].get<int>(), 3 * 63);
        QVERIFY(j["ppl"].get<double>() > 1.0);
        QVERIFY(std::abs(j["kl"]["mean_kl"].get<double>()) < 1e-6); // the model against itself
        QVERIFY(std::abs(j["kl"]["ppl_reference"].get<double>() / j["ppl"].get<double>() - 1) < 1e-5);
        const Run llama = cli({QStringLiteral("eval"), m_model, QStringLiteral("--data"), m_tmp.path() + "/eval.txt",
                               QStringLiteral("--ctx"), QStringLiteral("64"), QStringLiteral("--chunks"),
                               QStringLiteral("2"), QStringLiteral("--json")});
        QVERIFY2(llama.code == 0, qPrintable(llama.err));
        const auto jl = nlohmann::json::parse(llama.out.toStdString());
        QCOMPARE(jl["protocol"].get<std::string>(), std::string("llamacpp"));
        QCOMPARE(jl["tokens_scored"].get<int>(), 2 * 31);
        QCOMPARE(jl["bos"].get<int>(), 1);
    }

    // A GGUF file stands in for a model folder: info shows its tensor types, tokenize, eval and
    // analyze read it, and an f32 export evaluates exactly as the folder does.
    void ggufModelInEveryCommand()
    {
        const QString gguf = m_tmp.path() + QStringLiteral("/model-f32.gguf");
        const Run ex = cli({QStringLiteral("export"), m_model, QStringLiteral("--format"), QStringLiteral("gguf"),
                            QStringLiteral("--gguf-type"), QStringLiteral("f32"), QStringLiteral("--out"), gguf});
        QVERIFY2(ex.code == 0, qPrintable(ex.err));
        const Run info = cli({QStringLiteral("info"), gguf, QStringLiteral("--json")});
        QVERIFY2(info.code == 0, qPrintable(info.err));
        const auto ji = nlohmann::json::parse(info.out.toStdString());
        QCOMPARE(ji["gguf"]["tensor_types"]["f32"].get<int>(),
                 9 * 2 + 2 + (ji["tie_word_embeddings"].get<bool>() ? 0 : 1));
        QCOMPARE(ji["linear_layers"].size(), size_t(14));
        QCOMPARE(ji["tokenizer"]["kind"].get<std::string>(), std::string("sentencepiece"));

        const QString text = m_tmp.path() + QStringLiteral("/eval.txt");
        const Run t1 = cli({QStringLiteral("tokenize"), m_model, QStringLiteral("--text"), text});
        const Run t2 = cli({QStringLiteral("tokenize"), gguf, QStringLiteral("--text"), text});
        QVERIFY2(t1.code == 0 && t2.code == 0, qPrintable(t2.err));
        QCOMPARE(t2.out, t1.out);

        auto ppl = [&](const QString& model, const QStringList& extra) {
            const Run r = cli(QStringList{QStringLiteral("eval"), model, QStringLiteral("--data"), text,
                                          QStringLiteral("--ctx"), QStringLiteral("64"), QStringLiteral("--chunks"),
                                          QStringLiteral("3"), QStringLiteral("--json")} +
                              extra);
            if (r.code != 0) qWarning("%s", qPrintable(r.err));
            return r.code == 0 ? nlohmann::json::parse(r.out.toStdString()) : nlohmann::json();
        };
        const auto folder = ppl(m_model, {});
        const auto file = ppl(gguf, {});
        const auto runtime = ppl(gguf, {QStringLiteral("--runtime"), QStringLiteral("llamacpp")});
        QVERIFY(folder.contains("ppl") && file.contains("ppl") && runtime.contains("ppl"));
        QCOMPARE(file["ppl"].get<double>(), folder["ppl"].get<double>());
        QCOMPARE(runtime["runtime"].get<std::string>(), std::string("llamacpp"));
        // The f16 KV cache is the only change for f32 weights: close, not equal.
        const double rel = runtime["ppl"].get<double>() / folder["ppl"].get<double>() - 1;
        QVERIFY2(std::abs(rel) < 1e-3 && rel != 0, qPrintable(QString::number(rel)));

        const Run an = cli({QStringLiteral("analyze"), gguf, QStringLiteral("--calib"), text,
                            QStringLiteral("--samples"), QStringLiteral("2"), QStringLiteral("--seqlen"),
                            QStringLiteral("32"), QStringLiteral("--out"), m_tmp.path() + QStringLiteral("/gguf.h5")});
        QVERIFY2(an.code == 0, qPrintable(an.err));
    }

    // A run leaves QuantLens as a fake-quant folder (which evaluates exactly as the run), as
    // llama-quantize type rules, and as a recipe that reproduces it byte for byte.
    void exportFormats()
    {
        const QString recipe = m_tmp.path() + QStringLiteral("/rtn4.json");
        std::ofstream(recipe.toStdString())
            << R"({"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": true, "group": 32}]})";
        const QString run = m_tmp.path() + QStringLiteral("/export-run");
        const QString text = m_tmp.path() + QStringLiteral("/eval.txt");
        const Run q = cli({QStringLiteral("quantize"), m_model, QStringLiteral("--recipe"), recipe,
                           QStringLiteral("--out"), run, QStringLiteral("--force")});
        QVERIFY2(q.code == 0, qPrintable(q.err));
        auto ppl = [&](const QStringList& model) {
            const Run r = cli(QStringList{QStringLiteral("eval")} + model +
                              QStringList{QStringLiteral("--data"), text, QStringLiteral("--ctx"), QStringLiteral("64"),
                                          QStringLiteral("--chunks"), QStringLiteral("3"), QStringLiteral("--json")});
            return r.code == 0 ? nlohmann::json::parse(r.out.toStdString())["ppl"].get<double>() : -1.0;
        };
        const QString fq = m_tmp.path() + QStringLiteral("/fakequant");
        const Run f = cli({QStringLiteral("export"), m_model, QStringLiteral("--run"), run, QStringLiteral("--format"),
                           QStringLiteral("fakequant"), QStringLiteral("--dtype"), QStringLiteral("F32"),
                           QStringLiteral("--out"), fq, QStringLiteral("--force")});
        QVERIFY2(f.code == 0, qPrintable(f.err));
        const double runPpl = ppl({m_model, QStringLiteral("--run"), run});
        QVERIFY(runPpl > 1);
        QCOMPARE(ppl({fq}), runPpl);
        const Run again = cli({QStringLiteral("export"), m_model, QStringLiteral("--run"), run,
                               QStringLiteral("--format"), QStringLiteral("fakequant"), QStringLiteral("--out"), fq});
        QCOMPARE(again.code, 1);
        QVERIFY2(again.err.contains(QStringLiteral("exists; pass --force")), qPrintable(again.err));

        const QString types = m_tmp.path() + QStringLiteral("/types.txt");
        const Run t = cli({QStringLiteral("export"), m_model, QStringLiteral("--run"), run, QStringLiteral("--format"),
                           QStringLiteral("tensor-types"), QStringLiteral("--gguf-type"), QStringLiteral("q8_0"),
                           QStringLiteral("--out"), types});
        QVERIFY2(t.code == 0, qPrintable(t.err));
        const std::string rules = readAll(types.toStdString());
        QVERIFY2(rules.find("^blk\\.0\\.attn_q\\.weight$=q4_0\n") != std::string::npos, rules.c_str());
        // down_proj's rows of 172 fit no 32-element block: f16, as the GGUF export writes it.
        QVERIFY2(rules.find("^blk\\.1\\.ffn_down\\.weight$=f16\n") != std::string::npos, rules.c_str());
        QCOMPARE(std::count(rules.begin(), rules.end(), '\n'), 14L + 1); // 14 linears and the embedding

        const QString exported = m_tmp.path() + QStringLiteral("/exported-recipe.json");
        const Run r = cli({QStringLiteral("export"), m_model, QStringLiteral("--run"), run, QStringLiteral("--format"),
                           QStringLiteral("recipe"), QStringLiteral("--out"), exported});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(readAll(exported.toStdString()).find("\"model_sha256\"") != std::string::npos);
        const QString rerun = m_tmp.path() + QStringLiteral("/rerun");
        const Run q2 = cli({QStringLiteral("quantize"), m_model, QStringLiteral("--recipe"), exported,
                            QStringLiteral("--out"), rerun, QStringLiteral("--force")});
        QVERIFY2(q2.code == 0 && !q2.err.contains(QStringLiteral("warning")), qPrintable(q2.err));
        QVERIFY(readAll((run + "/quantized.safetensors").toStdString()) ==
                readAll((rerun + "/quantized.safetensors").toStdString()));
        // The same recipe on other weights says so.
        const Run q3 = cli({QStringLiteral("quantize"), fq, QStringLiteral("--recipe"), exported,
                            QStringLiteral("--out"), rerun, QStringLiteral("--force")});
        QVERIFY2(q3.err.contains(QStringLiteral("warning: the recipe was run on weights")), qPrintable(q3.err));
    }

    // An export killed midway leaves nothing under the target name.
    void killedExportLeavesNoFile()
    {
        const QString big = m_tmp.path() + QStringLiteral("/big");
        qlfix::ModelSpec spec;
        spec.hidden = 1024;
        spec.intermediate = 2816;
        spec.layers = 8;
        spec.heads = 8;
        spec.kvHeads = 8;
        spec.vocab = 400;
        QVERIFY(qlfix::writeModel(big.toStdString(), spec));
        for (const char* f : {"tokenizer.model", "tokenizer_config.json"})
            QFile::copy(m_model + "/" + f, big + "/" + f);
        const QString target = m_tmp.path() + QStringLiteral("/killed.gguf");
        QProcess p;
        p.start(QStringLiteral(QL_CLI_PATH),
                {QStringLiteral("export"), big, QStringLiteral("--format"), QStringLiteral("gguf"),
                 QStringLiteral("--gguf-type"), QStringLiteral("q4_k"), QStringLiteral("--out"), target});
        QVERIFY(p.waitForStarted());
        // Kill once the temporary file exists, i.e. while tensors are being written.
        QElapsedTimer clock;
        clock.start();
        bool writing = false;
        while (!writing && clock.elapsed() < 20000 && p.state() == QProcess::Running) {
            writing = !QDir(m_tmp.path()).entryList({QStringLiteral("killed.gguf.tmp-*")}, QDir::Files).isEmpty();
            QThread::msleep(5);
        }
        QVERIFY2(writing, "the export finished or never started writing before it could be killed");
        p.kill();
        p.waitForFinished();
        QVERIFY(!QFileInfo::exists(target));
        // A killed process cannot remove its temporary; the next export of that name replaces it.
        for (const QString& f : QDir(m_tmp.path()).entryList({QStringLiteral("killed.gguf.tmp-*")}, QDir::Files))
            QFile::remove(m_tmp.path() + "/" + f);
    }

    void benchForward()
    {
        const Run r = cli({QStringLiteral("bench-forward"), m_model, QStringLiteral("--ctx"), QStringLiteral("128"),
                           QStringLiteral("--chunks"), QStringLiteral("2"), QStringLiteral("--json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QVERIFY(j["tokens_per_s"].get<double>() > 0);
        QVERIFY(j["gemm_peak_gflops"].get<double>() > 0);
    }

    void analyze()
    {
        const QString out = m_tmp.path() + QStringLiteral("/a.h5");
        const QStringList base{QStringLiteral("analyze"),   m_model,
                               QStringLiteral("--calib"),   m_tmp.path() + "/eval.txt",
                               QStringLiteral("--samples"), QStringLiteral("4"),
                               QStringLiteral("--seqlen"),  QStringLiteral("64"),
                               QStringLiteral("--out"),     out,
                               QStringLiteral("--json")};
        const Run r = cli(base);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["samples"].get<int>(), 4);
        QCOMPARE(j["top_outlier_sites"].size(), size_t(5));
        QCOMPARE(j["most_sensitive"].size(), size_t(5));
        QCOMPARE(j["sensitivity_bits"].get<int>(), 4);
        QVERIFY(QFileInfo::exists(out));
        QVERIFY(QDir(m_tmp.path()).entryList({QStringLiteral("*.tmp*")}).isEmpty());
        // Same inputs again: the store is reused, nothing recomputed.
        const Run again = cli(base);
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QCOMPARE(nlohmann::json::parse(again.out.toStdString())["calib_sha256"], j["calib_sha256"]);
        // Other calibration windows into the same store: refused, the file is left alone.
        QStringList other = base;
        other[5] = QStringLiteral("3");
        const Run refused = cli(other);
        QVERIFY(refused.code > 0);
        QVERIFY2(refused.err.contains(QStringLiteral("another calibration")), qPrintable(refused.err));
    }

    // --kl-context: the context plan's own KL is reported and stored, and a store measured in one
    // context is reused for that context only.
    void analyzeInContext()
    {
        const QString out = m_tmp.path() + QStringLiteral("/ctx.h5");
        const QString r3 = m_tmp.path() + QStringLiteral("/ctx3.json"),
                      r4 = m_tmp.path() + QStringLiteral("/ctx4.json");
        std::ofstream(r3.toStdString())
            << "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"rtn\", \"bits\": 3, \"group\": 32}]}";
        std::ofstream(r4.toStdString())
            << "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"rtn\", \"bits\": 4, \"group\": 32}]}";
        const QStringList base{QStringLiteral("analyze"),       m_model,
                               QStringLiteral("--calib"),       m_tmp.path() + "/eval.txt",
                               QStringLiteral("--samples"),     QStringLiteral("4"),
                               QStringLiteral("--seqlen"),      QStringLiteral("64"),
                               QStringLiteral("--sensitivity"), QStringLiteral("full"),
                               QStringLiteral("--kl-samples"),  QStringLiteral("1"),
                               QStringLiteral("--out"),         out,
                               QStringLiteral("--json")};
        const Run r = cli(base + QStringList{QStringLiteral("--kl-context"), r3});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QVERIFY2(j["end_to_end"]["context"].get<std::string>().rfind("ctx3.json (sha256 ", 0) == 0,
                 r.out.toStdString().c_str());
        QVERIFY(j["end_to_end"]["context_kl"].get<double>() > 0);
        auto stored = ql::AnalysisStore::read(out.toStdString());
        QVERIFY2(stored.ok(), stored.message().c_str());
        QCOMPARE(stored->endToEnd.context, j["end_to_end"]["context"].get<std::string>());
        QCOMPARE(stored->endToEnd.contextKl, j["end_to_end"]["context_kl"].get<double>());
        // The same context again is served from the store; another one is measured anew.
        const Run again = cli(base + QStringList{QStringLiteral("--kl-context"), r3});
        QVERIFY2(again.code == 0, qPrintable(again.err));
        const auto ja = nlohmann::json::parse(again.out.toStdString());
        QVERIFY(!ja["end_to_end"].contains("seconds")); // read back, not measured
        QCOMPARE(ja["end_to_end"]["context_kl"].get<double>(), j["end_to_end"]["context_kl"].get<double>());
        const Run other = cli(base + QStringList{QStringLiteral("--kl-context"), r4});
        QVERIFY2(other.code == 0, qPrintable(other.err));
        const auto k = nlohmann::json::parse(other.out.toStdString());
        QVERIFY(k["end_to_end"]["context"].get<std::string>().rfind("ctx4.json (sha256 ", 0) == 0);
        QVERIFY(k["end_to_end"]["context_kl"].get<double>() < j["end_to_end"]["context_kl"].get<double>());
        const Run noFull = cli({QStringLiteral("analyze"), m_model, QStringLiteral("--calib"),
                                m_tmp.path() + "/eval.txt", QStringLiteral("--kl-context"), r3, QStringLiteral("--out"),
                                out});
        QVERIFY(noFull.code > 0 && noFull.err.contains(QStringLiteral("needs --sensitivity full")));
    }

    // allocate on analyze's store: within the budget, the exact knapsack's predicted error at most
    // greedy's, q/k/v tied, a pin kept, and the written recipe resolving to the widths reported.
    void allocate()
    {
        const QString a = m_tmp.path() + QStringLiteral("/a.h5");
        QVERIFY2(QFileInfo::exists(a), "analyze() writes the store first");
        const QString out = m_tmp.path() + QStringLiteral("/alloc.json");
        const QString pinned = QStringLiteral("model.layers.0.mlp.down_proj");
        auto allocate = [&](const QString& allocator, const QString& budget) {
            return cli({QStringLiteral("allocate"), m_model, QStringLiteral("--analysis"), a,
                        QStringLiteral("--budget"), budget, QStringLiteral("--allocator"), allocator,
                        QStringLiteral("--tie"), QStringLiteral("qkv"), QStringLiteral("--pin"),
                        pinned + QStringLiteral("=8"), QStringLiteral("--out"), out, QStringLiteral("--json")});
        };
        const Run g = allocate(QStringLiteral("greedy"), QStringLiteral("3.5bpw"));
        QVERIFY2(g.code == 0, qPrintable(g.err));
        const Run k = allocate(QStringLiteral("knapsack"), QStringLiteral("3.5bpw"));
        QVERIFY2(k.code == 0, qPrintable(k.err));
        const auto jk = nlohmann::json::parse(k.out.toStdString()), jg = nlohmann::json::parse(g.out.toStdString());
        QCOMPARE(jk["measure"].get<std::string>(), std::string("proxy")); // the analysis has no KL
        QVERIFY(jk["exact"].get<bool>());
        QVERIFY(jk["bits_per_weight"].get<double>() <= 3.5);
        QVERIFY(jg["bits_per_weight"].get<double>() <= 3.5);
        QVERIFY(jk["predicted_error"].get<double>() <= jg["predicted_error"].get<double>() * (1 + 1e-12));
        QVERIFY(jk["layers_at_width"].size() >= 2); // 3.5 bits lies between two widths
        const auto& layers = jk["layers"];
        QCOMPARE(layers[pinned.toStdString()]["bits"].get<int>(), 8);
        auto model = ql::Model::open(m_model.toStdString());
        QVERIFY(model.ok());
        for (const auto& l : model->linearLayers())
            if (l.kind == ql::LinearKind::K || l.kind == ql::LinearKind::V)
                QCOMPARE(layers[l.name]["bits"], layers[ql::Model::linearName(l.block, ql::LinearKind::Q)]["bits"]);
        auto recipe = ql::loadRecipe(out.toStdString());
        QVERIFY2(recipe.ok(), recipe.message().c_str());
        auto specs = ql::resolveRecipe(*recipe, model->linearLayers());
        QVERIFY2(specs.ok(), specs.message().c_str());
        for (const auto& l : model->linearLayers()) {
            auto f = ql::findFormat(specs->at(l.name).weight.format);
            QVERIFY(f.ok());
            QCOMPARE(int((*f)->bits), layers[l.name]["bits"].get<int>());
        }
        // Every allocator fits the budget; none predicts less error than the exact knapsack.
        for (const char* other : {"baq", "entropy", "spike"}) {
            const Run o = allocate(QString::fromLatin1(other), QStringLiteral("3.5bpw"));
            QVERIFY2(o.code == 0, qPrintable(o.err));
            const auto jo = nlohmann::json::parse(o.out.toStdString());
            QVERIFY2(jo["bits_per_weight"].get<double>() <= 3.5, other);
            QVERIFY2(jo["predicted_error"].get<double>() >= jk["predicted_error"].get<double>() * (1 - 1e-12), other);
        }
        const Run h = allocate(QStringLiteral("hawq"), QStringLiteral("3.5bpw"));
        QVERIFY2(h.code == 0, qPrintable(h.err));
        const auto jh = nlohmann::json::parse(h.out.toStdString());
        QCOMPARE(jh["measure"].get<std::string>(), std::string("hawq"));
        QVERIFY(jh["exact"].get<bool>() && jh["bits_per_weight"].get<double>() <= 3.5);
        // A budget below every plan, and a measure the analysis lacks, are refused with the reason.
        const Run small = allocate(QStringLiteral("knapsack"), QStringLiteral("1bpw"));
        QVERIFY2(small.code == 1 && small.err.contains(QStringLiteral("below the")), qPrintable(small.err));
        const Run kl = cli({QStringLiteral("allocate"), m_model, QStringLiteral("--analysis"), a,
                            QStringLiteral("--budget"), QStringLiteral("4bpw"), QStringLiteral("--measure"),
                            QStringLiteral("kl")});
        QVERIFY2(kl.code == 1 && kl.err.contains(QStringLiteral("--sensitivity full")), qPrintable(kl.err));
    }

    // pareto: the uniform plans at every measured width and each allocator's plan per budget,
    // measured on the quick slice; a uniform point equals eval --recipe on the same windows.
    void pareto()
    {
        const QString a = m_tmp.path() + QStringLiteral("/a.h5");
        QVERIFY2(QFileInfo::exists(a), "analyze() writes the store first");
        const QString csv = m_tmp.path() + QStringLiteral("/pareto.csv"), text = m_tmp.path() + "/eval.txt";
        const Run r = cli({QStringLiteral("pareto"), m_model, QStringLiteral("--analysis"), a, QStringLiteral("--data"),
                           text, QStringLiteral("--budgets"), QStringLiteral("3.5,5"), QStringLiteral("--allocators"),
                           QStringLiteral("knapsack,greedy"), QStringLiteral("--ctx"), QStringLiteral("32"),
                           QStringLiteral("--quick"), QStringLiteral("2"), QStringLiteral("--csv"), csv,
                           QStringLiteral("--json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        const auto& points = j["points"];
        QCOMPARE(points.size(), size_t(4 + 2 * 2)); // widths 2, 3, 4, 8; two allocators at two budgets
        for (const auto& pt : points)
            if (pt["allocator"] != "uniform")
                QVERIFY2(pt["bits_per_weight"].get<double>() <= pt["budget_bpw"].get<double>() + 1e-9,
                         pt["plan"].get<std::string>().c_str());
        QFile f(csv);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(QString::fromUtf8(f.readAll()).trimmed().split(QLatin1Char('\n')).size(), 1 + int(points.size()));
        const QString recipe = m_tmp.path() + QStringLiteral("/u4.json");
        std::ofstream(recipe.toStdString())
            << R"({"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": false, "group": 128}]})";
        const Run e = cli({QStringLiteral("eval"), m_model, QStringLiteral("--recipe"), recipe,
                           QStringLiteral("--data"), text, QStringLiteral("--ctx"), QStringLiteral("32"),
                           QStringLiteral("--chunks"), QStringLiteral("2"), QStringLiteral("--json")});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        const double ppl = nlohmann::json::parse(e.out.toStdString())["ppl"].get<double>();
        QCOMPARE(points[2]["plan"].get<std::string>(), std::string("uniform rtn w4 g128"));
        QVERIFY(std::abs(points[2]["ppl"].get<double>() - ppl) <= 1e-6 * ppl);
    }

    // A llama.cpp importance matrix as the sensitivity input: analyze --imatrix instead of --calib.
    void analyzeFromImatrix()
    {
        const QString a = m_tmp.path() + QStringLiteral("/a.h5"); // written by analyze()
        QVERIFY(QFileInfo::exists(a));
        const QString im = m_tmp.path() + QStringLiteral("/im.gguf");
        const Run e = cli({QStringLiteral("export"), m_model, QStringLiteral("--format"), QStringLiteral("imatrix"),
                           QStringLiteral("--analysis"), a, QStringLiteral("--out"), im, QStringLiteral("--force")});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        const QString out = m_tmp.path() + QStringLiteral("/from-imatrix.h5");
        const QStringList base{QStringLiteral("analyze"), m_model, QStringLiteral("--imatrix"), im,
                               QStringLiteral("--out"),   out,     QStringLiteral("--json")};
        const Run r = cli(base);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["sampling"].get<std::string>(), std::string("imatrix"));
        QCOMPARE(j["samples"].get<int>(), 4); // the matrix's chunk count: the analysis's windows
        QCOMPARE(j["most_sensitive"].size(), size_t(5));
        QVERIFY(j["top_outlier_sites"].empty());
        const Run again = cli(base);
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QCOMPARE(nlohmann::json::parse(again.out.toStdString())["most_sensitive"], j["most_sensitive"]);
        // Both inputs, end-to-end KL, a truncated matrix: one-line errors.
        const Run both = cli(base + QStringList{QStringLiteral("--calib"), m_tmp.path() + "/eval.txt"});
        QVERIFY2(both.code == 1 && both.err.contains(QStringLiteral("not both")), qPrintable(both.err));
        const Run full = cli(base + QStringList{QStringLiteral("--sensitivity"), QStringLiteral("full")});
        QVERIFY2(full.code == 1 && full.err.contains(QStringLiteral("needs --calib")), qPrintable(full.err));
        const std::string bytes = readAll(im.toStdString());
        const QString cut = m_tmp.path() + QStringLiteral("/cut.gguf");
        std::ofstream(cut.toStdString(), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
        const Run truncated = cli({QStringLiteral("analyze"), m_model, QStringLiteral("--imatrix"), cut,
                                   QStringLiteral("--out"), m_tmp.path() + QStringLiteral("/cut.h5")});
        QVERIFY2(truncated.code == 1 && truncated.err.contains(cut) && truncated.err.count(QLatin1Char('\n')) == 1,
                 qPrintable(truncated.err));
        QVERIFY(!QFileInfo::exists(m_tmp.path() + QStringLiteral("/cut.h5")));
    }

    // whatif: the edited plan's quick KL and perplexity are those of a fresh eval of the edited
    // recipe, and only the edited layer is quantized again.
    void whatIf()
    {
        // A trained model: the fixture's random weights give one-hot predictions and KL of 0.
        const QString model = qltest::sharedModel(QStringLiteral("stories260k"));
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        if (!QFileInfo::exists(model + QStringLiteral("/config.json")) || !QFileInfo::exists(text))
            QSKIP(qPrintable(QStringLiteral("shared model or text missing: %1 (set QL_SHARED_DIR)").arg(model)));
        const QString recipe = m_tmp.path() + QStringLiteral("/whatif.json");
        std::ofstream(recipe.toStdString())
            << R"({"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": true, "group": 32}]})";
        const QString edited = m_tmp.path() + QStringLiteral("/whatif-edited.json");
        const QString layer = QStringLiteral("model.layers.1.mlp.up_proj");
        const Run w = cli({QStringLiteral("whatif"), model, QStringLiteral("--recipe"), recipe,
                           QStringLiteral("--edit"), layer + QStringLiteral(":bits=2"), QStringLiteral("--edit"),
                           layer + QStringLiteral(":group=64"), QStringLiteral("--data"), text, QStringLiteral("--ctx"),
                           QStringLiteral("128"), QStringLiteral("--quick"), QStringLiteral("4"),
                           QStringLiteral("--out-recipe"), edited, QStringLiteral("--json")});
        QVERIFY2(w.code == 0, qPrintable(w.err));
        const auto j = nlohmann::json::parse(w.out.toStdString());
        QCOMPARE(j["after"]["layers_quantized"].get<int>(), 1);
        QCOMPARE(j["changed_layers"].size(), size_t(1));
        QCOMPARE(j["changed_layers"][0]["layer"].get<std::string>(), layer.toStdString());
        QCOMPARE(j["changed_layers"][0]["after"]["group"].get<int>(), 64);
        QVERIFY(j["after"]["bits_per_weight"].get<double>() < j["before"]["bits_per_weight"].get<double>());
        QVERIFY(j["after"]["model_bytes"].get<int64_t>() < j["before"]["model_bytes"].get<int64_t>());
        const Run e = cli({QStringLiteral("eval"), model, QStringLiteral("--recipe"), edited, QStringLiteral("--data"),
                           text, QStringLiteral("--ctx"), QStringLiteral("128"), QStringLiteral("--chunks"),
                           QStringLiteral("4"), QStringLiteral("--kl-ref"), model, QStringLiteral("--json")});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        const auto f = nlohmann::json::parse(e.out.toStdString());
        auto rel = [](double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); };
        QVERIFY(j["after"]["mean_kl"].get<double>() > 0);
        QVERIFY(rel(j["after"]["mean_kl"].get<double>(), f["kl"]["mean_kl"].get<double>()) < 1e-6);
        QVERIFY(rel(j["after"]["top1_agreement"].get<double>(), f["kl"]["top1_agreement"].get<double>()) < 1e-6);
        QVERIFY(rel(j["after"]["ppl"].get<double>(), f["ppl"].get<double>()) < 1e-6);
        const Run bad = cli({QStringLiteral("whatif"), model, QStringLiteral("--recipe"), recipe,
                             QStringLiteral("--edit"), layer + QStringLiteral(":bits=nine"), QStringLiteral("--data"),
                             text});
        QVERIFY2(bad.code == 1 && bad.err.contains(QStringLiteral("bits")), qPrintable(bad.err));
    }

    void quantizeAndEvalWithRecipe()
    {
        const QString recipe = m_tmp.path() + QStringLiteral("/mixed.json");
        std::ofstream(recipe.toStdString())
            << "{\"version\": 1, \"name\": \"mixed\", \"pipeline\": \"sequential\",\n"
               " \"rules\": [{\"match\": \"*.mlp.*\", \"method\": \"rtn\", \"bits\": 3, \"group\": 32},\n"
               "           {\"match\": \"*\", \"method\": \"gptq\", \"bits\": 4, \"group\": 32}],\n"
               " \"skip\": [\"model.layers.1.mlp.down_proj\"]}";
        const QString run = m_tmp.path() + QStringLiteral("/run");
        const QStringList q{QStringLiteral("quantize"),  m_model,
                            QStringLiteral("--recipe"),  recipe,
                            QStringLiteral("--calib"),   m_tmp.path() + "/eval.txt",
                            QStringLiteral("--samples"), QStringLiteral("4"),
                            QStringLiteral("--seqlen"),  QStringLiteral("64"),
                            QStringLiteral("--out"),     run,
                            QStringLiteral("--json")};
        const Run r = cli(q);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["layers"].size(), size_t(14));
        QCOMPARE(j["layers_quantized"].get<int>(), 13);
        QCOMPARE(j["calib_windows"].get<int>(), 4);
        for (const auto& l : j["layers"]) {
            const std::string name = l["layer"];
            const std::string method = l["method"];
            if (name == "model.layers.1.mlp.down_proj")
                QCOMPARE(method, std::string("float"));
            else if (name.find(".mlp.") != std::string::npos)
                QCOMPARE(method, std::string("rtn"));
            else
                QCOMPARE(method, std::string("gptq"));
        }
        // 13 of 14 layers quantized at 3 or 4 bits plus fp16 scales and 3/4-bit zeros per 32 columns.
        const double bpw = j["bits_per_weight"];
        QVERIFY2(bpw > 3.5 && bpw < 4.6, qPrintable(QString::number(bpw)));
        for (const char* f : {"recipe.json", "resolved.json", "report.json", "quantized.safetensors"})
            QVERIFY2(QFileInfo::exists(run + "/" + f), f);
        QVERIFY(QDir(m_tmp.path()).entryList({QStringLiteral("run.tmp*")}, QDir::Dirs).isEmpty());
        const auto resolved = nlohmann::json::parse(readAll((run + "/resolved.json").toStdString()));
        QVERIFY2(resolved.dump().find("int3_asym") != std::string::npos, resolved.dump().c_str());
        // A run folder is not replaced without --force.
        const Run again = cli(q);
        QVERIFY(again.code > 0 && again.err.contains(QStringLiteral("pass --force")));

        const QStringList e{QStringLiteral("eval"),     m_model,
                            QStringLiteral("--data"),   m_tmp.path() + "/eval.txt",
                            QStringLiteral("--ctx"),    QStringLiteral("64"),
                            QStringLiteral("--chunks"), QStringLiteral("4"),
                            QStringLiteral("--json")};
        const Run fl = cli(e);
        QVERIFY2(fl.code == 0, qPrintable(fl.err));
        const Run qe = cli(e + QStringList{QStringLiteral("--recipe"), recipe, QStringLiteral("--calib"),
                                           m_tmp.path() + "/eval.txt", QStringLiteral("--samples"), QStringLiteral("4"),
                                           QStringLiteral("--seqlen"), QStringLiteral("64"), QStringLiteral("--kl-ref"),
                                           m_model});
        QVERIFY2(qe.code == 0, qPrintable(qe.err));
        const auto fj = nlohmann::json::parse(fl.out.toStdString()), qj = nlohmann::json::parse(qe.out.toStdString());
        QVERIFY(qj["ppl"].get<double>() != fj["ppl"].get<double>());
        QCOMPARE(qj["quantization"]["bits_per_weight"].get<double>(), bpw);
        QVERIFY(qj["kl"]["mean_kl"].get<double>() > 0);
        QCOMPARE(qj["kl"]["ppl_reference"].get<double>(), fj["ppl"].get<double>());
    }

    // diff lists exactly the layers whose resolved specs differ (found here by comparing the two
    // resolved.json files as JSON), the keys that differ, and each side's bits from report.json.
    void diffTwoRuns()
    {
        const QString base = m_tmp.path() + QStringLiteral("/diff");
        QDir().mkpath(base);
        const char* recipes[] = {
            "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"rtn\", \"bits\": 4, \"group\": 32}]}",
            "{\"version\": 1, \"rules\": [{\"match\": \"*.down_proj\", \"method\": \"rtn\", \"bits\": 2, \"group\": 16},"
            " {\"match\": \"*\", \"method\": \"rtn\", \"bits\": 4, \"group\": 32}],"
            " \"skip\": [\"model.layers.1.self_attn.q_proj\"]}"};
        QStringList runs;
        for (int i = 0; i < 2; ++i) {
            const QString recipe = base + QStringLiteral("/r%1.json").arg(i);
            std::ofstream(recipe.toStdString()) << recipes[i];
            runs << base + QStringLiteral("/run%1").arg(i);
            const Run q = cli({QStringLiteral("quantize"), m_model, QStringLiteral("--recipe"), recipe,
                               QStringLiteral("--out"), runs.back()});
            QVERIFY2(q.code == 0, qPrintable(q.err));
        }
        const Run d = cli({QStringLiteral("diff"), runs[0], runs[1], QStringLiteral("--json")});
        QVERIFY2(d.code == 0, qPrintable(d.err));
        const auto j = nlohmann::json::parse(d.out.toStdString());
        const auto ra = nlohmann::json::parse(readAll((runs[0] + "/resolved.json").toStdString()));
        const auto rb = nlohmann::json::parse(readAll((runs[1] + "/resolved.json").toStdString()));
        std::set<std::string> differing;
        for (auto it = ra.begin(); it != ra.end(); ++it)
            if (rb.at(it.key()) != it.value()) differing.insert(it.key());
        QCOMPARE(differing.size(), size_t(3)); // two down_proj, one skipped q_proj
        QCOMPARE(j["changed_layers"].get<size_t>(), differing.size());
        QCOMPARE(j["rows"].size(), differing.size());
        QCOMPARE(j["layers"].get<size_t>(), ra.size());
        QVERIFY(j["same_model"].get<bool>());
        const auto repB = nlohmann::json::parse(readAll((runs[1] + "/report.json").toStdString()));
        for (const auto& row : j["rows"]) {
            const std::string layer = row["layer"];
            QVERIFY2(differing.count(layer), layer.c_str());
            std::vector<std::string> changed = row["changed"];
            if (layer.find("down_proj") != std::string::npos) {
                QCOMPARE(changed, (std::vector<std::string>{"format", "group"}));
                QCOMPARE(row["b"]["label"].get<std::string>(), std::string("rtn int2_asym g16"));
                for (const auto& l : repB["layers"])
                    if (l["layer"] == layer)
                        QCOMPARE(row["b"]["bits_per_weight"].get<double>(), l["bits_per_weight"].get<double>());
            } else {
                QCOMPARE(layer, std::string("model.layers.1.self_attn.q_proj"));
                QCOMPARE(row["b"]["label"].get<std::string>(), std::string("float"));
                QCOMPARE(row["b"]["bits_per_weight"].get<double>(), 16.0);
                QVERIFY(std::find(changed.begin(), changed.end(), "skip") != changed.end());
            }
        }
        const Run text = cli({QStringLiteral("diff"), runs[0], runs[1]});
        QVERIFY2(text.out.contains(QStringLiteral("3 of 14 layers differ")), qPrintable(text.out));
        const Run bad = cli({QStringLiteral("diff"), runs[0], base});
        QVERIFY(bad.code != 0);
        QVERIFY2(bad.err.contains(base + QStringLiteral("/resolved.json")), qPrintable(bad.err));
    }

    void savedRunEvaluatesAsInMemory_data()
    {
        QTest::addColumn<QString>("recipe");
        QTest::newRow("gptq, rtn, skip")
            << "\"rules\": [{\"match\": \"*.mlp.*\", \"method\": \"rtn\", \"bits\": 3, \"group\": 32},"
               " {\"match\": \"*\", \"method\": \"gptq\", \"bits\": 4, \"group\": 32, \"params\": {\"act_order\": true}}],"
               " \"skip\": [\"model.layers.1.mlp.down_proj\"]";
        QTest::newRow("hadamard, gptq, a8, skip")
            << "\"transforms\": [{\"method\": \"hadamard\", \"params\": {\"seed\": 5}}],"
               " \"rules\": [{\"match\": \"*\", \"method\": \"gptq\", \"format\": \"int4_sym\", \"group\": -1}],"
               " \"activations\": {\"bits\": 8}, \"skip\": [\"model.layers.0.self_attn.o_proj\"]";
        QTest::newRow("smoothquant, pbllm")
            << "\"transforms\": [{\"method\": \"smoothquant\"}],"
               " \"rules\": [{\"match\": \"*\", \"method\": \"pbllm\", \"format\": \"binary\", \"group\": 32}]";
        QTest::newRow("awq, salient channels")
            << "\"transforms\": [{\"method\": \"awq\", \"params\": {\"group\": 32}}],"
               " \"rules\": [{\"match\": \"*\", \"method\": \"rtn\", \"bits\": 3, \"group\": 32,"
               " \"channels\": [{\"select\": \"top_absmax_percent\", \"value\": 5, \"bits\": 8}]}]";
        QTest::newRow("omniquant per channel, skip")
            << "\"rules\": [{\"match\": \"*\", \"method\": \"omniquant\", \"bits\": 3, \"sym\": false,"
               " \"group\": -1, \"params\": {\"epochs\": 2}}], \"skip\": [\"model.layers.1.mlp.down_proj\"]";
        QTest::newRow("autoround per channel")
            << "\"rules\": [{\"match\": \"*\", \"method\": \"autoround\", \"bits\": 3, \"sym\": false,"
               " \"group\": -1, \"params\": {\"iters\": 10, \"batch\": 2}}]";
    }

    void savedRunEvaluatesAsInMemory()
    {
        // The run folder holds everything the quantized model is made of: evaluating it gives the
        // perplexity of the same recipe quantized in memory.
        QFETCH(QString, recipe);
        const QString path = m_tmp.path() + QStringLiteral("/saved.json");
        std::ofstream(path.toStdString()) << "{\"version\": 1, " << recipe.toStdString() << "}";
        const QStringList calib{QStringLiteral("--calib"), m_tmp.path() + "/eval.txt", QStringLiteral("--samples"),
                                QStringLiteral("4"),       QStringLiteral("--seqlen"), QStringLiteral("64")};
        const QString run = m_tmp.path() + QStringLiteral("/saved-run");
        const Run q = cli(QStringList{QStringLiteral("quantize"), m_model, QStringLiteral("--recipe"), path,
                                      QStringLiteral("--out"), run, QStringLiteral("--force")} +
                          calib);
        QVERIFY2(q.code == 0, qPrintable(q.err));
        const QStringList e{QStringLiteral("eval"),     m_model,
                            QStringLiteral("--data"),   m_tmp.path() + "/eval.txt",
                            QStringLiteral("--ctx"),    QStringLiteral("64"),
                            QStringLiteral("--chunks"), QStringLiteral("4"),
                            QStringLiteral("--json")};
        const Run mem = cli(e + QStringList{QStringLiteral("--recipe"), path} + calib);
        const Run saved = cli(e + QStringList{QStringLiteral("--run"), run});
        const Run flt = cli(e);
        QVERIFY2(mem.code == 0 && saved.code == 0 && flt.code == 0, qPrintable(mem.err + saved.err + flt.err));
        const double a = nlohmann::json::parse(mem.out.toStdString())["ppl"];
        const double b = nlohmann::json::parse(saved.out.toStdString())["ppl"];
        const double f = nlohmann::json::parse(flt.out.toStdString())["ppl"];
        QVERIFY2(a != f, "the recipe changed nothing: the comparison would prove nothing");
        // Same weights, same forward pass: only the order of float sums may differ.
        QVERIFY2(std::abs(a - b) <= 1e-6 * a,
                 qPrintable(QStringLiteral("in memory %1, saved %2").arg(a, 0, 'g', 12).arg(b, 0, 'g', 12)));
    }

    void transformsPreservePerplexity_data()
    {
        QTest::addColumn<QString>("transforms");
        QTest::newRow("hadamard") << "[{\"method\": \"hadamard\", \"params\": {\"seed\": 3}}]";
        QTest::newRow("smoothquant") << "[{\"method\": \"smoothquant\", \"params\": {\"alpha\": 0.85}}]";
        QTest::newRow("both") << "[{\"method\": \"hadamard\"}, {\"method\": \"smoothquant\"}]";
        // AWQ's scale folds alone are function-preserving; its clipping is not, so it is off here.
        QTest::newRow("awq scales") << "[{\"method\": \"awq\", \"params\": {\"clip\": false, \"group\": 32}}]";
    }

    void transformsPreservePerplexity()
    {
        // With quantization off (no rules), a transform must leave perplexity unchanged (and a
        // transform that needs calibration data gets it through the plugin host).
        QFETCH(QString, transforms);
        const QString recipe = m_tmp.path() + QStringLiteral("/transform.json");
        std::ofstream(recipe.toStdString())
            << "{\"version\": 1, \"rules\": [], \"transforms\": " << transforms.toStdString() << "}";
        const QStringList e{QStringLiteral("eval"),     m_model,
                            QStringLiteral("--data"),   m_tmp.path() + "/eval.txt",
                            QStringLiteral("--ctx"),    QStringLiteral("64"),
                            QStringLiteral("--chunks"), QStringLiteral("4"),
                            QStringLiteral("--json")};
        const Run fl = cli(e);
        const Run tr = cli(e + QStringList{QStringLiteral("--recipe"), recipe, QStringLiteral("--calib"),
                                           m_tmp.path() + "/eval.txt", QStringLiteral("--samples"), QStringLiteral("4"),
                                           QStringLiteral("--seqlen"), QStringLiteral("64")});
        QVERIFY2(fl.code == 0 && tr.code == 0, qPrintable(fl.err + tr.err));
        const double a = nlohmann::json::parse(fl.out.toStdString())["ppl"],
                     b = nlohmann::json::parse(tr.out.toStdString())["ppl"];
        QVERIFY2(std::abs(a - b) <= 1e-4 * a,
                 qPrintable(QStringLiteral("float %1, transformed %2").arg(a, 0, 'g', 10).arg(b, 0, 'g', 10)));
    }

    void plugins()
    {
        const Run r = cli({QStringLiteral("plugins"), QStringLiteral("--json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        std::set<std::string> ids;
        for (const auto& m : j["methods"]) {
            ids.insert(m["id"].get<std::string>());
            QVERIFY(!m["parameters"].empty());
            for (const auto& p : m["parameters"]) QVERIFY(p.contains("default") && p.contains("help"));
        }
        for (const char* id : {"rtn", "gptq", "pbllm", "hadamard", "smoothquant", "omniquant", "autoround"})
            QVERIFY2(ids.count(id), id);
        for (const auto& m : j["methods"])
            if (m["id"] == "omniquant" || m["id"] == "autoround")
                QCOMPARE(m["kind"].get<std::string>(), std::string("block quantizer"));
        QVERIFY(j["problems"].empty());
    }

    // The fixture model with a NaN in block 0's down_proj.
    QString nanModel()
    {
        const QString dir = m_tmp.path() + QStringLiteral("/nan-model");
        if (QFileInfo::exists(dir + "/model.safetensors")) return dir;
        qlfix::ModelSpec spec;
        spec.vocab = 400;
        auto tensors = qlfix::makeWeights(spec);
        for (auto& t : tensors)
            if (t.name == "model.layers.0.mlp.down_proj.weight") t.data[size_t(spec.intermediate + 2)] = NAN;
        QDir().mkpath(dir);
        std::ofstream(dir.toStdString() + "/config.json") << qlfix::configJson(spec);
        if (!qlfix::writeSafetensors(dir.toStdString() + "/model.safetensors", tensors, {})) return {};
        for (const char* f : {"tokenizer.model", "tokenizer_config.json"})
            QFile::copy(m_model + "/" + f, dir + "/" + f);
        return dir;
    }

    void nonFiniteWeightsOnRequest()
    {
        // Refused by default (badInput); with --allow-nonfinite the run goes on and says which
        // tensor is bad, and the perplexity shows the damage instead of hiding it.
        const QString data = m_tmp.path() + "/eval.txt";
        const Run r = cli({QStringLiteral("eval"), nanModel(), QStringLiteral("--data"), data, QStringLiteral("--ctx"),
                           QStringLiteral("32"), QStringLiteral("--chunks"), QStringLiteral("2"),
                           QStringLiteral("--allow-nonfinite"), QStringLiteral("--json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.err.contains(QStringLiteral("warning: ")) &&
                     r.err.contains(QStringLiteral("model.layers.0.mlp.down_proj.weight holds NaN at [1, 2]")),
                 qPrintable(r.err));
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QVERIFY(!j["ppl"].is_number() || std::isnan(j["ppl"].get<double>()));
    }

    void badInput_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expect");
        const QString data = QStringLiteral("%DATA%");
        QTest::newRow("unknown command") << QStringList{"frobnicate"} << "unknown command 'frobnicate'";
        QTest::newRow("missing model") << QStringList{"info", "/nonexistent/model"}
                                       << "/nonexistent/model: not a folder";
        QTest::newRow("eval without data") << QStringList{"eval", "%MODEL%"} << "eval needs --data FILE";
        QTest::newRow("missing data file")
            << QStringList{"eval", "%MODEL%", "--data", "/nonexistent.txt"} << "/nonexistent.txt: cannot open";
        QTest::newRow("bad protocol") << QStringList{"eval", "%MODEL%", "--data", data, "--protocol", "hf"}
                                      << "--protocol must be llamacpp or paper";
        QTest::newRow("zero chunks") << QStringList{"eval", "%MODEL%", "--data", data, "--chunks", "0"}
                                     << "--chunks must be positive";
        QTest::newRow("ctx not a number")
            << QStringList{"eval", "%MODEL%", "--data", data, "--ctx", "abc"} << "--ctx expects an integer";
        QTest::newRow("text too short") << QStringList{"eval",  "%MODEL%", "--data",     data,
                                                       "--ctx", "100000",  "--force-ctx"}
                                        << "fewer than one window of 100000";
        QTest::newRow("ctx beyond trained positions")
            << QStringList{"eval", "%MODEL%", "--data", data, "--ctx", "100000"}
            << "--ctx 100000 is longer than the model's trained positions (max_position_embeddings 512";
        QTest::newRow("NaN weights") << QStringList{"eval", "%NANMODEL%", "--data", data, "--ctx", "32"}
                                     << "tensor model.layers.0.mlp.down_proj.weight holds NaN at [1, 2]";
        // Exports read fp32 weights from the mapping and check each row as they encode it.
        QTest::newRow("NaN weights into GGUF")
            << QStringList{"export", "%NANMODEL%", "--format", "gguf", "--gguf-type", "q8_0", "--out", "%TMP%/nan.gguf"}
            << "tensor model.layers.0.mlp.down_proj.weight holds NaN at [1, 2]";
        QTest::newRow("empty data") << QStringList{"eval", "%MODEL%", "--data", "%EMPTY%"}
                                    << "the evaluation file is empty";
        QTest::newRow("tokenize without text") << QStringList{"tokenize", "%MODEL%"} << "tokenize needs --text FILE";
        const QStringList an{"analyze", "%MODEL%", "--samples", "2", "--seqlen", "32"};
        QTest::newRow("analyze empty calibration")
            << (an + QStringList{"--calib", "%EMPTY%", "--out", "%TMP%/x.h5"}) << "the calibration file is empty";
        QTest::newRow("analyze jsonl without text") << (an + QStringList{"--calib", "%NOTEXT%", "--out", "%TMP%/x.h5"})
                                                    << "notext.jsonl:2: line has no \"text\"";
        QTest::newRow("analyze zero samples")
            << QStringList{"analyze", "%MODEL%", "--calib", data, "--samples", "0", "--out", "%TMP%/x.h5"}
            << "--samples must be at least 1";
        QTest::newRow("analyze seqlen beyond trained positions")
            << QStringList{"analyze", "%MODEL%",  "--calib", data,    "--samples",
                           "1",       "--seqlen", "600",     "--out", "%TMP%/x.h5"}
            << "--seqlen 600 is longer than the model's trained positions";
        QTest::newRow("analyze out folder missing")
            << (an + QStringList{"--calib", data, "--out", "/nonexistent/dir/x.h5"})
            << "/nonexistent/dir: folder does not exist";
        QTest::newRow("analyze calibration too short")
            << QStringList{"analyze", "%MODEL%", "--calib", data, "--samples", "100000", "--out", "%TMP%/x.h5"}
            << "contiguous windows of 512 need";
        QTest::newRow("analyze store from another model")
            << (an + QStringList{"--calib", data, "--out", "%OTHER%"}) << "another model";
        QTest::newRow("unknown option") << QStringList{"info", "%MODEL%", "--bogus"} << "Unknown option 'bogus'";
        QTest::newRow("quantize without recipe")
            << QStringList{"quantize", "%MODEL%", "--out", "%TMP%/r"} << "quantize needs --recipe";
        QTest::newRow("quantize recipe error path")
            << QStringList{"quantize", "%MODEL%", "--recipe", "%BADRECIPE%", "--out", "%TMP%/r"}
            << "rules[0].bits: expected an integer in 2..8";
        QTest::newRow("quantize unknown method")
            << QStringList{"quantize", "%MODEL%", "--recipe", "%NOMETHOD%", "--out", "%TMP%/r"}
            << "asks for method \"gpt5\", which no plugin provides";
        QTest::newRow("gptq without calibration")
            << QStringList{"quantize", "%MODEL%", "--recipe", "%GPTQ%", "--out", "%TMP%/r"} << "needs calibration data";
        QTest::newRow("runtime without a GGUF")
            << QStringList{"eval", "%MODEL%", "--data", data, "--runtime", "llamacpp"}
            << "--runtime llamacpp reads the weight types of a GGUF file";
        QTest::newRow("unknown runtime") << QStringList{"eval", "%MODEL%", "--data", data, "--runtime", "vllm"}
                                         << "--runtime must be llamacpp, got 'vllm'";
        QTest::newRow("truncated GGUF") << QStringList{"eval", "%TMP%/truncated.gguf", "--data", data}
                                        << "truncated.gguf";
        QTest::newRow("export unknown format")
            << QStringList{"export", "%MODEL%", "--format", "onnx", "--out", "%TMP%/x"}
            << "--format must be gguf, tensor-types, fakequant, recipe, imatrix or gptq, got 'onnx'";
        QTest::newRow("export imatrix without analysis")
            << QStringList{"export", "%MODEL%", "--format", "imatrix", "--out", "%TMP%/x.imatrix"}
            << "--format imatrix needs --analysis FILE.h5";
        QTest::newRow("export gguf with a missing imatrix")
            << QStringList{"export", "%MODEL%",     "--format", "gguf", "--imatrix", "/nonexistent.imatrix",
                           "--out",  "%TMP%/x.gguf"}
            << "/nonexistent.imatrix: cannot read";
        QTest::newRow("export imatrix of another model's analysis")
            << QStringList{"export",     "%MODEL%", "--format", "imatrix",
                           "--analysis", "%OTHER%", "--out",    "%TMP%/x.imatrix"}
            << "an analysis of other weights";
        QTest::newRow("export unwritable path")
            << QStringList{"export", "%MODEL%", "--format", "gguf", "--out", "/proc/x.gguf"} << "/proc/x.gguf";
        QTest::newRow("export into missing folder")
            << QStringList{"export", "%MODEL%", "--format", "gguf", "--out", "/nonexistent/x.gguf"}
            << "/nonexistent: folder does not exist";
        QTest::newRow("export recipe without a run")
            << QStringList{"export", "%MODEL%", "--format", "recipe", "--out", "%TMP%/x.json"}
            << "--format recipe needs --run RUN_DIR";
        QTest::newRow("export run of another model")
            << QStringList{"export", "%TMP%/other-model", "--run", "%TMP%/export-run", "--format", "gguf",
                           "--out",  "%TMP%/x.gguf"}
            << "quantized from other weights";
        QTest::newRow("eval recipe missing")
            << QStringList{"eval", "%MODEL%", "--data", data, "--recipe", "/nonexistent.json"} << "/nonexistent.json";
    }
    void badInput()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, expect);
        std::ofstream(m_tmp.path().toStdString() + "/empty.txt").close();
        std::ofstream(m_tmp.path().toStdString() + "/truncated.gguf") << "GGUF\x03\x00\x00\x00\x02";
        std::ofstream(m_tmp.path().toStdString() + "/badrecipe.json")
            << "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"rtn\", \"bits\": \"four\"}]}";
        std::ofstream(m_tmp.path().toStdString() + "/nomethod.json")
            << "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"gpt5\", \"bits\": 4}]}";
        std::ofstream(m_tmp.path().toStdString() + "/gptq.json")
            << "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"gptq\", \"bits\": 4}]}";
        std::ofstream(m_tmp.path().toStdString() + "/notext.jsonl") << "{\"text\": \"a b c\"}\n{\"url\": \"u\"}\n";
        const QString other = m_tmp.path() + QStringLiteral("/other.h5");
        if (!QFileInfo::exists(other)) { // a store made from a different model
            const QString otherModel = m_tmp.path() + QStringLiteral("/other-model");
            qlfix::ModelSpec spec;
            spec.vocab = 400;
            spec.seed = 42;
            QVERIFY(qlfix::writeModel(otherModel.toStdString(), spec));
            for (const char* f : {"tokenizer.model", "tokenizer_config.json"})
                QFile::copy(m_model + "/" + f, otherModel + "/" + f);
            const Run made = cli({QStringLiteral("analyze"), otherModel, QStringLiteral("--calib"),
                                  m_tmp.path() + "/eval.txt", QStringLiteral("--samples"), QStringLiteral("2"),
                                  QStringLiteral("--seqlen"), QStringLiteral("32"), QStringLiteral("--out"), other});
            QVERIFY2(made.code == 0, qPrintable(made.err));
        }
        for (QString& a : args) {
            a.replace(QStringLiteral("%MODEL%"), m_model);
            a.replace(QStringLiteral("%NANMODEL%"), nanModel());
            a.replace(QStringLiteral("%DATA%"), m_tmp.path() + "/eval.txt");
            a.replace(QStringLiteral("%EMPTY%"), m_tmp.path() + "/empty.txt");
            a.replace(QStringLiteral("%NOTEXT%"), m_tmp.path() + "/notext.jsonl");
            a.replace(QStringLiteral("%OTHER%"), other);
            a.replace(QStringLiteral("%TMP%"), m_tmp.path());
            a.replace(QStringLiteral("%BADRECIPE%"), m_tmp.path() + "/badrecipe.json");
            a.replace(QStringLiteral("%NOMETHOD%"), m_tmp.path() + "/nomethod.json");
            a.replace(QStringLiteral("%GPTQ%"), m_tmp.path() + "/gptq.json");
        }
        const Run r = cli(args);
        QVERIFY2(r.code > 0, qPrintable(QString::number(r.code)));
        QVERIFY2(r.err.contains(expect), qPrintable(r.err));
        QVERIFY2(r.err.startsWith(QStringLiteral("error: ")), qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
