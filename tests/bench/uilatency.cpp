// Event-loop latency of the workbench window while an analysis runs in the background: a
// 10 ms timer on the UI thread records the gap between its ticks; a gap far above 10 ms is
// time the UI thread was blocked. The same probe runs first with no job (the baseline of this
// run), then during the analysis while the selection and the view change every 250 ms as a
// user would click, and until the finished analysis has been shown; then while the plan is
// edited in the plan editor, one layer's bits at a time, each edit waiting for its live what-if
// (the edited layer's columns, then the quick KL).
// usage: ql-bench-ui-latency PROJECT.qlproj   (prints one JSON object)
#include "entropyview.h"
#include "explorerview.h"
#include "mainwindow.h"
#include "massiveview.h"
#include "outliersview.h"
#include "plansession.h"
#include "overviewview.h"
#include "sensitivityview.h"
#include "viewtiming.h"
#include "weightsview.h"
#include "workbench.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// Records the gaps between the ticks of a fast timer on the UI thread.
class LatencyProbe : public QObject {
public:
    LatencyProbe()
    {
        m_timer.setTimerType(Qt::PreciseTimer);
        m_timer.setInterval(10);
        connect(&m_timer, &QTimer::timeout, this, [this]() {
            const qint64 now = m_clock.nsecsElapsed();
            m_gaps.push_back(double(now - m_last) / 1e6);
            if (m_gaps.back() > 100.0) m_long.push_back({double(now) / 1e9, m_gaps.back()});
            m_last = now;
        });
    }
    void start()
    {
        m_gaps.clear();
        m_long.clear();
        m_clock.start();
        m_last = 0;
        m_timer.start();
    }
    void stop() { m_timer.stop(); }
    double maxGap() const { return m_gaps.empty() ? 0 : *std::max_element(m_gaps.begin(), m_gaps.end()); }
    double percentile(double p) const
    {
        if (m_gaps.empty()) return 0;
        std::vector<double> g = m_gaps;
        const size_t k = std::min(g.size() - 1, size_t(p * double(g.size())));
        std::nth_element(g.begin(), g.begin() + long(k), g.end());
        return g[k];
    }
    int over(double ms) const
    {
        return int(std::count_if(m_gaps.begin(), m_gaps.end(), [ms](double g) { return g > ms; }));
    }
    size_t ticks() const { return m_gaps.size(); }
    /// (seconds since start at the end of the gap, gap in ms) of every gap over 100 ms.
    const std::vector<std::pair<double, double>>& longGaps() const { return m_long; }

private:
    QTimer m_timer;
    QElapsedTimer m_clock;
    qint64 m_last = 0;
    std::vector<double> m_gaps;
    std::vector<std::pair<double, double>> m_long;
};

void waitFor(QObject* sender, const char* signal, int timeoutMs)
{
    QEventLoop loop;
    QObject::connect(sender, signal, &loop, SLOT(quit()));
    QTimer::singleShot(timeoutMs, &loop, &QEventLoop::quit);
    loop.exec();
}

void wait(int ms)
{
    QEventLoop loop;
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
}

