#pragma once

#include "sensitivitymodel.h"
#include "snapshot.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QList>

#include <vector>

namespace ql {

/// The Overview table: one row per linear layer (model order) with its shape, its site's
/// activation statistics, its weight statistics and one column per sensitivity measure × width
/// present. Qt::DisplayRole is formatted text; Qt::UserRole is the raw number (invalid when the
/// statistic is absent) so a proxy with sortRole Qt::UserRole sorts by value.
class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// The fixed columns; sensitivity columns follow from FixedColumnCount on.
    enum Column {
        NameColumn,
        BlockColumn,
        KindColumn,
        ShapeColumn, ///< raw value: out × in
        ParamsColumn,
        SiteAbsmaxColumn,
        SiteKurtosisColumn,  ///< excess kurtosis of all values of the site
        EnergyEntropyColumn, ///< bits
        ValueEntropyColumn,  ///< bits
        OutlierChannelsColumn,
        WeightKurtosisColumn,
        WeightBeyond3SigmaColumn, ///< raw value: fraction (displayed as percent)
        WeightMaxRowAbsmaxColumn, ///< largest stored row absmax, i.e. the weight's absmax
        FixedColumnCount
    };
    /// HF module name of a row, for any column.
    static constexpr int LayerNameRole = Qt::UserRole + 1;

    /// An empty table.
    explicit LayerTableModel(QObject* parent = nullptr);

    /// Rebuilds the table from a snapshot (null: empty; no analysis: layer columns only filled).
    void setSnapshot(SnapshotPtr snapshot);
    /// The snapshot shown (may be null).
    SnapshotPtr snapshot() const { return m_snapshot; }

    /// Row of a layer by HF module name, -1 when absent.
    int rowOfLayer(const QString& layer) const;
    /// HF module name of a row.
    QString layerName(int row) const;
    /// Model column of a sensitivity measure at a width, -1 when absent.
    int sensitivityColumn(SensitivityMeasure measure, int bits) const;
    /// Sensitivity columns in order (column FixedColumnCount + i is sensitivityColumns()[i]).
    const QList<SensitivityColumn>& sensitivityColumns() const { return m_sensColumns; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    // Pointers into m_snapshot, resolved once per snapshot.
    struct Row {
        const LinearLayer* layer = nullptr;
        const SiteStats* site = nullptr;
        const WeightStats* weight = nullptr;
        const LayerSensitivity* sensitivity = nullptr;
    };
    QVariant rawValue(const Row& row, int column) const;
    QString displayText(const Row& row, int column, const QVariant& raw) const;

    SnapshotPtr m_snapshot;
    std::vector<Row> m_rows;
    QList<SensitivityColumn> m_sensColumns;
    QHash<QString, int> m_rowOf;
};

} // namespace ql
