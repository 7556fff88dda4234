#include "modeltreemodel.h"

#include <QLocale>

#include <map>

namespace ql {

namespace {

QString shapeText(const LinearLayer& l)
{
    return QStringLiteral("%1 × %2").arg(l.outFeatures).arg(l.inFeatures);
}

// Parameter counts are read at a glance in the tree; the tooltip carries the exact number.
QString compactCount(int64_t n)
{
    const double v = double(n);
    if (n >= 1'000'000'000) return QString::number(v / 1e9, 'f', 2) + QStringLiteral(" B");
    if (n >= 1'000'000) return QString::number(v / 1e6, 'f', 2) + QStringLiteral(" M");
    if (n >= 1'000) return QString::number(v / 1e3, 'f', 1) + QStringLiteral(" K");
    return QString::number(n);
}

} // namespace

ModelTreeModel::ModelTreeModel(QObject* parent) : QAbstractItemModel(parent) {}

void ModelTreeModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_blocks.clear();
    m_layerPos.clear();
    if (m_snapshot) {
        // Blocks in ascending order, layers in model order within each.
        std::map<int, size_t> pos;
        for (const LinearLayer& l : m_snapshot->layers) pos.emplace(l.block, 0);
        for (auto& [number, p] : pos) {
            p = m_blocks.size();
            m_blocks.push_back(Block{number, 0, {}});
        }
        for (const LinearLayer& l : m_snapshot->layers) {
            Block& b = m_blocks[pos[l.block]];
            m_layerPos.insert(QString::fromStdString(l.name), {int(pos[l.block]), int(b.layers.size())});
            b.layers.push_back(&l);
            b.params += l.params();
        }
    }
    endResetModel();
}

QModelIndex ModelTreeModel::indexOfLayer(const QString& layer) const
{
    const auto it = m_layerPos.constFind(layer);
    if (it == m_layerPos.constEnd()) return {};
    return createIndex(it->second, 0, quintptr(it->first + 1));
}

QModelIndex ModelTreeModel::indexOfBlock(int block) const
{
    for (size_t i = 0; i < m_blocks.size(); ++i)
        if (m_blocks[i].number == block) return createIndex(int(i), 0, quintptr(0));
    return {};
}

QString ModelTreeModel::layerName(const QModelIndex& index) const
{
    const LinearLayer* l = layerAt(index);
    return l ? QString::fromStdString(l->name) : QString();
}

const LinearLayer* ModelTreeModel::layerAt(const QModelIndex& index) const
{
    if (!index.isValid() || index.model() != this || index.internalId() == 0) return nullptr;
    const size_t b = size_t(index.internalId() - 1);
    if (b >= m_blocks.size() || size_t(index.row()) >= m_blocks[b].layers.size()) return nullptr;
    return m_blocks[b].layers[size_t(index.row())];
}

QModelIndex ModelTreeModel::index(int row, int column, const QModelIndex& parent) const
{
    if (row < 0 || column < 0 || column >= ColumnCount) return {};
    if (!parent.isValid()) {
        if (size_t(row) >= m_blocks.size()) return {};
        return createIndex(row, column, quintptr(0));
    }
    // Only block rows have children.
    if (parent.internalId() != 0 || parent.column() != 0) return {};
    if (size_t(parent.row()) >= m_blocks.size()) return {};
    if (size_t(row) >= m_blocks[size_t(parent.row())].layers.size()) return {};
    return createIndex(row, column, quintptr(parent.row() + 1));
}

QModelIndex ModelTreeModel::parent(const QModelIndex& child) const
{
    if (!child.isValid() || child.internalId() == 0) return {};
    return createIndex(int(child.internalId() - 1), 0, quintptr(0));
}

int ModelTreeModel::rowCount(const QModelIndex& parent) const
{
    if (!parent.isValid()) return int(m_blocks.size());
    if (parent.internalId() != 0 || parent.column() != 0) return 0;
    if (size_t(parent.row()) >= m_blocks.size()) return 0;
    return int(m_blocks[size_t(parent.row())].layers.size());
}

int ModelTreeModel::columnCount(const QModelIndex&) const
{
    return ColumnCount;
}

QVariant ModelTreeModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.model() != this) return {};
    if (index.internalId() == 0) {
        if (size_t(index.row()) >= m_blocks.size()) return {};
        return blockData(m_blocks[size_t(index.row())], index.column(), role);
    }
    const LinearLayer* l = layerAt(index);
    return l ? layerData(*l, index.column(), role) : QVariant();
}

QVariant ModelTreeModel::blockData(const Block& block, int column, int role) const
{
    switch (role) {
    case Qt::DisplayRole:
        if (column == NameColumn) return tr("Block %1").arg(block.number);
        if (column == ParamsColumn) return compactCount(block.params);
        return {};
    case Qt::ToolTipRole:
        return tr("Block %1: %2 linear layers, %3 parameters")
            .arg(block.number)
            .arg(block.layers.size())
            .arg(QLocale().toString(qlonglong(block.params)));
    case Qt::TextAlignmentRole:
        if (column == ParamsColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::UserRole:
        if (column == NameColumn) return block.number;
        if (column == ParamsColumn) return qlonglong(block.params);
        return {};
    case LayerNameRole: return QString();
    case BlockRole: return block.number;
    default: return {};
    }
}

QVariant ModelTreeModel::layerData(const LinearLayer& l, int column, int role) const
{
    switch (role) {
    case Qt::DisplayRole:
        switch (column) {
        case NameColumn: return QString::fromLatin1(linearShortName(l.kind));
        case ShapeColumn: return shapeText(l);
        case ParamsColumn: return compactCount(l.params());
        case DTypeColumn: return QString::fromLatin1(dtypeName(l.dtype));
        default: return {};
        }
    case Qt::ToolTipRole:
        return tr("%1\nsite %2, %3 × %4%5, %6 parameters, stored as %7")
            .arg(QString::fromStdString(l.name), QString::fromStdString(l.site))
            .arg(l.outFeatures)
            .arg(l.inFeatures)
            .arg(l.hasBias ? tr(" + bias") : QString())
            .arg(QLocale().toString(qlonglong(l.params())))
            .arg(QString::fromLatin1(dtypeName(l.dtype)));
    case Qt::TextAlignmentRole:
        if (column == ShapeColumn || column == ParamsColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::UserRole:
        switch (column) {
        case NameColumn: return QString::fromStdString(l.name);
        case ShapeColumn: return qlonglong(l.outFeatures * l.inFeatures);
        case ParamsColumn: return qlonglong(l.params());
        case DTypeColumn: return QString::fromLatin1(dtypeName(l.dtype));
        default: return {};
        }
    case LayerNameRole: return QString::fromStdString(l.name);
    case BlockRole: return l.block;
    default: return {};
    }
}

QVariant ModelTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case NameColumn: return tr("Name");
        case ShapeColumn: return tr("Shape (out × in)");
        case ParamsColumn: return tr("Parameters");
        case DTypeColumn: return tr("DType");
        default: return {};
        }
    }
    if (role == Qt::ToolTipRole && section == DTypeColumn) return tr("Element type of the stored weights");
    return {};
}

} // namespace ql
