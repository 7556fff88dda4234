// The workbench window on the offscreen platform: a fixture project opened and analysed through
// the Jobs machinery, a canceled analysis that leaves the project as it was, views following
// the one selection, chart export, a screenshot from the real executable, the README's walk
// through the shared stories260k model, and bad input that shows a message and leaves the
// window usable.
#include "channelstatsmodel.h"
#include "chartpanel.h"
#include "depthmodel.h"
#include "entropymodel.h"
#include "entropyview.h"
#include "explorerview.h"
#include "exportable.h"
#include "fixturemodel.h"
#include "guitestutil.h"
#include "heatmapwidget.h"
#include "histogrammodel.h"
#include "jobrunner.h"
#include "jobsview.h"
#include "layertablemodel.h"
#include "mainwindow.h"
#include "massiveview.h"
#include "outliersview.h"
#include "planeditor.h"
#include "plantablemodel.h"
#include "overviewview.h"
#include "residualdepthmodel.h"
#include "sensitivitymodel.h"
#include "sensitivityview.h"
#include "testpaths.h"
#include "weightsview.h"
#include "workbench.h"

#include "quantlens/export/ggufexport.h"
#include "quantlens/store/analysisstore.h"
#include "quantlens/text/calibration.h"
#include "quantlens/model/model.h"
#include "quantlens/text/tokenizer.h"

#include <QChart>
#include <QFile>
#include <QImage>
#include <QProcess>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QMenu>
#include <QMimeData>
#include <QSettings>
#include <QStandardPaths>
#include <QUrl>
#include <QDragEnterEvent>
#include <QDockWidget>
#include <QHeaderView>
#include <QScreen>
#include <QTreeView>
#include <QtTest>

#include <array>
#include <cerrno>
#include <fstream>
#include <memory>
#include <new>
#include <stdexcept>

#include <omp.h>
#ifdef __linux__
#include <sys/resource.h>
#endif

using namespace ql;
using qltest::finish;

namespace {

QByteArray readBytes(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// Distinct colours in an image: a blank or single-colour picture has one or two.
int distinctColours(const QImage& img)
{
    QSet<QRgb> seen;
    for (int y = 0; y < img.height(); y += 2)
        for (int x = 0; x < img.width(); x += 2) seen.insert(img.pixel(x, y));
    return int(seen.size());
}

} // namespace

class TestGui : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_project, m_store;

    QString path(const QString& name) const { return m_tmp.path() + QLatin1Char('/') + name; }

    void writeProject(const QString& file, const QString& model, const QString& calib, const QString& store = {},
                      const char* sensitivity = "proxy")
    {
        std::ofstream out(file.toStdString());
        out << "{\"version\": 1, \"model\": \"" << model.toStdString() << "\", \"calibration\": {\"file\": \""
            << calib.toStdString() << "\", \"samples\": 4, \"seqlen\": 32, \"sampling\": \"contiguous\"}";
        if (!store.isEmpty()) out << ", \"analysis\": \"" << store.toStdString() << "\"";
        out << ", \"sensitivity\": \"" << sensitivity << "\"}";
    }

    // A window with the fixture project open and analysed.
    void openAnalysed(Workbench& wb)
    {
        Job* open = wb.openProject(m_project);
        QVERIFY(finish(open));
        QCOMPARE(open->state(), Job::State::Succeeded);
        if (!wb.snapshot()->analysis) {
            Job* a = wb.runAnalysis();
            QVERIFY(finish(a));
            QCOMPARE(a->state(), Job::State::Succeeded);
        }
        QVERIFY(wb.snapshot()->analysis);
    }

private slots:
    void initTestCase()
    {
        // Recent projects and window state go to a test location, not the user's settings.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("QuantLensTest"));
        QCoreApplication::setApplicationName(QStringLiteral("tst_gui"));
        QSettings().clear();
        const std::string text = qlfix::storyText(300);
        for (const char* name : {"model", "other"}) {
            qlfix::ModelSpec spec;
            spec.vocab = 400;
            if (std::string(name) == "other") spec.seed = 99;
            std::string err;
            QVERIFY2(qlfix::writeTokenizedModel(path(name).toStdString(), spec, text, &err), err.c_str());
        }
        std::ofstream(path("calib.txt").toStdString()) << text;
        std::ofstream(path("empty.txt").toStdString()) << "";
        m_project = path("fixture.qlproj");
        m_store = path("fixture.h5");
        writeProject(m_project, "model", "calib.txt");
    }

