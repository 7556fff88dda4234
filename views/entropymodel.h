#pragma once

#include "snapshot.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QStringList>

namespace ql {

/// One row per activation site (analysis order): site, block, kind, channels, energy entropy and
/// value entropy in bits, and the energy entropy normalised by its maximum log2(channels).
///
/// The normalised column is a pure display transformation of stored numbers (the stored energy
/// entropy divided by log2 of the stored channel count): 1 means the energy is spread evenly over
/// all channels, values near 0 that a few channels carry it. DisplayRole is formatted text,
/// Qt::UserRole the raw number for sorting.
class EntropyModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// Columns of the table.
    enum Column {
        SiteColumn,
        BlockColumn,
        KindColumn, ///< attn_in, o_in, mlp_in, down_in
        ChannelsColumn,
        EnergyEntropyColumn,    ///< bits
        ValueEntropyColumn,     ///< bits
        NormalisedEnergyColumn, ///< energy entropy / log2(channels)
        ColumnCount
    };
    /// Site name of a row ("layers.3.down_in"), for any column.
    static constexpr int SiteNameRole = Qt::UserRole + 1;

    /// An empty table.
    explicit EntropyModel(QObject* parent = nullptr);

    /// Rebuilds the table from a snapshot's analysis (null snapshot or analysis: empty).
    void setSnapshot(SnapshotPtr snapshot);

    /// Row of a site by name, -1 when absent.
    int rowOfSite(const QString& site) const;
    /// Site name of a row.
    QString siteName(int row) const;
    /// The statistics of a row's site (null when out of range); valid while the snapshot is held.
    const SiteStats* siteStats(int row) const;
    /// Site kinds in order of first appearance ("attn_in", "o_in", ...).
    QStringList kinds() const { return m_kinds; }
    /// Kind of a site name ("layers.3.down_in" → "down_in").
    static QString kindOf(const QString& site) { return site.section('.', -1); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    QVariant rawValue(const SiteStats& s, int column) const;

    SnapshotPtr m_snapshot;
    const std::vector<SiteStats>* m_sites = nullptr; // inside m_snapshot
    QHash<QString, int> m_rowOf;
    QStringList m_kinds;
};

} // namespace ql
