#pragma once

#include "snapshot.h"

#include <QAbstractTableModel>

#include <array>
#include <vector>

namespace ql {

/// "Spikes per projection" across depth: one row per block, and per site kind (attn_in feeds
/// q/k/v, o_in feeds o_proj, mlp_in feeds gate/up, down_in feeds down_proj) the site's max |x|
/// (SiteStats.absmaxSite). DisplayRole is text; RawRole (Qt::UserRole) the double (NaN: missing).
class DepthModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// Columns, in order.
    enum Column { Block, AttnIn, OIn, MlpIn, DownIn, ColumnCount };
    /// The raw double of a cell.
    static constexpr int RawRole = Qt::UserRole;

    /// An empty model.
    explicit DepthModel(QObject* parent = nullptr);

    /// Rebuilds the rows from a snapshot (null or no analysis: no rows).
    void setSnapshot(SnapshotPtr snapshot);
    /// Site suffix of a value column ("attn_in" …), empty for Block.
    static QString siteKind(int column);
    /// Max |x| of a block's site (column AttnIn … DownIn); NaN when the site is missing.
    double value(int block, int column) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    SnapshotPtr m_snapshot;
    std::vector<std::array<double, 4>> m_rows; // per block: attn_in, o_in, mlp_in, down_in
};

} // namespace ql
