#pragma once

#include "analysispage.h"
#include "snapshot.h"

#include <QList>
#include <QWidget>

QT_BEGIN_NAMESPACE
class QLabel;
class QSortFilterProxyModel;
class QStackedWidget;
class QTableView;
QT_END_NAMESPACE

namespace ql {

class ChartPanel;
class Exportable;
class MassiveTableModel;
class ResidualDepthModel;
class Selection;

/// Massive activations (Sun et al. 2024) across depth: top-1/2/3 and median |a| of the residual
/// stream per block on a log axis, and the table of massive activations; clicking a row selects
/// that block. Shows a placeholder without an analysis.
class MassiveView : public AnalysisPage {
    Q_OBJECT
public:
    /// A view that selects into `selection` (not owned; must outlive the view).
    explicit MassiveView(Selection* selection, QWidget* parent = nullptr);
    ~MassiveView() override;

    /// Shows a snapshot (null or without analysis: a placeholder).
    void setSnapshot(SnapshotPtr snapshot) override;
    /// The chart, for the window's export actions.
    QList<Exportable*> exportables() const override;

    /// True while the placeholder is shown instead of the content.
    bool showsPlaceholder() const;
    /// The placeholder's text.
    QString placeholderText() const;
    /// Residual stream statistics per block.
    ResidualDepthModel* residualModel() const { return m_residualModel; }
    /// The massive activations.
    MassiveTableModel* massiveModel() const { return m_massiveModel; }
    /// The sorting proxy between the massive model and the table.
    QSortFilterProxyModel* proxyModel() const { return m_proxy; }
    /// The table of massive activations.
    QTableView* tableView() const { return m_table; }
    /// The top-k / median chart.
    ChartPanel* chartPanel() const { return m_chart; }
    /// Selects the block of a table row (proxy index), as a click does.
    void activateRow(const QModelIndex& proxyIndex);

private:
    void rebuildChart();
    QString chartCsv() const;

    Selection* m_selection;
    SnapshotPtr m_snapshot;
    ResidualDepthModel* m_residualModel;
    MassiveTableModel* m_massiveModel;
    QSortFilterProxyModel* m_proxy;
    QStackedWidget* m_stack;
    QLabel* m_placeholder;
    QLabel* m_summary;
    ChartPanel* m_chart;
    QTableView* m_table;
};

} // namespace ql
