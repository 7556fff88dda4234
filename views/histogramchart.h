#pragma once

#include "chartpanel.h"

#include <vector>

QT_BEGIN_NAMESPACE
class QAreaSeries;
QT_END_NAMESPACE

namespace ql {

class HistogramModel;

/// A chart of one stored histogram (a site's values, a weight tensor) as a filled step outline,
/// with linear or logarithmic counts. Its data lives in a HistogramModel, which is also its CSV.
class HistogramChart : public ChartPanel {
    Q_OBJECT
public:
    /// An empty chart titled `title`.
    explicit HistogramChart(const QString& title, QWidget* parent = nullptr);
    ~HistogramChart() override;

    /// Shows counts [bins] over edges [bins + 1] of `source`, with a chart title and an x-axis title.
    void setHistogram(const std::vector<double>& counts, const std::vector<float>& edges, const QString& source,
                      const QString& title, const QString& xTitle);
    /// Shows no histogram, with a title saying why.
    void clearHistogram(const QString& title);
    /// Logarithmic count axis (heavy tails stay visible); empty bins then sit at the axis floor.
    void setLogCounts(bool log);
    /// True when counts are on a log axis.
    bool logCounts() const { return m_log; }

    /// The histogram shown, one row per bin.
    HistogramModel* model() const { return m_model; }
    /// The area series (null when there is no histogram).
    QAreaSeries* series() const { return m_series; }

private:
    void rebuild();

    HistogramModel* m_model;
    QAreaSeries* m_series = nullptr;
    QString m_xTitle;
    bool m_log = true;
};

} // namespace ql
