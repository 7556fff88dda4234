#pragma once

#include "snapshot.h"

#include <QAbstractItemModel>
#include <QHash>

#include <vector>

namespace ql {

/// The model explorer's tree: decoder blocks, and under each its linear layers (model order),
/// with columns name, shape (out × in), parameters and stored dtype.
class ModelTreeModel : public QAbstractItemModel {
    Q_OBJECT
public:
    /// Columns of the tree.
    enum Column { NameColumn, ShapeColumn, ParamsColumn, DTypeColumn, ColumnCount };
    /// Extra roles: the HF module name of a layer row (empty for block rows) and raw numbers.
    enum Role {
        LayerNameRole = Qt::UserRole + 1, ///< QString, e.g. "model.layers.3.mlp.down_proj"
        BlockRole,                        ///< int, the block of a block or layer row
    };

    /// An empty tree.
    explicit ModelTreeModel(QObject* parent = nullptr);

    /// Rebuilds the tree from a snapshot's layer table (null: empty tree).
    void setSnapshot(SnapshotPtr snapshot);
    /// The snapshot shown (may be null).
    SnapshotPtr snapshot() const { return m_snapshot; }

    /// Index (column 0) of a layer by HF module name; invalid when the model has no such layer.
    QModelIndex indexOfLayer(const QString& layer) const;
    /// Index (column 0) of a block row; invalid when out of range.
    QModelIndex indexOfBlock(int block) const;
    /// HF module name of a layer row, empty for block rows and invalid indexes.
    QString layerName(const QModelIndex& index) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Block {
        int number = 0;
        int64_t params = 0;
        std::vector<const LinearLayer*> layers;
    };
    // A layer row carries (block position + 1) in its internal id; block rows carry 0, so the
    // parent of any index is known without a lookup.
    const LinearLayer* layerAt(const QModelIndex& index) const;
    QVariant blockData(const Block& block, int column, int role) const;
    QVariant layerData(const LinearLayer& layer, int column, int role) const;

    SnapshotPtr m_snapshot;
    std::vector<Block> m_blocks;
    QHash<QString, QPair<int, int>> m_layerPos; // module name → (block position, row)
};

} // namespace ql
