#include "mainwindow.h"

#include "analysispage.h"
#include "calibrationdialog.h"
#include "entropyview.h"
#include "exportdialog.h"
#include "explorerview.h"
#include "exportable.h"
#include "jobsview.h"
#include "massiveview.h"
#include "outliersview.h"
#include "overviewview.h"
#include "pageselection.h"
#include "compareview.h"
#include "paretoview.h"
#include "planeditor.h"
#include "rundiffview.h"
#include "sensitivityview.h"
#include "weightsview.h"
#include "workbench.h"

#include "quantlens/forward/bf16gemm.h"

#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QDir>
#include <QFileInfo>
#include <QInputDialog>
#include <QLineEdit>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QScreen>
#include <QStatusBar>
#include <QStyle>
#include <QTabWidget>
#include <QUndoStack>

namespace ql {

namespace {

constexpr int kMaxRecent = 8;

// Connects a view's snapshot to the workbench's and gives it the current one.
template <class View>
View* addView(Workbench* wb, View* view)
{
    QObject::connect(wb, &Workbench::snapshotChanged, view, &View::setSnapshot);
    view->setSnapshot(wb->snapshot());
    return view;
}

// addView() for a page: a hidden page takes a new snapshot when it is next shown.
AnalysisPage* addPage(Workbench* wb, AnalysisPage* page)
{
    QObject::connect(wb, &Workbench::snapshotChanged, page, &AnalysisPage::offerSnapshot);
    page->setSnapshot(wb->snapshot());
    return page;
}

} // namespace

MainWindow::MainWindow(Workbench* wb, QWidget* parent) : QMainWindow(parent), m_wb(wb)
{
    setObjectName(QStringLiteral("QuantLensMainWindow"));
    setAcceptDrops(true);
    createViews();
    createMenus();
    m_status = new QLabel(this);
    statusBar()->addWidget(m_status, 1);
    connect(wb, &Workbench::failed, this, &MainWindow::showError);
    connect(wb, &Workbench::projectChanged, this, &MainWindow::updateTitle);
    connect(wb->jobs(), &JobRunner::jobFinished, this, [this](Job* job) {
        m_status->setText(tr("%1: %2 (%3 s)")
                              .arg(job->title(), job->state() == Job::State::Succeeded ? tr("done") : job->error())
                              .arg(job->elapsedSeconds(), 0, 'f', 1));
    });
    QSettings settings;
    if (!restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray())) firstRunLayout();
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray());
    updateTitle();
}

