#include "depthmodel.h"

#include "quantlens/forward/site.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ql {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

DepthModel::DepthModel(QObject* parent) : QAbstractTableModel(parent) {}

QString DepthModel::siteKind(int column)
{
    switch (column) {
    case AttnIn: return QString::fromLatin1(pointName(BlockPoint::AttnIn));
    case OIn: return QString::fromLatin1(pointName(BlockPoint::OIn));
    case MlpIn: return QString::fromLatin1(pointName(BlockPoint::MlpIn));
    case DownIn: return QString::fromLatin1(pointName(BlockPoint::DownIn));
    default: return {};
    }
}

void DepthModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_rows.clear();
    if (m_snapshot && m_snapshot->analysis) {
        int blocks = m_snapshot->blocks;
        for (const SiteStats& s : m_snapshot->analysis->sites) blocks = std::max(blocks, s.layer + 1);
        m_rows.assign(size_t(std::max(0, blocks)), {kNaN, kNaN, kNaN, kNaN});
        // Index the sites by (layer, kind) once; the name's suffix is the kind.
        for (const SiteStats& s : m_snapshot->analysis->sites) {
            if (s.layer < 0) continue;
            const QString kind = QString::fromStdString(s.name).section('.', -1);
            for (int c = AttnIn; c <= DownIn; ++c)
                if (kind == siteKind(c)) m_rows[size_t(s.layer)][size_t(c - AttnIn)] = s.absmaxSite;
        }
    }
    endResetModel();
}

double DepthModel::value(int block, int column) const
{
    if (block < 0 || size_t(block) >= m_rows.size() || column < AttnIn || column > DownIn) return kNaN;
    return m_rows[size_t(block)][size_t(column - AttnIn)];
}

int DepthModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int DepthModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant DepthModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.parent().isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const int col = index.column();
    const double v = col == Block ? double(index.row()) : value(index.row(), col);
    switch (role) {
    case Qt::DisplayRole:
        if (col == Block) return index.row();
        return std::isnan(v) ? QString() : QString::number(v, 'g', 5);
    case RawRole: return v;
    case Qt::TextAlignmentRole: return int(Qt::AlignRight | Qt::AlignVCenter);
    default: return {};
    }
}

QVariant DepthModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Vertical) return QAbstractTableModel::headerData(section, orientation, role);
    if (section < 0 || section >= ColumnCount) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Block: return tr("block");
        case AttnIn: return tr("q/k/v in");
        case OIn: return tr("o_proj in");
        case MlpIn: return tr("gate/up in");
        case DownIn: return tr("down_proj in");
        }
    }
    if (role == Qt::ToolTipRole && section != Block) return tr("max |x| of site layers.<i>.%1").arg(siteKind(section));
    return {};
}

} // namespace ql
