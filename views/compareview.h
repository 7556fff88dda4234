#pragma once

#include "quantlens/recipe/layercompare.h"

#include <QWidget>

QT_BEGIN_NAMESPACE
class QLabel;
class QTableWidget;
QT_END_NAMESPACE

namespace ql {

class HistogramChart;

/// Methods side by side on one layer: a row per method with its bits per weight, weight error,
/// output error and the quick KL, top-1 and perplexity the layer alone causes (the best of each
/// column in bold), over the layer's weight histogram and the selected method's error histogram.
class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);

    /// Shows a comparison (replacing the last one).
    void setComparison(const LayerComparison& comparison);
    /// The comparison shown.
    const LayerComparison& comparison() const { return m_comparison; }
    /// The table of methods (tests).
    QTableWidget* table() const { return m_table; }
    /// The weight histogram and the selected method's error histogram.
    HistogramChart* weightChart() const { return m_weights; }
    HistogramChart* errorChart() const { return m_error; }

private:
    void showError(int row);

    LayerComparison m_comparison;
    QLabel* m_title;
    QTableWidget* m_table;
    HistogramChart* m_weights;
    HistogramChart* m_error;
};

} // namespace ql