void MainWindow::createViews()
{
    m_tabs = new QTabWidget(this);
    // Each page sees the window's selection through its own PageSelection and takes snapshots
    // through AnalysisPage::offerSnapshot: hidden pages do nothing on a click or a new analysis
    // and catch up when shown.
    auto add = [this](const QString& id, const QString& title, auto* view, PageSelection* sel) {
        sel->setPage(view);
        m_pages.insert(id, view);
        m_pageIds << id;
        m_tabs->addTab(addPage(m_wb, view), title);
        return view;
    };
    auto page = [this]() { return new PageSelection(m_wb->selection(), this); };
    PageSelection* s = nullptr;
    s = page();
    add(QStringLiteral("overview"), tr("Overview"), new OverviewView(s, this), s);
    s = page();
    m_outliers = add(QStringLiteral("outliers"), tr("Outliers"), new OutliersView(s, this), s);
    s = page();
    add(QStringLiteral("massive"), tr("Massive activations"), new MassiveView(s, this), s);
    s = page();
    add(QStringLiteral("sensitivity"), tr("Sensitivity"), new SensitivityView(s, this), s);
    s = page();
    add(QStringLiteral("entropy"), tr("Entropy"), new EntropyView(s, this), s);
    s = page();
    add(QStringLiteral("weights"), tr("Weights"), new WeightsView(s, this), s);
    // The plan editor takes its plans from the plan session and sends edits back to it.
    m_planEditor = new PlanEditor(this);
    m_pages.insert(QStringLiteral("plan"), m_planEditor);
    m_pageIds << QStringLiteral("plan");
    m_tabs->addTab(addPage(m_wb, m_planEditor), tr("Plan"));
    PlanSession* plan = m_wb->plan();
    connect(plan, &PlanSession::planChanged, m_planEditor, &PlanEditor::setPlan);
    m_planEditor->setPlan(plan->snapshot());
    connect(m_planEditor, &PlanEditor::editRequested, this,
            [this, plan](const QStringList& layers, const QString& key, const QString& value) {
                if (auto r = plan->edit(layers, key, value); !r)
                    showError(tr("Plan edit"), QString::fromStdString(r.message()));
            });
    connect(m_planEditor, &PlanEditor::fullEvaluationRequested, plan, &PlanSession::evaluateFully);
    // The live what-if starts once the plan is in front (or edited), not on every model opened.
    connect(m_planEditor, &AnalysisPage::shown, plan, &PlanSession::activate);
    connect(m_wb, &Workbench::projectChanged, plan, [this, plan]() {
        if (m_planEditor->isVisible()) plan->activate();
    });
    connect(m_planEditor, &PlanEditor::recipeTextApplied, this, [this, plan](const QString& json) {
        if (auto r = plan->setRecipeJson(json); !r) showError(tr("Plan rules"), QString::fromStdString(r.message()));
    });
    setCentralWidget(m_tabs);
    connect(m_outliers, &OutliersView::siteSampleRequested, m_wb, &Workbench::requestSiteSample);
    connect(m_outliers, &OutliersView::salientChannelsRequested, this,
            [this](const QString& site, const ChannelOverride& channels) {
                if (auto r = m_wb->plan()->setSalientChannels(site, channels); !r)
                    showError(tr("Salient channels"), QString::fromStdString(r.message()));
            });
    connect(m_wb, &Workbench::siteSampleReady, m_outliers, &OutliersView::setSiteSample);

    m_explorer = addView(m_wb, new ExplorerView(m_wb->selection(), this));
    m_explorerDock = new QDockWidget(tr("Model"), this);
    m_explorerDock->setObjectName(QStringLiteral("ModelDock"));
    m_explorerDock->setWidget(m_explorer);
    addDockWidget(Qt::LeftDockWidgetArea, m_explorerDock);
    m_jobs = new JobsView(m_wb->jobs(), this);
    m_jobsDock = new QDockWidget(tr("Jobs"), this);
    m_jobsDock->setObjectName(QStringLiteral("JobsDock"));
    m_jobsDock->setWidget(m_jobs);
    addDockWidget(Qt::BottomDockWidgetArea, m_jobsDock);
    // The sweep fills the Pareto dock; a click loads a point's plan, and the plan marks itself.
    m_pareto = new ParetoView(this);
    m_paretoDock = addHiddenDock(m_pareto, tr("Pareto"), QStringLiteral("ParetoDock"), nullptr);
    ParetoSweep* sweep = m_wb->pareto();
    connect(sweep, &ParetoSweep::started, m_pareto, &ParetoView::clear);
    connect(sweep, &ParetoSweep::pointMeasured, m_pareto, &ParetoView::addPoint);
    connect(m_pareto, &ParetoView::planChosen, this, [this](const Recipe& recipe, const QString& label) {
        if (auto r = m_wb->plan()->setRecipe(recipe, tr("load %1 from the Pareto plot").arg(label)); !r)
            return showError(tr("Pareto"), QString::fromStdString(r.message()));
        showPage(QStringLiteral("plan"));
    });
    m_compare = new CompareView(this);
    m_compareDock = addHiddenDock(m_compare, tr("Compare"), QStringLiteral("CompareDock"), m_paretoDock);
    connect(m_wb->compare(), &MethodCompare::compared, m_compare, &CompareView::setComparison);
    m_runDiff = new RunDiffView(this);
    m_runDiffDock = addHiddenDock(m_runDiff, tr("Run Diff"), QStringLiteral("RunDiffDock"), m_compareDock);
    connect(plan, &PlanSession::planChanged, m_pareto, [this](const PlanSnapshotPtr& p) {
        m_pareto->setCurrent(p->size.bitsPerWeight,
                             p->measure ? std::optional<double>(p->measure->kl.meanKl) : std::nullopt);
    });
}

