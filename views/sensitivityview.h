#pragma once

#include "analysispage.h"
#include "exportable.h"
#include "sensitivitymodel.h"
#include "snapshot.h"

#include <QHash>
#include <QList>
#include <QPair>
#include <QWidget>

#include <memory>

QT_BEGIN_NAMESPACE
class QBarSeries;
class QCheckBox;
class QComboBox;
class QLabel;
class QSortFilterProxyModel;
class QStackedWidget;
class QTableView;
QT_END_NAMESPACE

namespace ql {

class ChartPanel;
class KlScatter;
class Selection;
class TableExport;

/// Layer sensitivity: a per-layer bar chart of one measure at one width (blocks along x, one bar
/// colour per projection), a scatter of a cheap measure (Hessian proxy or relative MSE) against
/// end-to-end KL with the Spearman rank correlation core computed, and the sortable table.
class SensitivityView : public AnalysisPage {
    Q_OBJECT
public:
    /// A view following (and setting) `selection`.
    explicit SensitivityView(Selection* selection, QWidget* parent = nullptr);
    ~SensitivityView() override;

    /// Shows a snapshot (null or without sensitivity: a placeholder).
    void setSnapshot(SnapshotPtr snapshot) override;
    /// Bar chart, scatter (when KL exists) and table.
    QList<Exportable*> exportables() const override;

    /// The table model.
    SensitivityModel* model() const { return m_model; }
    /// The table's sort proxy (sorts on Qt::UserRole).
    QSortFilterProxyModel* proxyModel() const { return m_proxy; }
    /// The table.
    QTableView* tableView() const { return m_table; }
    /// The bar chart.
    ChartPanel* barPanel() const { return m_barPanel; }
    /// The KL scatter's chart.
    ChartPanel* scatterPanel() const;
    /// The bar chart's series (null before data).
    QBarSeries* barSeries() const { return m_bars; }
    /// Measure shown by the bar chart.
    SensitivityMeasure measure() const;
    /// Width shown (0 when none).
    int bits() const;
    /// Selects the measure and width shown (ignored when not present).
    void setMeasure(SensitivityMeasure measure, int bits);
    /// Cheap measure on the scatter's x axis (Proxy or RelMse).
    SensitivityMeasure scatterMeasure() const;
    /// Sets the scatter's x measure (Proxy or RelMse).
    void setScatterMeasure(SensitivityMeasure measure);
    /// True when the scatter is replaced by the "KL not computed" note.
    bool showsKlNote() const;
    /// The note shown instead of the scatter.
    QString klNoteText() const;
    /// True while the placeholder is shown instead of the charts.
    bool showsPlaceholder() const;
    /// The placeholder's text.
    QString placeholderText() const;
    /// Layer drawn at a bar (category = block position, set = projection), empty when none.
    QString layerAtBar(int category, int set) const;

private:
    void fillMeasureCombo();
    void fillWidthCombo();
    void rebuildBars();
    void rebuildScatter();
    void followSelection();
    void selectFromTable(const QModelIndex& index);
    QString barCsv() const;

    Selection* m_selection;
    SnapshotPtr m_snapshot;
    SensitivityModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QStackedWidget* m_stack;
    QLabel* m_placeholder;
    QComboBox* m_measureCombo;
    QComboBox* m_widthCombo;
    QComboBox* m_scatterCombo;
    QCheckBox* m_logCheck;
    ChartPanel* m_barPanel;
    KlScatter* m_scatter;
    QTableView* m_table;
    std::unique_ptr<TableExport> m_tableExport;

    QBarSeries* m_bars = nullptr;
    QList<int> m_blocks;                  // bar categories
    QStringList m_kinds;                  // bar sets
    QHash<QPair<int, int>, int> m_barRow; // (category, set) → model row
    bool m_syncing = false;
};

} // namespace ql
