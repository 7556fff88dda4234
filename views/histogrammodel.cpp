#include "histogrammodel.h"

#include <algorithm>

namespace ql {

HistogramModel::HistogramModel(QObject* parent) : QAbstractTableModel(parent) {}

void HistogramModel::setHistogram(const std::vector<double>& counts, const std::vector<float>& edges,
                                  const QString& source)
{
    beginResetModel();
    m_source = source;
    m_counts.clear();
    m_edges.clear();
    // A histogram without consistent edges cannot be drawn truthfully; show none rather than guess.
    if (!counts.empty() && edges.size() == counts.size() + 1) {
        m_counts = counts;
        m_edges.assign(edges.begin(), edges.end());
    }
    endResetModel();
}

void HistogramModel::clear()
{
    beginResetModel();
    m_counts.clear();
    m_edges.clear();
    m_source.clear();
    endResetModel();
}

double HistogramModel::maxCount() const
{
    return m_counts.empty() ? 0.0 : *std::max_element(m_counts.begin(), m_counts.end());
}

double HistogramModel::minPositiveCount() const
{
    double m = 0;
    for (double c : m_counts)
        if (c > 0 && (m == 0 || c < m)) m = c;
    return m;
}

int HistogramModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_counts.size());
}

int HistogramModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant HistogramModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || size_t(index.row()) >= m_counts.size() || index.column() >= ColumnCount) return {};
    const size_t r = size_t(index.row());
    const double v = index.column() == FromColumn ? m_edges[r]
                     : index.column() == ToColumn ? m_edges[r + 1]
                                                  : m_counts[r];
    switch (role) {
    case Qt::DisplayRole:
        return index.column() == CountColumn ? QString::number(v, 'g', 10) : QString::number(v, 'g', 5);
    case Qt::UserRole: return v;
    case Qt::TextAlignmentRole: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    default: return {};
    }
}

QVariant HistogramModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case FromColumn: return tr("From");
    case ToColumn: return tr("To");
    case CountColumn: return tr("Count");
    default: return {};
    }
}

} // namespace ql
