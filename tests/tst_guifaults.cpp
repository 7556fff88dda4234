// Faults in the window. Plugins that misbehave: a method that throws, fails, returns a wrong shape
// or NaN values fails its own quantize job with a message naming the plugin and an error dialog;
// one that never returns is abandoned when canceled, naming the plugin. An analysis that will not
// fit in memory is refused with the estimate before it starts. In every case the window goes on
// working (the next job succeeds). Uses tests/plugins/misbehaving.cpp on a fixture model (no
// ../shared needed).
#include "fixturemodel.h"
#include "guitestutil.h"
#include "mainwindow.h"
#include "pluginregistry.h"
#include "workbench.h"

#include <QDir>
#include <QFile>
#include <QMessageBox>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace ql;
using qltest::finish;

class TestGuiFaults : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_project;

    QString path(const QString& name) const { return m_tmp.path() + QLatin1Char('/') + name; }

    // The plan: RTN everywhere but block 0's down_proj, which gets `method`.
    static QString recipeWith(const QString& method)
    {
        return QStringLiteral(R"({"version": 1, "rules": [
            {"match": "model.layers.0.mlp.down_proj", "method": "%1", "bits": 4},
            {"match": "*", "method": "rtn", "bits": 4, "group": 32}]})")
            .arg(method);
    }

    // Quantizes the plan as run `name`; the job as it ended.
    static Job* quantize(Workbench& wb, const QString& name, const QString& folder)
    {
        Job* job = wb.plan()->quantize(name, folder);
        return finish(job) ? job : nullptr;
    }

    // The window still works: an RTN plan quantizes.
    void stillWorks(Workbench& wb, const QString& name)
    {
        QVERIFY(wb.plan()->setRecipeJson(recipeWith(QStringLiteral("rtn"))));
        Job* ok = quantize(wb, name, path(QStringLiteral("runs/") + name));
        QVERIFY(ok);
        QVERIFY2(ok->state() == Job::State::Succeeded, qPrintable(ok->error()));
    }

