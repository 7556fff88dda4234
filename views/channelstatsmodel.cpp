#include "channelstatsmodel.h"

#include <QBrush>
#include <QColor>

#include <cmath>
#include <limits>

namespace ql {

ChannelStatsModel::ChannelStatsModel(QObject* parent) : QAbstractTableModel(parent) {}

void ChannelStatsModel::setSite(SnapshotPtr snapshot, const QString& site)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_site = site;
    m_stats = m_snapshot ? m_snapshot->site(site.toStdString()) : nullptr;
    m_outliers.clear();
    if (m_stats)
        for (int32_t c : m_stats->outlierChannels) m_outliers.insert(c);
    endResetModel();
}

int ChannelStatsModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() || !m_stats ? 0 : int(m_stats->absmax.size());
}

int ChannelStatsModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

double ChannelStatsModel::rawValue(int row, int column) const
{
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (!m_stats || row < 0 || row >= rowCount()) return nan;
    // Vectors other than absmax may be absent in older analyses: show them as missing.
    const auto at = [&](const Eigen::VectorXf& v) { return row < v.size() ? double(v[row]) : nan; };
    switch (column) {
    case Channel: return row;
    case Absmax: return at(m_stats->absmax);
    case Min: return at(m_stats->min);
    case Max: return at(m_stats->max);
    case P01: return at(m_stats->p01);
    case P25: return at(m_stats->p25);
    case P75: return at(m_stats->p75);
    case P99: return at(m_stats->p99);
    case Mean: return at(m_stats->mean);
    case Kurtosis: return at(m_stats->kurtosis);
    case Outlier: return isOutlier(row) ? 1.0 : 0.0;
    default: return nan;
    }
}

QVariant ChannelStatsModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.parent().isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const int col = index.column();
    const double v = rawValue(index.row(), col);
    switch (role) {
    case Qt::DisplayRole:
        if (col == Channel) return index.row();
        if (col == Outlier) return isOutlier(index.row()) ? tr("yes") : tr("no");
        return std::isnan(v) ? QString() : QString::number(v, 'g', 5);
    case RawRole: return v;
    case Qt::TextAlignmentRole: return int(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ForegroundRole:
        // Outlier rows stand out in the table as they do in the charts.
        if (isOutlier(index.row())) return QBrush(QColor(200, 40, 40));
        return {};
    default: return {};
    }
}

QVariant ChannelStatsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Vertical) return QAbstractTableModel::headerData(section, orientation, role);
    if (section < 0 || section >= ColumnCount) return {};
    if (role == Qt::DisplayRole) {
        static const char* names[ColumnCount] = {"channel", "absmax", "min",  "max",      "p01",    "p25",
                                                 "p75",     "p99",    "mean", "kurtosis", "outlier"};
        return tr(names[section]);
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case Absmax: return tr("max |x| over calibration tokens");
        case Kurtosis: return tr("excess kurtosis of the channel's values");
        case Outlier: return tr("absmax above the site's outlier threshold × median absmax");
        default: return {};
        }
    }
    return {};
}

} // namespace ql
