#pragma once

#include "analysispage.h"
#include "exportable.h"
#include "snapshot.h"

#include <QList>
#include <QWidget>

QT_BEGIN_NAMESPACE
class QCheckBox;
class QLabel;
class QLineSeries;
class QStackedWidget;
QT_END_NAMESPACE

namespace ql {

class ChartPanel;
class HistogramChart;
class HistogramModel;
class Selection;

/// The selected linear layer's weights: the histogram of all its weights and, per output row,
/// the absmax and standard deviation core stored (WeightStats).
class WeightsView : public AnalysisPage {
    Q_OBJECT
public:
    /// A view following `selection`.
    explicit WeightsView(Selection* selection, QWidget* parent = nullptr);
    ~WeightsView() override;

    /// Shows a snapshot (null or without analysis: a placeholder).
    void setSnapshot(SnapshotPtr snapshot) override;
    /// Histogram and per-row chart.
    QList<Exportable*> exportables() const override;

    /// The histogram shown (the selected layer's weights).
    HistogramModel* histogramModel() const;
    /// The histogram chart.
    HistogramChart* histogramPanel() const { return m_histogram; }
    /// The per-row chart.
    ChartPanel* rowPanel() const { return m_rowPanel; }
    /// Per-row absmax series (null when nothing is shown).
    QLineSeries* rowAbsmaxSeries() const { return m_absmax; }
    /// Per-row standard deviation series (null when nothing is shown).
    QLineSeries* rowStdSeries() const { return m_std; }
    /// The weight statistics shown (null when none); valid while the snapshot is held.
    const WeightStats* weightStats() const { return m_stats; }
    /// True while the placeholder is shown instead of the charts.
    bool showsPlaceholder() const;
    /// The placeholder's text.
    QString placeholderText() const;

private:
    void followSelection();
    void showPlaceholder(const QString& text);
    void rebuildRows();
    QString rowCsv() const;

    Selection* m_selection;
    SnapshotPtr m_snapshot;
    const WeightStats* m_stats = nullptr; // inside m_snapshot
    QStackedWidget* m_stack;
    QLabel* m_placeholder;
    QLabel* m_summary;
    QCheckBox* m_logCheck;
    HistogramChart* m_histogram;
    ChartPanel* m_rowPanel;
    QLineSeries* m_absmax = nullptr;
    QLineSeries* m_std = nullptr;
};

} // namespace ql