private slots:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        qputenv("QL_PLUGIN_PATH", QByteArray(QL_TEST_PLUGIN_DIR));
        qputenv("QL_TEST_HANG_RELEASE", path(QStringLiteral("release-hang")).toLocal8Bit());
        const std::string text = qlfix::storyText(200);
        qlfix::ModelSpec spec;
        spec.vocab = 300;
        spec.layers = 2;
        std::string err;
        QVERIFY2(qlfix::writeTokenizedModel(path(QStringLiteral("model")).toStdString(), spec, text, &err),
                 err.c_str());
        std::ofstream(path(QStringLiteral("calib.txt")).toStdString()) << text;
        m_project = path(QStringLiteral("p.qlproj"));
        std::ofstream(m_project.toStdString())
            << R"({"version": 1, "model": "model", "calibration": {"file": "calib.txt", "samples": 2, "seqlen": 32,
                 "sampling": "contiguous"}, "evaluation": {"quick_windows": 2, "quick_ctx": 32}})";
        QVERIFY(QDir().mkpath(path(QStringLiteral("runs"))));
    }

    void brokenMethodFailsItsJob_data()
    {
        QTest::addColumn<QString>("method");
        QTest::addColumn<QString>("expected");
        const QString who = QStringLiteral("plugin misbehaving, method %1, layer model.layers.0.mlp.down_proj: ");
        QTest::newRow("throws") << "throws" << who.arg(QStringLiteral("throws")) + "threw: out of cheese";
        QTest::newRow("fails") << "fails" << who.arg(QStringLiteral("fails")) + "cannot quantize this";
        QTest::newRow("wrong shape") << "wrong_shape"
                                     << who.arg(QStringLiteral("wrong_shape")) + "returned a weight of the wrong shape";
        QTest::newRow("NaN codes") << "nan_codes"
                                   << who.arg(QStringLiteral("nan_codes")) + "returned NaN or infinite values in 1 of ";
    }

    void brokenMethodFailsItsJob()
    {
        QFETCH(QString, method);
        QFETCH(QString, expected);
        Workbench wb;
        MainWindow w(&wb);
        wb.plan()->setLive(false);
        QVERIFY(finish(wb.openProject(m_project)));
        QVERIFY(wb.plugins().quantizer(method.toStdString()));
        auto set = wb.plan()->setRecipeJson(recipeWith(method));
        QVERIFY2(set, set.message().c_str());
        Job* job = quantize(wb, method, path(QStringLiteral("runs/") + method));
        QVERIFY(job);
        QCOMPARE(job->state(), Job::State::Failed);
        QVERIFY2(job->error().contains(expected), qPrintable(job->error()));
        // The error dialog says the same, and no run folder was left behind.
        QVERIFY2(w.lastError().contains(expected), qPrintable(w.lastError()));
        QVERIFY(!w.findChildren<QMessageBox*>().isEmpty());
        QVERIFY(!QFileInfo::exists(path(QStringLiteral("runs/") + method)));
        QCOMPARE(wb.plan()->runs().size(), 0);
        stillWorks(wb, method + QStringLiteral("-after"));
        QCOMPARE(wb.plan()->runs().size(), 1);
    }

    // Under a memory limit the analysis is refused with its estimate, in the job and the dialog,
    // and nothing is replaced; without it the same analysis runs.
    void analysisThatWillNotFit()
    {
        Workbench wb;
        MainWindow w(&wb);
        wb.plan()->setLive(false);
        QVERIFY(finish(wb.openProject(m_project)));
        const auto before = wb.snapshot();
        qputenv("QL_MEMORY_LIMIT", "64M");
        Job* refused = wb.runAnalysis();
        QVERIFY(finish(refused));
        qunsetenv("QL_MEMORY_LIMIT");
        QCOMPARE(refused->state(), Job::State::Failed);
        QVERIFY2(refused->error().contains(QStringLiteral("analysing needs an estimated")) &&
                     refused->error().contains(QStringLiteral("64 MiB is available (QL_MEMORY_LIMIT)")),
                 qPrintable(refused->error()));
        QVERIFY2(w.lastError().contains(QStringLiteral("analysing needs an estimated")), qPrintable(w.lastError()));
        QCOMPARE(wb.snapshot(), before);
        Job* ok = wb.runAnalysis();
        QVERIFY(finish(ok));
        QVERIFY2(ok->state() == Job::State::Succeeded, qPrintable(ok->error()));
    }

    // A method that never returns: cancel ends the job after the grace period, naming the
    // plugin; another job runs meanwhile; freed, the stuck thread ends and nothing is applied.
    void methodThatNeverReturns()
    {
        Workbench wb;
        MainWindow w(&wb);
        wb.plan()->setLive(false);
        wb.jobs()->setCancelGrace(300);
        QVERIFY(finish(wb.openProject(m_project)));
        QVERIFY(wb.plan()->setRecipeJson(recipeWith(QStringLiteral("hangs"))));
        Job* job = wb.plan()->quantize(QStringLiteral("hangs"), path(QStringLiteral("runs/hangs")));
        QVERIFY(job);
        QTRY_VERIFY_WITH_TIMEOUT(!PluginRegistry::callsInProgress().empty(), 60000);
        QVERIFY(!finish(job, 1000)); // it does not return on its own
        job->cancel();
        QVERIFY(finish(job, 10000));
        QCOMPARE(job->state(), Job::State::Failed);
        QVERIFY2(job->error().contains(QStringLiteral("did not stop within 0.3 s of the cancel; it is inside plugin "
                                                      "misbehaving, method hangs, layer model.layers.0.mlp.down_proj")),
                 qPrintable(job->error()));
        QVERIFY2(w.lastError().contains(QStringLiteral("plugin misbehaving, method hangs")), qPrintable(w.lastError()));
        QCOMPARE(wb.jobs()->abandoned(), 1);
        QCOMPARE(wb.jobs()->running(), 0);

        stillWorks(wb, QStringLiteral("beside-the-stuck-one"));
        QCOMPARE(wb.plan()->runs().size(), 1);

        // Freed, the abandoned work returns; its result is dropped, not applied.
        QFile(path(QStringLiteral("release-hang"))).open(QIODevice::WriteOnly);
        QTRY_VERIFY_WITH_TIMEOUT(PluginRegistry::callsInProgress().empty(), 10000);
        QTest::qWait(500);
        QCOMPARE(job->state(), Job::State::Failed);
        QCOMPARE(wb.plan()->runs().size(), 1);
        QVERIFY(!QFileInfo::exists(path(QStringLiteral("runs/hangs")))); // the canceled run stopped before writing
    }
};

QTEST_MAIN(TestGuiFaults)
#include "tst_guifaults.moc"
