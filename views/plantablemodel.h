#pragma once

#include "plansnapshot.h"

#include <QAbstractTableModel>
#include <QHash>

namespace ql {

/// The plan table: one row per linear layer (model order) with its resolved method, format,
/// bits, symmetry, group, activation bits, salient channels and source, the bits it stores, and
/// the last run's error columns. Editing a cell does not change the table: it asks for the
/// edit (editRequested), and the new plan comes back as a snapshot. Qt::UserRole is the raw
/// value (for sorting and delegates).
class PlanTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        LayerColumn,
        MethodColumn,        ///< editable: a method id
        FormatColumn,        ///< editable: a format id
        BitsColumn,          ///< editable: integer bits (integer formats)
        SymColumn,           ///< editable: symmetric (integer formats)
        GroupColumn,         ///< editable: group size, "per_channel" or "per_tensor"
        BitsPerWeightColumn, ///< measured when the last run had this spec, else planned (marked ≈)
        WeightErrorColumn,   ///< ||ΔW||²/||W||² of the last run
        OutputErrorColumn,   ///< the Hessian proxy: ||ΔW X||²/||W X||²
        SqnrColumn,          ///< output SQNR in dB, −10·log10 of the proxy
        ActBitsColumn,       ///< activation bits (0: float)
        ChannelsColumn,      ///< salient channel overrides, summarised
        SourceColumn,
        ColumnCount
    };
    /// HF module name of a row, for any column.
    static constexpr int LayerNameRole = Qt::UserRole + 1;

    /// An empty table.
    explicit PlanTableModel(QObject* parent = nullptr);

    /// Shows a plan; rows keep their place when the layers are the same, so selections survive.
    void setPlan(PlanSnapshotPtr plan);
    /// The plan shown (may be null).
    PlanSnapshotPtr plan() const { return m_plan; }
    /// Row of a layer, -1 when absent.
    int rowOfLayer(const QString& layer) const;
    /// Layer of a row.
    QString layerName(int row) const;
    /// The edit key of an editable column ("method", "format", "bits", "sym", "group"), else "".
    static QString editKey(int column);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    /// Emits editRequested for an editable cell; the table itself changes with the next plan.
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

signals:
    /// The user set `key` of `layer` to `value` (edit text form, e.g. "3", "true", "gptq").
    void editRequested(const QString& layer, const QString& key, const QString& value);

private:
    QVariant rawValue(const PlanRow& row, int column) const;

    PlanSnapshotPtr m_plan;
    QHash<QString, int> m_rowOf;
};

} // namespace ql
