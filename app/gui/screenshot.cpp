#include "screenshot.h"

#include "mainwindow.h"
#include "outliersview.h"
#include "workbench.h"

#include <QApplication>
#include <QTimer>

#include <cstdio>

namespace ql {

Screenshot::Screenshot(Workbench* wb, MainWindow* window, QString view, QString file, QSize size, QObject* parent)
    : QObject(parent), m_wb(wb), m_window(window), m_view(std::move(view)), m_file(std::move(file)), m_size(size)
{}

namespace {

// The outliers view's other tabs have ids of their own for pictures: heatmap and depth.
int outliersTab(const QString& view)
{
    return view == QLatin1String("heatmap") ? 1 : view == QLatin1String("depth") ? 2 : -1;
}

} // namespace

void Screenshot::start(const QString& projectPath)
{
    if (outliersTab(m_view) >= 0) {
        m_tab = outliersTab(m_view);
        m_view = QStringLiteral("outliers");
    }
    if (!m_window->page(m_view))
        return fail(QStringLiteral("unknown view '%1'; expected one of: %2, heatmap, depth")
                        .arg(m_view, m_window->pageIds().join(", ")));
    connect(m_wb, &Workbench::failed, this,
            [this](const QString& title, const QString& message) { fail(title + ": " + message); });
    Job* job = m_wb->openProject(projectPath);
    if (!job) return; // failed() was emitted
    connect(job, &Job::finished, this, &Screenshot::loaded);
}

void Screenshot::loaded()
{
    if (m_wb->snapshot()->analysis) return analysed();
    Job* job = m_wb->runAnalysis();
    if (job) connect(job, &Job::finished, this, &Screenshot::analysed);
}

void Screenshot::analysed()
{
    if (!m_wb->snapshot()->analysis) return; // the failure was reported
    m_window->resize(m_size);
    m_window->showPage(m_view);
    if (m_view != QLatin1String("outliers")) {
        QTimer::singleShot(0, this, &Screenshot::render);
        return;
    }
    // The heat map needs one calibration window's activations, captured by a job.
    connect(m_wb, &Workbench::siteSampleReady, this, [this]() { QTimer::singleShot(0, this, &Screenshot::render); });
    m_wb->requestSiteSample(m_wb->selection()->site(), 0);
}

void Screenshot::render()
{
    if (m_done) return; // one picture, even when a second sample arrives
    m_done = true;
    // Rendered alone, so the picture has exactly the requested size whatever the docks take.
    QWidget* page = m_page = m_window->takePage(m_view);
    page->setParent(m_window, Qt::Window);
    if (auto* outliers = qobject_cast<OutliersView*>(page); outliers && m_tab >= 0)
        outliers->tabs()->setCurrentIndex(m_tab);
    page->resize(m_size);
    page->show(); // a page shown for the first time takes its snapshot now (AnalysisPage::offerSnapshot)
    // The charts lay themselves out in posted events: grab once those have run.
    QTimer::singleShot(0, this, &Screenshot::grab);
}

void Screenshot::grab()
{
    if (QWidget* f = m_page->focusWidget()) f->clearFocus(); // no text cursor in the picture
    const QPixmap pixmap = m_page->grab();
    if (pixmap.isNull() || !pixmap.save(m_file)) return fail(m_file + QStringLiteral(": cannot write the screenshot"));
    std::printf("%s: %dx%d\n", qPrintable(m_file), pixmap.width(), pixmap.height());
    QApplication::exit(0);
}

void Screenshot::fail(const QString& message)
{
    std::fprintf(stderr, "error: %s\n", qPrintable(message));
    // Queued: a failure found before the event loop runs must still end it.
    QMetaObject::invokeMethod(
        qApp, []() { QApplication::exit(1); }, Qt::QueuedConnection);
}

} // namespace ql