    void openAndAnalyseThroughJobs()
    {
        QFile::remove(m_store);
        Workbench wb;
        MainWindow w(&wb);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        Job* open = wb.openProject(m_project);
        QVERIFY(finish(open));
        QCOMPARE(open->state(), Job::State::Succeeded);
        auto model = Model::open(path("model").toStdString());
        QVERIFY(model.ok());
        QCOMPARE(wb.snapshot()->layers.size(), model->linearLayers().size());
        QVERIFY(!wb.snapshot()->analysis); // no store yet

        Job* a = wb.runAnalysis();
        QVERIFY(finish(a));
        QCOMPARE(a->state(), Job::State::Succeeded);
        QVERIFY(wb.snapshot()->analysis);
        // The store on disk holds what the views show.
        auto stored = AnalysisStore::read(m_store.toStdString());
        QVERIFY2(stored.ok(), stored.message().c_str());
        QCOMPARE(stored->sites.size(), wb.snapshot()->analysis->sites.size());
        QCOMPARE(stored->sites[3].absmax, wb.snapshot()->analysis->sites[3].absmax);

        auto* overview = qobject_cast<OverviewView*>(w.page(QStringLiteral("overview")));
        QVERIFY(overview);
        QCOMPARE(overview->model()->rowCount(), int(model->linearLayers().size()));
        // A hidden page takes the analysis when it is shown, not before.
        auto* outliers = qobject_cast<OutliersView*>(w.page(QStringLiteral("outliers")));
        QVERIFY(outliers && outliers->showsPlaceholder());
        w.showPage(QStringLiteral("outliers"));
        QVERIFY(!outliers->showsPlaceholder());
        QVERIFY(outliers->channelModel()->rowCount() > 0);
        auto* jobs = w.findChild<JobsView*>();
        QVERIFY(jobs);
        // Open, analysis, and the outliers view's activation sample for the selected site.
        QVERIFY(jobs->list()->topLevelItemCount() >= 2);
        const auto rows = jobs->list()->findItems(a->title(), Qt::MatchExactly, 0);
        QCOMPARE(rows.size(), 1);
        QCOMPARE(rows.front()->text(4), QStringLiteral("done"));

        // Reopening the project reuses the store instead of recomputing.
        Workbench again;
        Job* reopen = again.openProject(m_project);
        QVERIFY(finish(reopen));
        QVERIFY(again.snapshot()->analysis);
        QCOMPARE(again.snapshot()->analysis->sites[3].absmax, stored->sites[3].absmax);
    }

    void jobsRunBelowTheUiThread()
    {
#ifdef __linux__
        // The job's thread and the OpenMP threads it starts run at a higher nice value than
        // the UI thread, so a paint never waits behind the analysis for a core.
        errno = 0;
        const int ui = getpriority(PRIO_PROCESS, 0);
        QCOMPARE(errno, 0);
        using Nice = std::array<int, 2>; // no heap: GCC 12 misreads a vector moved through Expected
        JobRunner runner;
        Nice seen{-1, -1};
        std::function<Expected<Nice>(Job&)> work = [](Job&) -> Expected<Nice> {
            Nice nice{-100, -100};
#pragma omp parallel num_threads(2)
            nice[size_t(omp_get_thread_num())] = getpriority(PRIO_PROCESS, 0);
            return nice;
        };
        std::function<void(Nice&)> done = [&seen](Nice& v) { seen = v; };
        Job* job = runner.run<Nice>(QStringLiteral("nice"), work, done);
        QVERIFY(finish(job));
        for (int n : seen) QCOMPARE(n, std::min(19, ui + 10));
        QCOMPARE(getpriority(PRIO_PROCESS, 0), ui); // the UI thread is untouched
#else
        QSKIP("thread priorities are only lowered on Linux");
#endif
    }