QDockWidget* MainWindow::addHiddenDock(QWidget* widget, const QString& title, const QString& name, QDockWidget* tabWith)
{
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(name);
    dock->setWidget(widget);
    addDockWidget(Qt::RightDockWidgetArea, dock);
    if (tabWith) tabifyDockWidget(tabWith, dock);
    dock->hide();
    return dock;
}

void MainWindow::firstRunLayout()
{
    // Most of the screen, centred; the explorer as wide as its names and the Jobs dock a few rows
    // high. Later sessions restore whatever the user made of it.
    const QRect screen = this->screen()->availableGeometry();
    const QSize size = (screen.size() * 0.8).expandedTo(minimumSizeHint()).boundedTo(screen.size());
    setGeometry(QStyle::alignedRect(Qt::LeftToRight, Qt::AlignCenter, size, screen));
    m_sizeDocksOnShow = true; // the docks take sizes only once the window has its own
}

void MainWindow::showEvent(QShowEvent* event)
{
    QMainWindow::showEvent(event);
    if (!m_sizeDocksOnShow) return;
    m_sizeDocksOnShow = false;
    resizeDocks({m_explorerDock}, {m_explorer->sizeHint().width()}, Qt::Horizontal);
    resizeDocks({m_jobsDock}, {m_jobs->sizeHint().height()}, Qt::Vertical);
}

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&New Project from Model Folder…"), QKeySequence::New, this, [this]() {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Hugging Face model folder"));
        if (!dir.isEmpty()) openModelFolder(dir);
    });
    file->addAction(tr("New Project from &GGUF File…"), this, [this]() {
        const QString f = QFileDialog::getOpenFileName(this, tr("llama.cpp model"), {}, tr("GGUF files (*.gguf)"));
        if (!f.isEmpty()) openModelFolder(f);
    });
    file->addAction(tr("&Open Project…"), QKeySequence::Open, this, [this]() {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open project"), {},
                                                       tr("QuantLens projects (*.qlproj *.json)"));
        if (!f.isEmpty()) openProjectFile(f);
    });
    m_recent = file->addMenu(tr("Open &Recent"));
    rebuildRecentMenu();
    file->addAction(tr("&Save Project"), QKeySequence::Save, this, [this]() {
        if (m_wb->project().path.isEmpty()) return saveAs();
        if (auto r = m_wb->saveProject(); !r) showError(tr("Save project"), QString::fromStdString(r.message()));
    });
    file->addAction(tr("Save Project &As…"), QKeySequence::SaveAs, this, &MainWindow::saveAs);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QAction* undo = m_wb->plan()->undoStack()->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    edit->addAction(undo);
    QAction* redo = m_wb->plan()->undoStack()->createRedoAction(this, tr("&Redo"));
    redo->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence(Qt::CTRL | Qt::Key_Y)});
    edit->addAction(redo);

    QMenu* analysis = menuBar()->addMenu(tr("&Analysis"));
    analysis->addAction(tr("&Calibration…"), this, &MainWindow::editCalibration);
    analysis->addAction(tr("&Run Analysis"), QKeySequence(Qt::CTRL | Qt::Key_R), m_wb, &Workbench::runAnalysis);
    analysis->addAction(tr("Cancel &All Jobs"), m_wb->jobs(), &JobRunner::cancelAll);

    QMenu* planMenu = menuBar()->addMenu(tr("&Plan"));
    planMenu->addAction(tr("&Open Recipe…"), this, [this]() {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open recipe"), {}, tr("Recipes (*.json)"));
        if (f.isEmpty()) return;
        if (auto r = m_wb->plan()->loadRecipe(f); !r) showError(tr("Open recipe"), QString::fromStdString(r.message()));
        showPage(QStringLiteral("plan"));
    });
    planMenu->addAction(tr("&Quantize…"), QKeySequence(Qt::CTRL | Qt::Key_U), this, &MainWindow::quantizePlan);
    m_runsMenu = planMenu->addMenu(tr("Kept &Runs"));
    connect(m_wb->plan(), &PlanSession::runsChanged, this, &MainWindow::rebuildRunsMenu);
    rebuildRunsMenu();
    planMenu->addAction(tr("&Export…"), QKeySequence(Qt::CTRL | Qt::Key_E), this, [this]() {
        auto* d = new ExportDialog(m_wb, this);
        d->setAttribute(Qt::WA_DeleteOnClose);
        d->show();
    });
    planMenu->addAction(tr("&Save Recipe As…"), this, [this]() {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save recipe"), {}, tr("Recipes (*.json)"));
        if (f.isEmpty()) return;
        if (auto r = m_wb->plan()->saveRecipe(f); !r) showError(tr("Save recipe"), QString::fromStdString(r.message()));
    });
    planMenu->addAction(tr("Fit to &Budget…"), this, &MainWindow::fitToBudget);
    planMenu->addAction(tr("&Pareto Sweep…"), this, &MainWindow::sweepPareto);
    planMenu->addAction(tr("&Compare Methods on Layer…"), this, &MainWindow::compareMethods);
    planMenu->addAction(tr("Compare Kept R&uns…"), this, &MainWindow::compareRuns);
    planMenu->addSeparator();
    QAction* bf16 = planMenu->addAction(tr("Quick Measure with &bf16 Products"));
    bf16->setCheckable(true);
    bf16->setEnabled(bf16::supported());
    bf16->setToolTip(bf16::supported()
                         ? tr("About three times as fast; adds a small KL of its own (docs/project-file.md)")
                         : tr("This CPU lacks AVX512-BF16"));
    auto showCompute = [this, bf16]() {
        const QString c = m_wb->project().quickCompute;
        bf16->setChecked(c == QLatin1String("bf16") || (c == QLatin1String("auto") && bf16::supported()));
    };
    showCompute();
    connect(m_wb, &Workbench::projectChanged, bf16, showCompute);
    connect(bf16, &QAction::triggered, this,
            [this](bool on) { m_wb->setQuickCompute(on ? QStringLiteral("bf16") : QStringLiteral("fp32")); });

    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(tr("Export Chart as &PNG…"), this, [this]() { exportCurrent(QStringLiteral("png")); });
    view->addAction(tr("Export Chart as &SVG…"), this, [this]() { exportCurrent(QStringLiteral("svg")); });
    view->addAction(tr("Export &Data as CSV…"), this, [this]() { exportCurrent(QStringLiteral("csv")); });
}

