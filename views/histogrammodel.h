#pragma once

#include <QAbstractTableModel>
#include <QString>

#include <vector>

namespace ql {

/// A stored histogram as a table, one row per bin: lower edge, upper edge, count. The weights and
/// entropy views chart it and export it; it never bins anything itself.
class HistogramModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// Columns of the table.
    enum Column { FromColumn, ToColumn, CountColumn, ColumnCount };

    /// An empty histogram.
    explicit HistogramModel(QObject* parent = nullptr);

    /// Shows counts [bins] over edges [bins + 1] (a mismatch shows nothing); `source` names what
    /// was binned (a site or a weight tensor).
    void setHistogram(const std::vector<double>& counts, const std::vector<float>& edges, const QString& source);
    /// Shows nothing.
    void clear();

    /// What the histogram is of (empty when cleared).
    QString source() const { return m_source; }
    /// Number of bins.
    int bins() const { return int(m_counts.size()); }
    /// Count of a bin.
    double count(int bin) const { return m_counts[size_t(bin)]; }
    /// Lower edge of a bin (edge(bins()) is the upper edge of the last).
    double edge(int i) const { return m_edges[size_t(i)]; }
    /// Largest bin count (0 when empty).
    double maxCount() const;
    /// Smallest positive bin count (0 when there is none), for log-scaled axes.
    double minPositiveCount() const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<double> m_counts;
    std::vector<double> m_edges;
    QString m_source;
};

} // namespace ql