    void aThrowingJobFailsAlone()
    {
        // An exception inside a job (std::bad_alloc, or a plugin's own) fails that job with its
        // message; the runner and the window go on.
        JobRunner runner;
        int got = 0;
        std::function<void(int&)> done = [&got](int& v) { got = v; };
        std::function<Expected<int>(Job&)> oom = [](Job&) -> Expected<int> { throw std::bad_alloc(); };
        std::function<Expected<int>(Job&)> plugin = [](Job&) -> Expected<int> {
            throw std::runtime_error("the plugin broke");
        };
        std::function<Expected<int>(Job&)> odd = [](Job&) -> Expected<int> { throw 42; };
        Job* a = runner.run<int>(QStringLiteral("oom"), oom, done);
        Job* b = runner.run<int>(QStringLiteral("plugin"), plugin, done);
        Job* c = runner.run<int>(QStringLiteral("odd"), odd, done);
        for (Job* j : {a, b, c}) {
            QVERIFY(finish(j));
            QCOMPARE(j->state(), Job::State::Failed);
        }
        QVERIFY2(a->error().contains(QStringLiteral("out of memory")), qPrintable(a->error()));
        QVERIFY2(b->error().contains(QStringLiteral("the plugin broke")), qPrintable(b->error()));
        QVERIFY2(c->error().contains(QStringLiteral("unknown type")), qPrintable(c->error()));
        QCOMPARE(got, 0);
        std::function<Expected<int>(Job&)> fine = [](Job&) -> Expected<int> { return 7; };
        Job* d = runner.run<int>(QStringLiteral("fine"), fine, done);
        QVERIFY(finish(d));
        QCOMPARE(d->state(), Job::State::Succeeded);
        QCOMPARE(got, 7);
    }

    void changedCalibrationIsAnalysedAgain()
    {
        // The calibration is its content: another file with other text, and the same file
        // rewritten, are each analysed from what they hold now, with the windows settings unchanged.
        writeProject(path("calibchange.qlproj"), "model", "calib.txt");
        Workbench wb;
        QVERIFY(finish(wb.openProject(path("calibchange.qlproj"))));
        auto tok = loadTokenizer(path("model").toStdString());
        QVERIFY(tok.ok());
        const CalibrationSpec spec = wb.project().calib;
        auto analyse = [&wb]() -> std::string {
            Job* a = wb.runAnalysis();
            if (!finish(a) || a->state() != Job::State::Succeeded) return {};
            return wb.snapshot()->analysis->meta.calibSha256;
        };
        auto windowsOf = [&](const std::string& text) {
            auto set = makeCalibrationSet(text, **tok, spec);
            return set ? set->sha256 : std::string();
        };
        auto story = [](const char* words) {
            std::string t;
            for (int i = 0; i < 300; ++i) t += std::string(words) + " " + std::to_string(i) + ".\n";
            return t;
        };
        const std::string first = analyse();
        QVERIFY(!first.empty());
        const std::string other = story("every other line says something else about number");
        std::ofstream(path("calib-b.txt").toStdString()) << other;
        wb.setCalibration(path("calib-b.txt"), spec);
        const std::string second = analyse();
        QCOMPARE(second, windowsOf(other));
        QVERIFY(second != first);
        const std::string rewritten = story("the same file now holds a third text with item");
        std::ofstream(path("calib-b.txt").toStdString()) << rewritten;
        const std::string third = analyse();
        QCOMPARE(third, windowsOf(rewritten));
        QVERIFY(third != second);
    }

