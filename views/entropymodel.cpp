#include "entropymodel.h"

#include "selection.h"
#include "tableexport.h"

#include <cmath>

namespace ql {

EntropyModel::EntropyModel(QObject* parent) : QAbstractTableModel(parent) {}

void EntropyModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_sites = (m_snapshot && m_snapshot->analysis) ? &m_snapshot->analysis->sites : nullptr;
    m_rowOf.clear();
    m_kinds.clear();
    if (m_sites) {
        for (size_t i = 0; i < m_sites->size(); ++i) {
            const QString name = QString::fromStdString((*m_sites)[i].name);
            m_rowOf.insert(name, int(i));
            if (!m_kinds.contains(kindOf(name))) m_kinds << kindOf(name);
        }
    }
    endResetModel();
}

int EntropyModel::rowOfSite(const QString& site) const
{
    return m_rowOf.value(site, -1);
}

QString EntropyModel::siteName(int row) const
{
    const SiteStats* s = siteStats(row);
    return s ? QString::fromStdString(s->name) : QString();
}

const SiteStats* EntropyModel::siteStats(int row) const
{
    if (!m_sites || row < 0 || size_t(row) >= m_sites->size()) return nullptr;
    return &(*m_sites)[size_t(row)];
}

int EntropyModel::rowCount(const QModelIndex& parent) const
{
    return (parent.isValid() || !m_sites) ? 0 : int(m_sites->size());
}

int EntropyModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant EntropyModel::rawValue(const SiteStats& s, int column) const
{
    const QString name = QString::fromStdString(s.name);
    const qlonglong channels = qlonglong(s.absmax.size());
    switch (column) {
    case SiteColumn: return name;
    case BlockColumn: {
        // Sites name their block; the stored layer field is the fallback for unusual names.
        const int b = Selection::blockOf(name);
        return b >= 0 ? b : s.layer;
    }
    case KindColumn: return kindOf(name);
    case ChannelsColumn: return channels > 0 ? QVariant(channels) : QVariant();
    case EnergyEntropyColumn: return s.energyEntropyBits;
    case ValueEntropyColumn: return s.valueEntropyBits;
    case NormalisedEnergyColumn:
        // Display mapping of stored numbers: the maximum energy entropy over n channels is log2(n).
        if (channels < 2) return {};
        return s.energyEntropyBits / std::log2(double(channels));
    default: return {};
    }
}

QVariant EntropyModel::data(const QModelIndex& index, int role) const
{
    const SiteStats* s = index.isValid() ? siteStats(index.row()) : nullptr;
    if (!s || index.column() >= ColumnCount) return {};
    const int col = index.column();
    switch (role) {
    case Qt::DisplayRole: {
        const QVariant v = rawValue(*s, col);
        if (!v.isValid()) return QStringLiteral("–");
        switch (col) {
        case SiteColumn:
        case KindColumn: return v.toString();
        case BlockColumn:
        case ChannelsColumn: return QString::number(v.toLongLong());
        case NormalisedEnergyColumn: return QString::number(v.toDouble(), 'f', 3);
        default: return QString::number(v.toDouble(), 'f', 3);
        }
    }
    case Qt::UserRole: return rawValue(*s, col);
    case TableExport::CsvRole: return rawValue(*s, col).isValid() ? QVariant() : QVariant(QString()); // missing: empty
    case SiteNameRole: return QString::fromStdString(s->name);
    case Qt::TextAlignmentRole:
        if (col == SiteColumn || col == KindColumn) return QVariant(Qt::AlignLeft | Qt::AlignVCenter);
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ToolTipRole:
        if (col == EnergyEntropyColumn || col == ValueEntropyColumn)
            return QString::number(rawValue(*s, col).toDouble(), 'g', 8);
        return {};
    default: return {};
    }
}

QVariant EntropyModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case SiteColumn: return tr("Site");
        case BlockColumn: return tr("Block");
        case KindColumn: return tr("Kind");
        case ChannelsColumn: return tr("Channels");
        case EnergyEntropyColumn: return tr("Energy H (bits)");
        case ValueEntropyColumn: return tr("Value H (bits)");
        case NormalisedEnergyColumn: return tr("Energy H / log₂ ch");
        default: return {};
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case EnergyEntropyColumn:
            return tr("Entropy of the channel energy shares p_c = E[x_c²] / Σ E[x_k²] (llama.cpp imatrix estimator)");
        case ValueEntropyColumn: return tr("Shannon entropy of the site's value histogram");
        case NormalisedEnergyColumn:
            return tr("Energy entropy divided by its maximum log₂(channels): 1 = energy spread evenly over "
                      "channels, near 0 = a few channels carry it");
        default: return {};
        }
    }
    return {};
}

} // namespace ql