void MainWindow::quantizePlan()
{
    const QString name = QInputDialog::getText(this, tr("Quantize the plan"), tr("Name of the run:"), QLineEdit::Normal,
                                               tr("run-%1").arg(m_wb->plan()->runs().size() + 1));
    if (name.trimmed().isEmpty()) return;
    // Runs live beside a saved project, in <project>.runs/; an unsaved one asks where.
    QString parent;
    const QString project = m_wb->project().path;
    if (!project.isEmpty()) {
        const QFileInfo fi(project);
        parent = fi.absoluteDir().filePath(fi.completeBaseName() + QStringLiteral(".runs"));
        QDir().mkpath(parent);
    } else {
        parent = QFileDialog::getExistingDirectory(this, tr("Folder for the run"));
        if (parent.isEmpty()) return;
    }
    m_wb->plan()->quantize(name.trimmed(), QDir(parent).filePath(name.trimmed()));
}

void MainWindow::rebuildRunsMenu()
{
    m_runsMenu->clear();
    const QList<SavedRun>& runs = m_wb->plan()->runs();
    m_runsMenu->setEnabled(!runs.isEmpty());
    for (int i = 0; i < runs.size(); ++i) {
        m_runsMenu->addAction(describeRun(runs[i]), this, [this, i]() {
            if (auto ok = m_wb->plan()->restoreRun(i); !ok)
                showError(tr("Restore run"), QString::fromStdString(ok.message()));
        });
    }
}

void MainWindow::compareRuns()
{
    const QList<SavedRun>& runs = m_wb->plan()->runs();
    if (runs.size() < 2) return showError(tr("Compare kept runs"), tr("Keep two runs first (Plan > Quantize)."));
    QStringList names;
    for (const SavedRun& r : runs) names << describeRun(r);
    bool ok = false;
    const QString a = QInputDialog::getItem(this, tr("Compare kept runs"), tr("Run A:"), names, 0, false, &ok);
    if (!ok) return;
    const QString b = QInputDialog::getItem(this, tr("Compare kept runs"), tr("Run B:"), names, 1, false, &ok);
    if (!ok) return;
    showRunDiff(int(names.indexOf(a)), int(names.indexOf(b)));
}