    void firstLayoutIsRoomy()
    {
        // First run (no saved settings): most of the screen, an explorer that shows whole layer
        // names and shapes, and a Jobs dock a few rows high; the user's own layout comes back.
        QSettings().clear();
        Workbench wb;
        auto w = std::make_unique<MainWindow>(&wb);
        w->show();
        QVERIFY(QTest::qWaitForWindowExposed(w.get()));
        QVERIFY(finish(wb.openModel(path("model"))));
        auto* explorer = qobject_cast<ExplorerView*>(w->explorerDock()->widget());
        QVERIFY(explorer);
        explorer->tree()->expandAll();
        QCoreApplication::processEvents();
        const QRect screen = w->screen()->availableGeometry();
        if (screen.width() < 1280 || screen.height() < 800)
            QSKIP(
                "the first layout is checked on a screen of at least 1280x800 (ctest gives tst_gui a 1600x1000 offscreen screen)");
        QVERIFY2(w->width() >= 0.75 * screen.width() && w->height() >= 0.75 * screen.height(),
                 qPrintable(QStringLiteral("window %1x%2 on a %3x%4 screen")
                                .arg(w->width())
                                .arg(w->height())
                                .arg(screen.width())
                                .arg(screen.height())));
        // Each column at the size its content and header ask for (the last one stretches to fill
        // the view, so its own need counts).
        QHeaderView* header = explorer->tree()->header();
        const int last = header->count() - 1;
        int columns = std::max(static_cast<QAbstractItemView*>(explorer->tree())->sizeHintForColumn(last),
                               header->sectionSizeHint(last));
        for (int c = 0; c < last; ++c) columns += header->sectionSize(c);
        QVERIFY2(columns <= explorer->tree()->viewport()->width(),
                 qPrintable(QStringLiteral("explorer columns need %1 px, the view has %2")
                                .arg(columns)
                                .arg(explorer->tree()->viewport()->width())));
        QVERIFY2(w->jobsDock()->height() <= w->height() / 5,
                 qPrintable(QStringLiteral("jobs dock %1 px of %2").arg(w->jobsDock()->height()).arg(w->height())));
        // The user widens the explorer; the next session shows it so.
        const int wider = w->explorerDock()->width() + 80;
        w->resizeDocks({w->explorerDock()}, {wider}, Qt::Horizontal);
        QTRY_COMPARE(w->explorerDock()->width(), wider);
        w->close();
        w.reset();
        MainWindow again(&wb);
        again.show();
        QVERIFY(QTest::qWaitForWindowExposed(&again));
        QTRY_COMPARE(again.explorerDock()->width(), wider);
    }

    void cancelLeavesTheProjectAsItWas()
    {
        Workbench wb;
        openAnalysed(wb);
        const SnapshotPtr before = wb.snapshot();
        const QByteArray storeBefore = readBytes(m_store);
        QVERIFY(!storeBefore.isEmpty());
        CalibrationSpec bigger = wb.project().calib;
        bigger.samples = 40;
        bigger.seqlen = 64;
        wb.setCalibration(wb.project().calibFile, bigger);
        QSignalSpy snapshots(&wb, &Workbench::snapshotChanged);
        Job* a = wb.runAnalysis();
        QVERIFY(a);
        a->cancel();
        QVERIFY(finish(a));
        QCOMPARE(a->state(), Job::State::Canceled);
        QCOMPARE(snapshots.count(), 0);
        QCOMPARE(wb.snapshot(), before);
        QCOMPARE(readBytes(m_store), storeBefore);
    }

    void viewsFollowTheSelection()
    {
        Workbench wb;
        MainWindow w(&wb);
        w.show();
        openAnalysed(wb);
        auto* outliers = qobject_cast<OutliersView*>(w.page(QStringLiteral("outliers")));
        auto* weights = qobject_cast<WeightsView*>(w.page(QStringLiteral("weights")));
        QVERIFY(outliers && weights);
        const auto* analysis = wb.snapshot()->analysis.get();
        for (const auto& [layer, site] : {std::pair{"model.layers.1.mlp.down_proj", "layers.1.down_in"},
                                          std::pair{"model.layers.0.self_attn.k_proj", "layers.0.attn_in"}}) {
            // The shown page follows at once; a hidden one when it is shown.
            w.showPage(QStringLiteral("outliers"));
            wb.selection()->selectLayer(QString::fromLatin1(layer));
            const SiteStats* s = nullptr;
            for (const auto& st : analysis->sites)
                if (st.name == site) s = &st;
            QVERIFY(s);
            ChannelStatsModel* cm = outliers->channelModel();
            QCOMPARE(cm->rowCount(), int(s->absmax.size()));
            for (int c : {0, int(s->absmax.size()) - 1})
                QCOMPARE(cm->data(cm->index(c, ChannelStatsModel::Absmax), ChannelStatsModel::RawRole).toDouble(),
                         double(s->absmax[c]));
            const QString before = weights->weightStats() ? QString::fromStdString(weights->weightStats()->name)
                                                          : QString();
            QVERIFY(before != QString::fromLatin1(layer) + ".weight"); // hidden: not updated yet
            w.showPage(QStringLiteral("weights"));
            QVERIFY(weights->weightStats());
            QCOMPARE(QString::fromStdString(weights->weightStats()->name), QString::fromLatin1(layer) + ".weight");
        }
    }

