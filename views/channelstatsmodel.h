#pragma once

#include "snapshot.h"

#include <QAbstractTableModel>
#include <QSet>

namespace ql {

/// Per-channel statistics of one site (SiteStats), one row per input channel. DisplayRole is
/// formatted text; RawRole (Qt::UserRole) the raw number, for sorting and charts.
class ChannelStatsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// Columns, in order.
    enum Column { Channel, Absmax, Min, Max, P01, P25, P75, P99, Mean, Kurtosis, Outlier, ColumnCount };
    /// The raw double of a cell (Outlier: 1 or 0).
    static constexpr int RawRole = Qt::UserRole;

    /// An empty model.
    explicit ChannelStatsModel(QObject* parent = nullptr);

    /// Shows the site `site` of `snapshot` (empty when either is missing).
    void setSite(SnapshotPtr snapshot, const QString& site);
    /// The site shown (empty: none).
    QString site() const { return m_site; }
    /// The statistics shown, or null.
    const SiteStats* stats() const { return m_stats; }
    /// True when a channel is listed in SiteStats.outlierChannels.
    bool isOutlier(int channel) const { return m_outliers.contains(channel); }
    /// Raw value of a cell (NaN when the statistic is missing).
    double rawValue(int row, int column) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    SnapshotPtr m_snapshot; // keeps m_stats alive
    const SiteStats* m_stats = nullptr;
    QString m_site;
    QSet<int> m_outliers;
};

} // namespace ql
