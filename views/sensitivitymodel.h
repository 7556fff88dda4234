#pragma once

#include "snapshot.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QList>

#include <optional>

namespace ql {

/// The per-layer sensitivity measures core stores (LayerSensitivity).
enum class SensitivityMeasure { Proxy, RelMse, SqnrDb, Kl, Fisher, FisherOut };

/// One sensitivity column: a measure at a bit width.
struct SensitivityColumn {
    SensitivityMeasure measure = SensitivityMeasure::Proxy;
    int bits = 0;
    bool operator==(const SensitivityColumn&) const = default;
};

/// Per-layer sensitivity table: rows = layers (analysis order), columns = layer, block, kind, then
/// one column per measure × width present (measure-major, ascending widths). DisplayRole is
/// formatted, Qt::UserRole the raw double (invalid when absent) for sorting.
class SensitivityModel : public QAbstractTableModel {
    Q_OBJECT
public:
    /// The fixed leading columns.
    enum Column { LayerColumn, BlockColumn, KindColumn, FixedColumnCount };
    /// HF module name of a row, for any column.
    static constexpr int LayerNameRole = Qt::UserRole + 1;

    /// An empty table.
    explicit SensitivityModel(QObject* parent = nullptr);

    /// Rebuilds the table from a snapshot's analysis (null snapshot or analysis: empty).
    void setSnapshot(SnapshotPtr snapshot);

    /// Measures with at least one value, in column order.
    QList<SensitivityMeasure> measures() const;
    /// Widths with at least one value, ascending.
    QList<int> widths() const;
    /// Sensitivity columns in order (column FixedColumnCount + i is columns()[i]).
    const QList<SensitivityColumn>& columns() const { return m_columns; }
    /// Model column of a measure at a width, -1 when absent.
    int columnOf(SensitivityMeasure measure, int bits) const;
    /// Row of a layer by HF module name, -1 when absent.
    int rowOfLayer(const QString& layer) const;
    /// HF module name of a row.
    QString layerName(int row) const;
    /// Stored value of a row's measure at a width, nullopt when not computed.
    std::optional<double> value(int row, SensitivityMeasure measure, int bits) const;
    /// True when end-to-end KL was computed for at least one layer.
    bool hasKl() const;

    /// Stored value of one layer's measure at a width, nullopt when not computed.
    static std::optional<double> lookup(const LayerSensitivity& s, SensitivityMeasure measure, int bits);
    /// Columns present in a sensitivity table (measure-major, ascending widths).
    static QList<SensitivityColumn> columnsFor(const std::vector<LayerSensitivity>& table);
    /// Human name of a measure ("Hessian proxy", "Relative output MSE", ...).
    static QString measureName(SensitivityMeasure measure);
    /// Column header of a measure at a width ("proxy @4", "SQNR @4 (dB)", ...).
    static QString columnTitle(SensitivityMeasure measure, int bits);
    /// Tooltip explaining a measure.
    static QString measureHelp(SensitivityMeasure measure);
    /// Display text of a value of a measure.
    static QString formatValue(SensitivityMeasure measure, double value);
    /// Whether larger values of a measure mean a more sensitive layer (false for SQNR).
    static bool largerIsWorse(SensitivityMeasure measure) { return measure != SensitivityMeasure::SqnrDb; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    SnapshotPtr m_snapshot;
    const std::vector<LayerSensitivity>* m_rows = nullptr; // inside m_snapshot
    QList<SensitivityColumn> m_columns;
    QHash<QString, int> m_rowOf;
};

} // namespace ql