// One view's cost on the finished analysis, printed.
template <class View>
void timeView(const char* name, const ql::SnapshotPtr& snap, const std::vector<QString>& layers)
{
    const viewtiming::Cost c = viewtiming::timeView<View>(snap, layers);
    std::printf("  %-12s setSnapshot %7.1f ms, selection change max %7.1f ms, paint %7.1f ms\n", name, c.set, c.select,
                c.paint);
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: ql-bench-ui-latency PROJECT.qlproj\n");
        return 2;
    }
    ql::Workbench wb;
    wb.plan()->setLive(false); // the analysis phases measure the analysis alone
    ql::MainWindow window(&wb);
    window.resize(1200, 800);
    window.show();
    ql::Job* open = wb.openProject(QString::fromLocal8Bit(argv[1]));
    if (!open) return 1;
    if (open->state() == ql::Job::State::Running) waitFor(open, SIGNAL(finished()), 600000);
    if (open->state() != ql::Job::State::Succeeded) {
        std::fprintf(stderr, "error: %s\n", qPrintable(open->error()));
        return 1;
    }

    LatencyProbe probe;
    probe.start();
    wait(5000);
    probe.stop();
    const double baseMax = probe.maxGap(), baseP99 = probe.percentile(0.99);

    // A user clicking around while the analysis runs: another layer and another view every 250 ms.
    const auto layers = wb.snapshot()->layers;
    const QStringList pages = window.pageIds();
    int step = 0;
    QElapsedTimer analysisClock;
    QTimer clicks;
    clicks.setInterval(250);
    std::vector<std::pair<double, QString>> clickLog; // (s since the analysis started, page shown)
    QObject::connect(&clicks, &QTimer::timeout, [&]() {
        ++step;
        clickLog.push_back({double(analysisClock.nsecsElapsed()) / 1e9, pages[step % pages.size()]});
        wb.selection()->selectLayer(QString::fromStdString(layers[size_t(step * 7) % layers.size()].name));
        window.showPage(pages[step % pages.size()]);
    });
    analysisClock.start();
    probe.start();
    if (qEnvironmentVariableIsEmpty("QL_BENCH_NO_CLICKS")) clicks.start();
    ql::Job* job = wb.runAnalysis();
    if (!job) return 1;
    waitFor(job, SIGNAL(finished()), 3600000);
    const double analysisSeconds = double(analysisClock.elapsed()) / 1000.0;
    wait(3000); // the result shown, the heat map's sample captured, more clicks
    clicks.stop();
    probe.stop();
    if (job->state() != ql::Job::State::Succeeded) {
        std::fprintf(stderr, "error: %s\n", qPrintable(job->error()));
        return 1;
    }
    std::vector<QString> picks;
    for (size_t i = 0; i < layers.size(); i += layers.size() / 5 + 1)
        picks.push_back(QString::fromStdString(layers[i].name));
    std::printf("UI-thread cost per view (synchronous):\n");
    timeView<ql::OverviewView>("overview", wb.snapshot(), picks);
    timeView<ql::OutliersView>("outliers", wb.snapshot(), picks);
    timeView<ql::MassiveView>("massive", wb.snapshot(), picks);
    timeView<ql::SensitivityView>("sensitivity", wb.snapshot(), picks);
    timeView<ql::EntropyView>("entropy", wb.snapshot(), picks);
    timeView<ql::WeightsView>("weights", wb.snapshot(), picks);
    timeView<ql::ExplorerView>("explorer", wb.snapshot(), picks);
    {
        // The heat map's data: one calibration window at the widest site.
        std::shared_ptr<const ql::SiteSample> sample;
        QObject::connect(&wb, &ql::Workbench::siteSampleReady,
                         [&](std::shared_ptr<const ql::SiteSample> s) { sample = s; });
        ql::Job* cap = wb.requestSiteSample(QStringLiteral("layers.3.down_in"), 0);
        if (cap) waitFor(cap, SIGNAL(finished()), 600000);
        if (sample) {
            ql::Selection sel;
            ql::OutliersView view(&sel);
            view.resize(1200, 800);
            view.show();
            view.setSnapshot(wb.snapshot());
            sel.selectLayer(QStringLiteral("model.layers.3.mlp.down_proj"));
            QElapsedTimer t;
            t.start();
            view.setSiteSample(sample);
            QCoreApplication::processEvents();
            const double setMs = double(t.nsecsElapsed()) / 1e6;
            view.tabs()->setCurrentIndex(1);
            QCoreApplication::processEvents();
            t.restart();
            view.grab();
            std::printf("  heat map     setSiteSample %5.1f ms (%lld x %lld), paint %7.1f ms\n", setMs,
                        (long long)sample->values.rows(), (long long)sample->values.cols(),
                        double(t.nsecsElapsed()) / 1e6);
        }
    }
    const double analysisMaxGap = probe.maxGap(), analysisP99 = probe.percentile(0.99);
    const int analysisOver = probe.over(100.0);
    const size_t analysisTicks = probe.ticks();
    const auto analysisLong = probe.longGaps();

    // Editing: the plan page in front, the default plan measured, then one edit at a time.
    ql::PlanSession* plan = wb.plan();
    QObject::connect(plan, &ql::PlanSession::failed, [](const QString& title, const QString& message) {
        std::fprintf(stderr, "error: %s: %s\n", qPrintable(title), qPrintable(message));
        std::exit(1);
    });
    std::fprintf(stderr, "editing the plan\n");
    QTimer jobsLog; // what the jobs do, every 10 s (a stalled edit shows where)
    QObject::connect(&jobsLog, &QTimer::timeout, [&]() {
        for (ql::Job* j : wb.jobs()->jobs())
            if (j->state() == ql::Job::State::Running)
                std::fprintf(stderr, "  job %s: %.0f%% %s\n", qPrintable(j->title()), 100 * j->fraction(),
                             qPrintable(j->statusText()));
    });
    jobsLog.start(10000);
    plan->setLive(true);
    window.showPage(QStringLiteral("plan"));
    QElapsedTimer firstClock;
    firstClock.start();
    while ((plan->busy() || !plan->snapshot()->measure) && firstClock.elapsed() < 1800000)
        waitFor(plan, SIGNAL(measured()), 1800000);
    const double firstMeasureSeconds = double(firstClock.elapsed()) / 1000.0;
    const int blocks = wb.snapshot()->blocks;
    const std::vector<int> editBlocks{2, blocks * 2 / 3, blocks / 3, blocks - 2, 5, blocks / 2};
    std::printf("plan edits (block, layer columns ms, quick KL s, blocks run):\n");
    std::vector<double> columnsMs, klSeconds;
    probe.start();
    for (size_t e = 0; e < editBlocks.size(); ++e) {
        const QString layer = QStringLiteral("model.layers.%1.mlp.down_proj").arg(editBlocks[e]);
        const QString bits = e % 2 == 0 ? QStringLiteral("3") : QStringLiteral("5");
        QElapsedTimer t;
        t.start();
        double columns = -1;
        auto conn = QObject::connect(plan, &ql::PlanSession::planChanged, [&](ql::PlanSnapshotPtr p) {
            if (columns >= 0) return;
            for (const ql::PlanRow& r : p->rows)
                if (QString::fromStdString(r.layer) == layer && r.report) columns = double(t.nsecsElapsed()) / 1e6;
        });
        if (!plan->edit({layer}, QStringLiteral("bits"), bits)) return 1;
        while ((plan->busy() || !plan->snapshot()->measure) && t.elapsed() < 600000)
            waitFor(plan, SIGNAL(measured()), 600000);
        QObject::disconnect(conn);
        columnsMs.push_back(columns);
        klSeconds.push_back(double(t.nsecsElapsed()) / 1e9);
        std::printf("  %3d  %8.1f  %6.2f  %d\n", editBlocks[e], columns, klSeconds.back(),
                    plan->snapshot()->measure ? plan->snapshot()->measure->blocksRun : -1);
        wait(300); // a user reading the numbers
    }
    probe.stop();
    QString editKl, editCols;
    for (size_t e = 0; e < klSeconds.size(); ++e) {
        editKl += QStringLiteral("%1%2").arg(e ? ", " : "").arg(klSeconds[e], 0, 'f', 2);
        editCols += QStringLiteral("%1%2").arg(e ? ", " : "").arg(columnsMs[e], 0, 'f', 1);
    }

    QString longGaps;
    for (const auto& [at, gap] : analysisLong) {
        QString page; // the page in front when the gap began
        for (const auto& [t, p] : clickLog)
            if (t <= at - gap / 1000.0) page = p;
        longGaps += QStringLiteral("%1[%2, %3, %4]")
                        .arg(longGaps.isEmpty() ? "" : ", ")
                        .arg(at, 0, 'f', 2)
                        .arg(gap, 0, 'f', 0)
                        .arg(page);
    }
    std::printf("long gaps (s since the analysis started, ms, page in front): [%s], analysis finished at %.2f s\n",
                qPrintable(longGaps), analysisSeconds);
    std::printf("{\"baseline_max_gap_ms\": %.1f, \"baseline_p99_gap_ms\": %.1f, \"analysis_seconds\": %.1f, "
                "\"ticks\": %zu, \"max_gap_ms\": %.1f, \"p99_gap_ms\": %.1f, \"gaps_over_100ms\": %d, "
                "\"max_gap_over_baseline\": %.2f, \"clicks\": %d, \"first_plan_measure_s\": %.1f, "
                "\"edit_layer_columns_ms\": [%s], \"edit_quick_kl_s\": [%s], \"editing_max_gap_ms\": %.1f, "
                "\"editing_p99_gap_ms\": %.1f, \"editing_gaps_over_100ms\": %d}\n",
                baseMax, baseP99, analysisSeconds, analysisTicks, analysisMaxGap, analysisP99, analysisOver,
                baseMax > 0 ? analysisMaxGap / baseMax : 0.0, step, firstMeasureSeconds, qPrintable(editCols),
                qPrintable(editKl), probe.maxGap(), probe.percentile(0.99), probe.over(100.0));
    return 0;
}
