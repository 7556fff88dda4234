// Nothing lost on kill: quantlens-cli is killed with SIGKILL at random moments while it writes an
// analysis store, a run folder and a GGUF file over complete old ones. After every kill the
// target must be the old complete file (byte for byte) or a new complete one (read back in
// full), and a run afterwards must succeed.
#include "fixturemodel.h"
#include "quantlens/export/ggufreader.h"
#include "quantlens/model/model.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/store/runstate.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QThread>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <functional>
#include <random>

namespace {

constexpr int kKills = 50;

// The bytes of a file, or of every file in a folder (name, size, bytes), for "unchanged".
QByteArray contents(const QString& path)
{
    if (QFileInfo(path).isDir()) {
        QByteArray all;
        for (const QString& f : QDir(path).entryList(QDir::Files, QDir::Name))
            all += f.toUtf8() + '\0' + contents(path + "/" + f);
        return all;
    }
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// Replaces `to` (a file or folder) by a copy of `from`.
bool restore(const QString& from, const QString& to)
{
    if (QFileInfo(from).isDir()) {
        QDir(to).removeRecursively();
        if (!QDir().mkpath(to)) return false;
        for (const QString& f : QDir(from).entryList(QDir::Files))
            if (!QFile::copy(from + "/" + f, to + "/" + f)) return false;
        return true;
    }
    QFile::remove(to);
    return QFile::copy(from, to);
}

int runToEnd(const QStringList& args)
{
    QProcess p;
    p.start(QStringLiteral(QL_CLI_PATH), args);
    p.waitForFinished(120000);
    return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
}

} // namespace

class TestCliKill : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_model, m_calib;
    std::unique_ptr<ql::Model> m_opened;

    QString path(const QString& rel) const { return m_tmp.path() + "/" + rel; }

    // Kills `args` kKills times at random moments (half over the whole run, half near its end,
    // where the writing happens) and checks the target after each with `complete`.
    void killRepeatedly(const QStringList& args, const QString& target,
                        const std::function<bool(const QString&, QString*)>& complete)
    {
        const QByteArray old = contents(target);
        QVERIFY2(!old.isEmpty(), "the old target was not made");
        const QString pristine = target + ".old";
        QVERIFY(restore(target, pristine));
        QElapsedTimer t;
        t.start();
        QCOMPARE(runToEnd(args), 0);
        const qint64 full = std::max<qint64>(t.elapsed(), 20);
        std::mt19937 rng(7);
        int midRun = 0, replaced = 0;
        for (int k = 0; k < kKills; ++k) {
            QVERIFY(restore(pristine, target)); // every kill interrupts a replacement of the old target
            std::uniform_int_distribution<qint64> when(k % 2 ? full * 7 / 10 : 0, full * 105 / 100);
            const qint64 at = when(rng);
            QProcess p;
            p.start(QStringLiteral(QL_CLI_PATH), args);
            QVERIFY(p.waitForStarted());
            QThread::msleep(static_cast<unsigned long>(at));
            if (p.state() == QProcess::Running) {
                ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
                ++midRun;
            }
            p.waitForFinished(120000);
            const QByteArray now = contents(target);
            if (now == old) continue;
            QString why;
            QVERIFY2(complete(target, &why), qPrintable(QStringLiteral("kill %1 at %2 ms of %3: %4 is torn: %5")
                                                            .arg(k)
                                                            .arg(at)
                                                            .arg(full)
                                                            .arg(target, why)));
            ++replaced;
        }
        qInfo("%s: %d of %d kills landed while it ran; the target was old afterwards %d times and new %d times, "
              "never torn",
              qPrintable(args.first()), midRun, kKills, kKills - replaced, replaced);
        QVERIFY2(midRun >= kKills / 2, "too few kills landed during the run to test anything");
        QCOMPARE(runToEnd(args), 0); // what the kills left behind does not stop the next run
        QString why;
        QVERIFY2(complete(target, &why), qPrintable(why));
    }

private slots:
    void initTestCase()
    {
        m_model = path("model");
        qlfix::ModelSpec spec;
        spec.vocab = 400;
        spec.layers = 4;
        const std::string text = qlfix::storyText(400);
        std::string err;
        QVERIFY2(qlfix::writeTokenizedModel(m_model.toStdString(), spec, text, &err), err.c_str());
        m_calib = path("calib.txt");
        std::ofstream(m_calib.toStdString()) << text;
        auto m = ql::Model::open(m_model.toStdString());
        QVERIFY(m);
        m_opened = std::make_unique<ql::Model>(std::move(*m));
    }

    void analysisStore()
    {
        const QString store = path("a.h5");
        QCOMPARE(runToEnd({"analyze", m_model, "--calib", m_calib, "--samples", "2", "--seqlen", "32", "--out", store}),
                 0);
        killRepeatedly(
            {"analyze", m_model, "--calib", m_calib, "--samples", "4", "--seqlen", "64", "--force", "--out", store},
            store, [](const QString& f, QString* why) {
                auto r = ql::AnalysisStore::read(f.toStdString());
                if (!r) *why = QString::fromStdString(r.message());
                return bool(r);
            });
    }

    void runFolder()
    {
        const QString run = path("run");
        auto recipe = [&](const char* name, int bits) {
            const QString f = path(name);
            std::ofstream(f.toStdString()) << R"({"version": 1, "rules": [{"match": "*", "method": "gptq", "bits": )"
                                           << bits << R"(, "group": 32}]})";
            return f;
        };
        const QStringList common{"--calib", m_calib, "--samples", "4", "--seqlen", "64", "--force", "--out", run};
        QCOMPARE(runToEnd(QStringList{"quantize", m_model, "--recipe", recipe("w4.json", 4)} + common), 0);
        killRepeatedly(QStringList{"quantize", m_model, "--recipe", recipe("w3.json", 3)} + common, run,
                       [&](const QString& f, QString* why) {
                           auto state = ql::readRunState((f + "/quantized.safetensors").toStdString(), *m_opened);
                           if (!state) return *why = QString::fromStdString(state.message()), false;
                           std::ifstream report((f + "/report.json").toStdString());
                           const auto j = nlohmann::json::parse(report, nullptr, false);
                           if (j.is_discarded()) return *why = QStringLiteral("report.json is not JSON"), false;
                           return true;
                       });
    }

    void ggufFile()
    {
        const QString gguf = path("m.gguf");
        QCOMPARE(runToEnd({"export", m_model, "--format", "gguf", "--gguf-type", "q8_0", "--out", gguf}), 0);
        killRepeatedly({"export", m_model, "--format", "gguf", "--gguf-type", "f32", "--out", gguf}, gguf,
                       [](const QString& f, QString* why) {
                           auto g = ql::GgufFile::open(f.toStdString());
                           if (!g) return *why = QString::fromStdString(g.message()), false;
                           for (const auto& t : g->tensors())
                               if (auto v = g->readFloat(t.name); !v)
                                   return *why = QString::fromStdString(v.message()), false;
                           return true;
                       });
    }
};

QTEST_GUILESS_MAIN(TestCliKill)
#include "tst_cli_kill.moc"