void MainWindow::showRunDiff(int a, int b)
{
    auto diff = m_wb->plan()->diffRuns(a, b);
    if (!diff) return showError(tr("Compare kept runs"), QString::fromStdString(diff.message()));
    const QList<SavedRun>& runs = m_wb->plan()->runs();
    m_runDiff->setDiff(*diff, describeRun(runs[a]), describeRun(runs[b]));
    m_runDiffDock->show();
    m_runDiffDock->raise();
}

void MainWindow::showPage(const QString& id)
{
    if (QWidget* w = page(id)) m_tabs->setCurrentWidget(w);
}

QWidget* MainWindow::takePage(const QString& id)
{
    QWidget* w = page(id);
    if (!w) return nullptr;
    m_tabs->removeTab(m_tabs->indexOf(w));
    w->setParent(nullptr);
    return w;
}

QList<Exportable*> MainWindow::currentExportables() const
{
    const auto* page = qobject_cast<const AnalysisPage*>(m_tabs->currentWidget());
    return page ? page->exportables() : QList<Exportable*>();
}

void MainWindow::showError(const QString& title, const QString& message)
{
    m_lastError = title + QStringLiteral(": ") + message;
    m_status->setText(m_lastError);
    // Window-modal, not blocking: jobs and tests go on while the message is up.
    auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::openProjectFile(const QString& path)
{
    if (m_wb->openProject(path)) rememberRecent(QFileInfo(path).absoluteFilePath());
}

void MainWindow::openModelFolder(const QString& dir)
{
    const bool gguf = dir.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive) && QFileInfo(dir).isFile();
    if (!QFileInfo(dir).isDir() && !gguf)
        return showError(tr("Open model"), tr("%1 is neither a model folder nor a .gguf file").arg(dir));
    m_wb->openModel(dir);
}

void MainWindow::saveAs()
{
    const QString f = QFileDialog::getSaveFileName(this, tr("Save project"), {}, tr("QuantLens projects (*.qlproj)"));
    if (f.isEmpty()) return;
    if (auto r = m_wb->saveProject(f); !r) return showError(tr("Save project"), QString::fromStdString(r.message()));
    rememberRecent(m_wb->project().path);
}

void MainWindow::fitToBudget()
{
    const SnapshotPtr s = m_wb->snapshot();
    if (!s || !s->analysis || s->analysis->sensitivity.empty())
        return showError(tr("Fit to budget"),
                         tr("Run the analysis (with sensitivity) first: the allocation reads it."));
    bool ok = false;
    const double bpw = QInputDialog::getDouble(this, tr("Fit to budget"), tr("Bits per weight of the linear layers:"),
                                               3.5, 1.0, 16.0, 3, &ok);
    if (!ok) return;
    QStringList allocators;
    for (const std::string& a : allocatorNames()) allocators << QString::fromStdString(a);
    const QString allocator = QInputDialog::getItem(this, tr("Fit to budget"), tr("Allocator:"), allocators, 0, false,
                                                    &ok);
    if (!ok) return;
    auto a = m_wb->plan()->fitToBudget(*s->analysis, bpw, allocator.toStdString());
    if (!a) return showError(tr("Fit to budget"), QString::fromStdString(a.message()));
    showPage(QStringLiteral("plan"));
}

void MainWindow::sweepPareto()
{
    bool ok = false;
    const QString text = QInputDialog::getText(this, tr("Pareto sweep"),
                                               tr("Budgets in bits per weight of the linear layers:"),
                                               QLineEdit::Normal, QStringLiteral("2.5, 3, 3.5, 4"), &ok);
    if (!ok) return;
    std::vector<double> budgets;
    for (const QString& b : text.split(',', Qt::SkipEmptyParts)) {
        const double v = b.trimmed().toDouble(&ok);
        if (!ok || v <= 0) return showError(tr("Pareto sweep"), tr("'%1' is not a number of bits per weight").arg(b));
        budgets.push_back(v);
    }
    const SnapshotPtr s = m_wb->snapshot();
    auto job = m_wb->pareto()->start(*m_wb->plan(), s ? s->analysis : nullptr, budgets, allocatorNames());
    if (!job) return showError(tr("Pareto sweep"), QString::fromStdString(job.message()));
    m_paretoDock->show();
    m_paretoDock->raise();
}

