#pragma once

#include "snapshot.h"

#include <QMainWindow>
#include <QMap>

class QDockWidget;
class QLabel;
class QMenu;
class QTabWidget;

namespace ql {

class Exportable;
class CompareView;
class RunDiffView;
class ExplorerView;
class JobsView;
class OutliersView;
class ParetoView;
class PlanEditor;
class Workbench;

/// The workbench window. It only wires: the Workbench owns the data and the jobs, each view
/// is its own class in views/, and the window connects them with docks, tabs and actions.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(Workbench* workbench, QWidget* parent = nullptr);

    /// Ids of the view pages, in tab order: overview, outliers, massive, sensitivity, entropy, weights, plan.
    QStringList pageIds() const { return m_pageIds; }
    /// The page widget of an id (null when unknown).
    QWidget* page(const QString& id) const { return m_pages.value(id); }
    /// Removes a page from the tabs and hands it to the caller (screenshots render it alone, at
    /// an exact size).
    QWidget* takePage(const QString& id);
    /// Brings a page to the front.
    void showPage(const QString& id);
    /// What the current page can export, its main chart first.
    QList<Exportable*> currentExportables() const;
    /// The model explorer and the Jobs dock (tests).
    QDockWidget* explorerDock() const { return m_explorerDock; }
    QDockWidget* jobsDock() const { return m_jobsDock; }
    /// The size-quality plane of the Pareto dock (tests).
    ParetoView* paretoView() const { return m_pareto; }
    /// The methods compared on a layer, in the Compare dock (tests).
    CompareView* compareView() const { return m_compare; }
    /// Two kept runs compared layer by layer, in the Run Diff dock (tests).
    RunDiffView* runDiffView() const { return m_runDiff; }
    /// Shows kept runs a and b compared in the Run Diff dock (an error dialog when unreadable).
    void showRunDiff(int a, int b);
    /// The last error shown (tests).
    QString lastError() const { return m_lastError; }

protected:
    void closeEvent(QCloseEvent* event) override;
    void showEvent(QShowEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createViews();
    void createMenus();
    void firstRunLayout();
    void showError(const QString& title, const QString& message);
    void openProjectFile(const QString& path);
    void openModelFolder(const QString& dir);
    void saveAs();
    void editCalibration();
    /// Plan > Fit to Budget: asks for bits per weight and an allocator, then replaces the plan.
    void fitToBudget();
    /// Plan > Pareto Sweep: asks for budgets, then sweeps every allocator into the Pareto dock.
    void sweepPareto();
    /// Plan > Compare Methods on Layer: asks for methods, then compares them on the selected layer.
    void compareMethods();
    /// Plan > Compare Kept Runs: asks for two kept runs, then shows their per-layer differences.
    void compareRuns();
    void exportCurrent(const QString& format);
    void rememberRecent(const QString& path);
    void rebuildRecentMenu();
    void quantizePlan();
    void rebuildRunsMenu();
    /// A right-hand dock for a result view, hidden until its first result (tabbed with tabWith).
    QDockWidget* addHiddenDock(QWidget* widget, const QString& title, const QString& name, QDockWidget* tabWith);
    void updateTitle();

    Workbench* m_wb;
    QTabWidget* m_tabs = nullptr;
    QMap<QString, QWidget*> m_pages;
    QStringList m_pageIds;
    OutliersView* m_outliers = nullptr;
    PlanEditor* m_planEditor = nullptr;
    ExplorerView* m_explorer = nullptr;
    JobsView* m_jobs = nullptr;
    QDockWidget* m_explorerDock = nullptr;
    QDockWidget* m_jobsDock = nullptr;
    ParetoView* m_pareto = nullptr;
    QDockWidget* m_paretoDock = nullptr;
    CompareView* m_compare = nullptr;
    QDockWidget* m_compareDock = nullptr;
    RunDiffView* m_runDiff = nullptr;
    QDockWidget* m_runDiffDock = nullptr;
    bool m_sizeDocksOnShow = false; ///< first run: give the docks their sizes when first shown
    QMenu* m_recent = nullptr;
    QMenu* m_runsMenu = nullptr;
    QLabel* m_status = nullptr;
    QString m_lastError;
};

} // namespace ql
