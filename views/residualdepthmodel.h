#pragma once

#include "snapshot.h"

#include <QAbstractTableModel>

#include <vector>

namespace ql {

/// The residual stream across depth (Sun et al. 2024, massive activations): one row per block,
/// the three largest |a| and the median |a| (ResidualStats.top3, medianAbs). DisplayRole is text;
/// RawRole (Qt::UserRole) the double.
class ResidualDepthModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// Columns, in order.
    enum Column { Block, Top1, Top2, Top3, Median, ColumnCount };
    /// The raw double of a cell.
    static constexpr int RawRole = Qt::UserRole;

    /// An empty model.
    explicit ResidualDepthModel(QObject* parent = nullptr);

    /// Rebuilds the rows from a snapshot (null or no analysis: no rows), ordered by block.
    void setSnapshot(SnapshotPtr snapshot);
    /// Raw value of a cell (NaN when out of range).
    double value(int row, int column) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    SnapshotPtr m_snapshot; // keeps m_rows' pointees alive
    std::vector<const ResidualStats*> m_rows;
};

} // namespace ql
