#pragma once

#include "snapshot.h"

#include <QAbstractTableModel>

namespace ql {

/// The massive activations of an analysis (|a| > 100 and > 1000× the median of its hidden state),
/// one row each: layer, calibration sample, position in the sample, token text, channel, value.
/// DisplayRole is text; RawRole (Qt::UserRole) the raw number (Token: the text) for sorting.
class MassiveTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// Columns, in order.
    enum Column { Layer, Sample, Position, Token, Channel, Value, ColumnCount };
    /// The raw value of a cell (double, or QString for Token).
    static constexpr int RawRole = Qt::UserRole;

    /// An empty model.
    explicit MassiveTableModel(QObject* parent = nullptr);

    /// Rebuilds the rows from a snapshot (null or no analysis: no rows).
    void setSnapshot(SnapshotPtr snapshot);
    /// Window length used to split a calibration token index into sample and position.
    int seqlen() const;
    /// The activation of a row, or null.
    const MassiveActivation* activation(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    SnapshotPtr m_snapshot;
};

} // namespace ql
