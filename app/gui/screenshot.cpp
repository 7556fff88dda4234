#include "screenshot.h"

#include "exportdialog.h"
#include "mainwindow.h"
#include "outliersview.h"
#include "compareview.h"
#include "paretoview.h"
#include "planeditor.h"
#include "plantablemodel.h"
#include "workbench.h"

#include <QApplication>
#include <QComboBox>
#include <QLineEdit>
#include <QTableView>
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

// Views that are not pages: the export dialog and the Pareto and Compare docks.
bool dockView(const QString& view)
{
    return view == QLatin1String("export") || view == QLatin1String("pareto") || view == QLatin1String("compare");
}

} // namespace

void Screenshot::start(const QString& projectPath)
{
    if (outliersTab(m_view) >= 0) {
        m_tab = outliersTab(m_view);
        m_view = QStringLiteral("outliers");
    }
    if (!m_window->page(m_view) && !dockView(m_view))
        return fail(QStringLiteral("unknown view '%1'; expected one of: %2, heatmap, depth, export, pareto, compare")
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
    if (m_view == QLatin1String("pareto") || m_view == QLatin1String("compare")) return sweepOrCompare();
    if (m_view == QLatin1String("plan") || m_view == QLatin1String("export")) {
        // The plan's layer columns and quick measure come from the what-if: wait for it.
        PlanSession* plan = m_wb->plan();
        auto ready = [this, plan]() {
            if (plan->busy() || !plan->snapshot()->measure) return;
            QTimer::singleShot(0, this,
                               m_view == QLatin1String("plan") ? &Screenshot::render : &Screenshot::exportDialog);
        };
        connect(plan, &PlanSession::measured, this, ready);
        plan->activate();
        ready();
        return;
    }
    m_window->showPage(m_view);
    if (m_view != QLatin1String("outliers")) {
        QTimer::singleShot(0, this, &Screenshot::render);
        return;
    }
    // The heat map needs one calibration window's activations, captured by a job.
    connect(m_wb, &Workbench::siteSampleReady, this, [this]() { QTimer::singleShot(0, this, &Screenshot::render); });
    m_wb->requestSiteSample(m_wb->selection()->site(), 0);
}

void Screenshot::sweepOrCompare()
{
    // The Pareto plot of every allocator at four budgets, or every method on block 1's o_proj.
    const bool pareto = m_view == QLatin1String("pareto");
    Expected<Job*> job = makeError("not started");
    if (pareto) {
        job = m_wb->pareto()->start(*m_wb->plan(), m_wb->snapshot()->analysis, {2.5, 3.0, 3.5, 4.0}, allocatorNames());
    } else {
        job = m_wb->compare()->start(*m_wb->plan(), "model.layers.1.self_attn.o_proj",
                                     m_wb->compare()->defaultCandidates());
    }
    if (!job) return fail(QString::fromStdString(job.message()));
    connect(*job, &Job::finished, this, [this, job = *job, pareto]() {
        if (job->state() != Job::State::Succeeded) return fail(job->title() + QStringLiteral(": ") + job->error());
        QWidget* view = pareto ? static_cast<QWidget*>(m_window->paretoView()) : m_window->compareView();
        m_page = view;
        view->setParent(m_window, Qt::Window);
        view->resize(m_size);
        view->show();
        QTimer::singleShot(0, this, &Screenshot::grab);
    });
}

void Screenshot::exportDialog()
{
    if (m_done) return;
    m_done = true;
    // GGUF with a K-type: the dialog then lists the tensors whose rows no 256-block fits.
    auto* dialog = new ExportDialog(m_wb, m_window);
    m_page = dialog;
    dialog->formatBox()->setCurrentIndex(dialog->formatBox()->findData(QStringLiteral("gguf")));
    dialog->typeBox()->setCurrentText(QStringLiteral("q4_k"));
    dialog->pathEdit()->setText(QStringLiteral("plan-q4_k.gguf"));
    dialog->refreshPreview();
    dialog->resize(m_size);
    dialog->show();
    connect(dialog->previewJob(), &Job::finished, this, [this]() { QTimer::singleShot(0, this, &Screenshot::grab); });
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
    if (auto* editor = qobject_cast<PlanEditor*>(page)) // a selected layer shows its method's parameter form
        editor->tableView()->selectRow(
            std::max(0, editor->model()->rowOfLayer(QStringLiteral("model.layers.1.self_attn.o_proj"))));
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
