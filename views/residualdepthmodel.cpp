#include "residualdepthmodel.h"

#include <algorithm>
#include <limits>

namespace ql {

ResidualDepthModel::ResidualDepthModel(QObject* parent) : QAbstractTableModel(parent) {}

void ResidualDepthModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_rows.clear();
    if (m_snapshot && m_snapshot->analysis) {
        for (const ResidualStats& r : m_snapshot->analysis->residuals) m_rows.push_back(&r);
        std::stable_sort(m_rows.begin(), m_rows.end(),
                         [](const ResidualStats* a, const ResidualStats* b) { return a->layer < b->layer; });
    }
    endResetModel();
}

double ResidualDepthModel::value(int row, int column) const
{
    if (row < 0 || size_t(row) >= m_rows.size()) return std::numeric_limits<double>::quiet_NaN();
    const ResidualStats& r = *m_rows[size_t(row)];
    switch (column) {
    case Block: return r.layer;
    case Top1: return r.top3[0];
    case Top2: return r.top3[1];
    case Top3: return r.top3[2];
    case Median: return r.medianAbs;
    default: return std::numeric_limits<double>::quiet_NaN();
    }
}

int ResidualDepthModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int ResidualDepthModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ResidualDepthModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.parent().isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const double v = value(index.row(), index.column());
    switch (role) {
    case Qt::DisplayRole:
        if (index.column() == Block) return m_rows[size_t(index.row())]->layer;
        return QString::number(v, 'g', 5);
    case RawRole: return v;
    case Qt::TextAlignmentRole: return int(Qt::AlignRight | Qt::AlignVCenter);
    default: return {};
    }
}

QVariant ResidualDepthModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Vertical) return QAbstractTableModel::headerData(section, orientation, role);
    if (section < 0 || section >= ColumnCount) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Block: return tr("block");
        case Top1: return tr("top-1 |a|");
        case Top2: return tr("top-2 |a|");
        case Top3: return tr("top-3 |a|");
        case Median: return tr("median |a|");
        }
    }
    if (role == Qt::ToolTipRole) {
        if (section == Median) return tr("median over tokens of each token's median |a| across channels");
        if (section != Block) return tr("largest |a| of the residual stream after the block, all tokens and channels");
    }
    return {};
}

} // namespace ql