void MainWindow::compareMethods()
{
    const QString layer = m_wb->selection()->layer();
    if (layer.isEmpty())
        return showError(tr("Compare methods"), tr("Select a linear layer first (in the model tree or the plan)."));
    QStringList offered;
    for (const std::string& id : m_wb->compare()->defaultCandidates()) offered << QString::fromStdString(id);
    bool ok = false;
    const QString text = QInputDialog::getText(this, tr("Compare methods on %1").arg(layer),
                                               tr("Methods (transforms before a method joined by '+'):"),
                                               QLineEdit::Normal, offered.join(QStringLiteral(", ")), &ok);
    if (!ok) return;
    std::vector<std::string> methods;
    for (const QString& m : text.split(',', Qt::SkipEmptyParts)) methods.push_back(m.trimmed().toStdString());
    auto job = m_wb->compare()->start(*m_wb->plan(), layer.toStdString(), methods);
    if (!job) return showError(tr("Compare methods"), QString::fromStdString(job.message()));
    m_compareDock->show();
    m_compareDock->raise();
}

void MainWindow::editCalibration()
{
    CalibrationDialog dlg(m_wb->project(), this);
    if (dlg.exec() != QDialog::Accepted) return;
    m_wb->setCalibration(dlg.file(), dlg.spec());
    m_wb->setSensitivity(dlg.sensitivity(), dlg.klSamples());
    m_wb->setSensitivityOptions(dlg.sensMethods(), dlg.sensBits(), dlg.sensGroups());
}

void MainWindow::exportCurrent(const QString& format)
{
    const QList<Exportable*> list = currentExportables();
    if (list.isEmpty()) return showError(tr("Export"), tr("This view has nothing to export yet."));
    Exportable* e = list.front();
    const QString f = QFileDialog::getSaveFileName(this, tr("Export %1").arg(e->exportTitle()),
                                                   e->exportTitle() + QLatin1Char('.') + format);
    if (f.isEmpty()) return;
    QString error;
    const bool ok = format == QLatin1String("png")   ? e->exportPng(f, &error)
                    : format == QLatin1String("svg") ? e->exportSvg(f, &error)
                                                     : e->exportCsv(f, &error);
    if (!ok) showError(tr("Export"), error);
}

void MainWindow::rememberRecent(const QString& path)
{
    QSettings settings;
    QStringList recent = settings.value(QStringLiteral("recentProjects")).toStringList();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > kMaxRecent) recent.removeLast();
    settings.setValue(QStringLiteral("recentProjects"), recent);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu()
{
    m_recent->clear();
    const QStringList recent = QSettings().value(QStringLiteral("recentProjects")).toStringList();
    for (const QString& p : recent) m_recent->addAction(p, this, [this, p]() { openProjectFile(p); });
    m_recent->setEnabled(!recent.isEmpty());
}

void MainWindow::updateTitle()
{
    const Project& p = m_wb->project();
    QString name = p.path.isEmpty() ? QFileInfo(p.modelDir).fileName() : QFileInfo(p.path).fileName();
    setWindowTitle(name.isEmpty() ? QStringLiteral("QuantLens") : name + QStringLiteral(" — QuantLens"));
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    m_wb->jobs()->cancelAll();
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState());
    event->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    const auto urls = event->mimeData()->urls();
    if (urls.size() == 1 && urls.front().isLocalFile()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const QString path = event->mimeData()->urls().front().toLocalFile();
    if (QFileInfo(path).isDir() || path.endsWith(QLatin1String(".gguf"), Qt::CaseInsensitive))
        openModelFolder(path);
    else
        openProjectFile(path);
}

} // namespace ql
