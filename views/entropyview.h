#pragma once

#include "analysispage.h"
#include "exportable.h"
#include "snapshot.h"

#include <QList>
#include <QWidget>

#include <memory>

QT_BEGIN_NAMESPACE
class QCheckBox;
class QLabel;
class QLineSeries;
class QScatterSeries;
class QSortFilterProxyModel;
class QStackedWidget;
class QTableView;
QT_END_NAMESPACE

namespace ql {

class ChartPanel;
class EntropyModel;
class HistogramChart;
class HistogramModel;
class Selection;
class TableExport;

/// Information content of the activations: energy and value entropy of every site across depth
/// (one colour per site kind; energy solid on the left axis, value dashed on the right axis, each
/// with its own range since they measure different things), the value histogram of the selected
/// site, and the per-site table.
class EntropyView : public AnalysisPage {
    Q_OBJECT
public:
    /// A view following (and setting) `selection`.
    explicit EntropyView(Selection* selection, QWidget* parent = nullptr);
    ~EntropyView() override;

    /// Shows a snapshot (null or without analysis: a placeholder).
    void setSnapshot(SnapshotPtr snapshot) override;
    /// Depth chart, histogram chart and table.
    QList<Exportable*> exportables() const override;

    /// The per-site table model.
    EntropyModel* model() const { return m_model; }
    /// The table's sort proxy (sorts on Qt::UserRole).
    QSortFilterProxyModel* proxyModel() const { return m_proxy; }
    /// The selected site's histogram.
    HistogramModel* histogramModel() const;
    /// The depth chart.
    ChartPanel* depthPanel() const { return m_depthPanel; }
    /// The histogram chart.
    HistogramChart* histogramPanel() const { return m_histogram; }
    /// The table.
    QTableView* tableView() const { return m_table; }
    /// The depth series of a site kind ("down_in"), energy or value entropy; null when absent.
    QLineSeries* depthSeries(const QString& kind, bool energy) const;
    /// True while the placeholder is shown instead of the charts.
    bool showsPlaceholder() const;
    /// The placeholder's text.
    QString placeholderText() const;

private:
    void rebuildDepth();
    void followSelection();
    void selectFromTable(const QModelIndex& index);
    QString depthCsv() const;

    Selection* m_selection;
    SnapshotPtr m_snapshot;
    EntropyModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QStackedWidget* m_stack;
    QLabel* m_placeholder;
    QCheckBox* m_logCheck;
    ChartPanel* m_depthPanel;
    HistogramChart* m_histogram;
    QTableView* m_table;
    std::unique_ptr<TableExport> m_tableExport;
    QList<QLineSeries*> m_energy, m_value;      // parallel to the model's kinds
    QScatterSeries* m_selectedEnergy = nullptr; // rings on the selected site, one per y axis
    QScatterSeries* m_selectedValue = nullptr;
    bool m_syncing = false;
};

} // namespace ql