    void exportsTheCurrentChart()
    {
        Workbench wb;
        MainWindow w(&wb);
        w.resize(1200, 800);
        w.show();
        openAnalysed(wb);
        wb.selection()->selectLayer(QStringLiteral("model.layers.0.mlp.down_proj"));
        w.showPage(QStringLiteral("outliers"));
        const QList<Exportable*> list = w.currentExportables();
        QVERIFY(!list.isEmpty());
        QString error;
        QVERIFY2(list.front()->exportPng(path("chart.png"), &error), qPrintable(error));
        QImage img(path("chart.png"));
        QVERIFY(!img.isNull());
        QVERIFY2(distinctColours(img) > 10, "the exported chart is blank");
        QVERIFY2(list.front()->exportSvg(path("chart.svg"), &error), qPrintable(error));
        QVERIFY(readBytes(path("chart.svg")).contains("<svg"));
        QVERIFY2(list.front()->exportCsv(path("chart.csv"), &error), qPrintable(error));
        const QList<QByteArray> lines = readBytes(path("chart.csv")).trimmed().split('\n');
        QCOMPARE(lines.size(), 172 + 1); // header + one line per input channel of down_proj
    }

    void screenshotIsNotBlank()
    {
        {
            Workbench wb;
            openAnalysed(wb); // the store exists, so the screenshot does not analyse again
        }
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
        p.setProcessEnvironment(env);
        const QString shot = path("entropy.png");
        p.start(QStringLiteral(QL_GUI_PATH), {QStringLiteral("--project"), m_project, QStringLiteral("--view"),
                                              QStringLiteral("entropy"), QStringLiteral("--screenshot"), shot});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        QImage img(shot);
        QCOMPARE(img.size(), QSize(1200, 800));
        QVERIFY2(distinctColours(img) > 50, "the screenshot is blank");
        // An unknown view is refused with the list of views.
        p.start(QStringLiteral(QL_GUI_PATH), {QStringLiteral("--project"), m_project, QStringLiteral("--view"),
                                              QStringLiteral("nope"), QStringLiteral("--screenshot"), shot});
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitCode(), 1);
        QVERIFY(p.readAllStandardError().contains("overview, outliers"));
    }

    void dropRecentAndWindowState()
    {
        QSettings().clear();
        Workbench wb;
        auto window = std::make_unique<MainWindow>(&wb);
        window->resize(900, 700);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
        // Dropping a model folder opens it.
        const auto drop = [&](const QString& local) {
            QMimeData mime;
            mime.setUrls({QUrl::fromLocalFile(local)});
            QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
            QApplication::sendEvent(window.get(), &enter);
            QVERIFY(enter.isAccepted());
            QDropEvent dropEvent(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
            QApplication::sendEvent(window.get(), &dropEvent);
        };
        drop(path("model"));
        QTRY_COMPARE(QFileInfo(wb.project().modelDir).canonicalFilePath(),
                     QFileInfo(path("model")).canonicalFilePath());
        QVERIFY(finish(wb.jobs()->jobs().back()));
        QCOMPARE(wb.snapshot()->layers.size(), size_t(2 * 7));
        // Dropping a project file opens it and puts it first in File > Open Recent.
        drop(m_project);
        QVERIFY(finish(wb.jobs()->jobs().back()));
        QCOMPARE(wb.project().path, QFileInfo(m_project).absoluteFilePath());
        const QStringList recent = QSettings().value(QStringLiteral("recentProjects")).toStringList();
        QCOMPARE(recent.value(0), QFileInfo(m_project).absoluteFilePath());
        QMenu* recentMenu = nullptr;
        for (QMenu* m : window->findChildren<QMenu*>())
            if (m->title().remove(QLatin1Char('&')) == QStringLiteral("Open Recent")) recentMenu = m;
        QVERIFY(recentMenu && recentMenu->isEnabled());
        QCOMPARE(recentMenu->actions().value(0) ? recentMenu->actions().value(0)->text() : QString(), recent.value(0));
        // The window's size comes back in the next session.
        const QSize size = window->minimumSizeHint().expandedTo(QSize(900, 600)) + QSize(57, 31);
        window->resize(size);
        QTRY_COMPARE(window->size(), size);
        window->close();
        window.reset();
        MainWindow again(&wb);
        QCOMPARE(again.size(), size);
    }

    void readmeWalkthroughOnStories260k()
    {
        // What the README tells a new user to do: open the shared stories260k folder, choose the
        // WikiText-2 test text as calibration (the dialog's defaults otherwise), run the analysis;
        // then every page shows it.
        const QString modelDir = qltest::sharedFile(QStringLiteral("models/stories260k"));
        const QString text = qltest::sharedFile(QStringLiteral("data/wikitext-2-raw/wiki.test.raw"));
        QL_REQUIRE_SHARED(modelDir + QStringLiteral("/config.json"));
        QL_REQUIRE_SHARED(text);
        Workbench wb;
        MainWindow w(&wb);
        w.resize(1200, 800);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QVERIFY(finish(wb.openModel(modelDir)));
        wb.setCalibration(text, Project().calib);
        std::shared_ptr<const SiteSample> sample;
        connect(&wb, &Workbench::siteSampleReady, this, [&sample](std::shared_ptr<const SiteSample> s) { sample = s; });
        Job* job = wb.runAnalysis();
        QVERIFY(finish(job, 600000));
        QCOMPARE(job->state(), Job::State::Succeeded);
        QVERIFY(w.lastError().isEmpty());
        const int layers = int(wb.snapshot()->layers.size());
        QCOMPARE(layers, 5 * 7);
        for (const QString& id : w.pageIds()) {
            w.showPage(id);
            QCoreApplication::processEvents();
            QWidget* page = w.page(id);
            if (auto* v = qobject_cast<OverviewView*>(page)) {
                QVERIFY(!v->showsPlaceholder());
                QCOMPARE(v->model()->rowCount(), layers);
            } else if (auto* v = qobject_cast<OutliersView*>(page)) {
                QVERIFY(!v->showsPlaceholder());
                QVERIFY(v->channelModel()->rowCount() > 0);
                QCOMPARE(v->depthModel()->rowCount(), 5);
                QTRY_VERIFY_WITH_TIMEOUT(v->heatMap()->rows() > 0, 60000); // one window captured by a job
                QCOMPARE(v->heatMap()->rows(), Project().calib.seqlen);
                QCOMPARE(v->heatMap()->cols(), v->channelModel()->rowCount());
            } else if (auto* v = qobject_cast<MassiveView*>(page)) {
                QVERIFY(!v->showsPlaceholder());
                QCOMPARE(v->residualModel()->rowCount(), 5);
            } else if (auto* v = qobject_cast<SensitivityView*>(page)) {
                QVERIFY(!v->showsPlaceholder());
                QCOMPARE(v->model()->rowCount(), layers);
                QVERIFY(!v->barPanel()->chart()->series().isEmpty());
            } else if (auto* v = qobject_cast<EntropyView*>(page)) {
                QVERIFY(!v->showsPlaceholder());
                QVERIFY(v->model()->rowCount() > 0);
                QVERIFY(v->histogramModel()->rowCount() > 0);
            } else if (auto* v = qobject_cast<WeightsView*>(page)) {
                QVERIFY(!v->showsPlaceholder());
                QVERIFY(v->histogramModel()->rowCount() > 0);
                QVERIFY(!v->rowPanel()->chart()->series().isEmpty());
            } else if (auto* v = qobject_cast<PlanEditor*>(page)) {
                // The default plan is quantized and measured in the background.
                QCOMPARE(v->model()->rowCount(), layers);
                QTRY_VERIFY_WITH_TIMEOUT(wb.plan()->snapshot()->measure.has_value() && !wb.plan()->busy(), 60000);
                QVERIFY(v->summaryText().contains(QStringLiteral("KL")));
                QVERIFY(wb.plan()->snapshot()->rows.front().report.has_value());
            } else {
                QFAIL(qPrintable(QStringLiteral("no check for page %1").arg(id)));
            }
        }
        QVERIFY(sample);
    }

    void badInputShowsAMessage_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("expected");
        QTest::newRow("not a model") << "notamodel"
                                     << "config.json";
        QTest::newRow("corrupt safetensors") << "corrupt"
                                             << "model.safetensors";
        QTest::newRow("empty calibration") << "emptycalib"
                                           << "empty.txt: the calibration file is empty";
        QTest::newRow("project whose model moved") << "movedmodel"
                                                   << "moved-away: not a folder";
        QTest::newRow("project whose calibration text moved") << "movedcalib"
                                                              << "moved.txt: cannot open the calibration file";
        QTest::newRow("binary calibration text") << "binarycalib"
                                                 << "model.safetensors: not text";
        QTest::newRow("store of another model") << "otherstore"
                                                << "was made from another model";
        QTest::newRow("store without the KL asked for")
            << "nokl"
            << "fixture.h5 does not serve this project: it holds no end-to-end KL sensitivity";
        QTest::newRow("unreadable project") << "badproject"
                                            << "not a QuantLens project";
    }

    // A .gguf file opens as a project's model, through the same job as a folder.
    void ggufFileOpensAsAModel()
    {
        auto model = Model::open(path("model").toStdString());
        QVERIFY(model);
        auto tok = loadTokenizer(path("model").toStdString());
        QVERIFY(tok);
        GgufExportOptions opt;
        opt.type = GgmlType::F32;
        QVERIFY(exportGguf(*model, *model, **tok, opt, path("model.gguf").toStdString()));
        Workbench wb;
        MainWindow w(&wb);
        Job* job = wb.openModel(path("model.gguf"));
        QVERIFY(finish(job));
        QCOMPARE(job->state(), Job::State::Succeeded);
        QVERIFY(w.lastError().isEmpty());
        QVERIFY(wb.snapshot());
        QCOMPARE(wb.snapshot()->layers.size(), model->linearLayers().size());
    }

    void badInputShowsAMessage()
    {
        QFETCH(QString, kind);
        QFETCH(QString, expected);
        {
            Workbench wb;
            openAnalysed(wb); // fixture.h5 exists for the "other model" case
        }
        Workbench wb;
        MainWindow w(&wb);
        QSignalSpy failures(&wb, &Workbench::failed);
        Job* job = nullptr;
        if (kind == "notamodel") {
            QDir(m_tmp.path()).mkpath(QStringLiteral("notamodel"));
            job = wb.openModel(path("notamodel"));
        } else if (kind == "corrupt") {
            QDir(m_tmp.path()).mkpath(QStringLiteral("corrupt"));
            for (const char* f : {"config.json", "tokenizer.model"})
                QFile::copy(path("model/") + f, path("corrupt/") + f);
            QByteArray bytes = readBytes(path("model/model.safetensors"));
            QFile out(path("corrupt/model.safetensors"));
            QVERIFY(out.open(QIODevice::WriteOnly));
            out.write(bytes.left(bytes.size() / 2));
            out.close();
            job = wb.openModel(path("corrupt"));
        } else if (kind == "emptycalib") {
            writeProject(path("empty.qlproj"), "model", "empty.txt");
            job = wb.openProject(path("empty.qlproj"));
        } else if (kind == "nokl") { // the store holds proxy sensitivity, the project asks for full
            writeProject(path("full.qlproj"), "model", "calib.txt", "fixture.h5", "full");
            job = wb.openProject(path("full.qlproj"));
        } else if (kind == "movedmodel") {
            writeProject(path("movedmodel.qlproj"), "moved-away", "calib.txt");
            job = wb.openProject(path("movedmodel.qlproj"));
        } else if (kind == "movedcalib") {
            writeProject(path("movedcalib.qlproj"), "model", "moved.txt");
            job = wb.openProject(path("movedcalib.qlproj"));
        } else if (kind == "binarycalib") {
            writeProject(path("binarycalib.qlproj"), "model", "model/model.safetensors");
            job = wb.openProject(path("binarycalib.qlproj"));
        } else if (kind == "otherstore") {
            writeProject(path("other.qlproj"), "other", "calib.txt", "fixture.h5");
            job = wb.openProject(path("other.qlproj"));
        } else {
            std::ofstream(path("bad.qlproj").toStdString()) << "{ this is not json";
            job = wb.openProject(path("bad.qlproj"));
        }
        if (job) QVERIFY(finish(job));
        QVERIFY(failures.count() >= 1);
        const QString message = failures.last().at(1).toString();
        QVERIFY2(message.contains(expected), qPrintable(message));
        QVERIFY2(w.lastError().contains(expected), qPrintable(w.lastError()));
        // The window stays usable: the good project opens afterwards.
        Job* good = wb.openProject(m_project);
        QVERIFY(finish(good));
        QCOMPARE(good->state(), Job::State::Succeeded);
        QVERIFY(wb.snapshot()->analysis);
    }
};

QTEST_MAIN(TestGui)
#include "tst_gui.moc"
