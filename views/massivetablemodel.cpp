#include "massivetablemodel.h"

namespace ql {

MassiveTableModel::MassiveTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void MassiveTableModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    endResetModel();
}

int MassiveTableModel::seqlen() const
{
    if (!m_snapshot) return 0;
    if (m_snapshot->seqlen > 0) return m_snapshot->seqlen;
    return m_snapshot->analysis ? m_snapshot->analysis->meta.seqlen : 0;
}

const MassiveActivation* MassiveTableModel::activation(int row) const
{
    if (!m_snapshot || !m_snapshot->analysis || row < 0 || size_t(row) >= m_snapshot->analysis->massive.size())
        return nullptr;
    return &m_snapshot->analysis->massive[size_t(row)];
}

int MassiveTableModel::rowCount(const QModelIndex& parent) const
{
    if (parent.isValid() || !m_snapshot || !m_snapshot->analysis) return 0;
    return int(m_snapshot->analysis->massive.size());
}

int MassiveTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant MassiveTableModel::data(const QModelIndex& index, int role) const
{
    const MassiveActivation* m = index.isValid() && !index.parent().isValid() ? activation(index.row()) : nullptr;
    if (!m || index.column() >= ColumnCount) return {};
    const int64_t len = seqlen();
    // Without a window length the whole calibration set is one sample.
    const int64_t sample = len > 0 ? m->token / len : 0;
    const int64_t position = len > 0 ? m->token % len : m->token;
    if (role == Qt::DisplayRole || role == RawRole) {
        const bool raw = role == RawRole;
        switch (index.column()) {
        case Layer: return raw ? QVariant(double(m->layer)) : QVariant(m->layer);
        case Sample: return raw ? QVariant(double(sample)) : QVariant(qlonglong(sample));
        case Position: return raw ? QVariant(double(position)) : QVariant(qlonglong(position));
        case Token: {
            const QString text = QString::fromStdString(m_snapshot->tokenText(m->tokenId));
            // Make whitespace pieces visible in the table; the raw role keeps the exact text.
            return raw ? text : text.isEmpty() ? QStringLiteral("∅") : QString(text).replace('\n', QStringLiteral("⏎"));
        }
        case Channel: return raw ? QVariant(double(m->channel)) : QVariant(m->channel);
        case Value: return raw ? QVariant(double(m->value)) : QVariant(QString::number(double(m->value), 'g', 6));
        }
    }
    if (role == Qt::ToolTipRole && index.column() == Token) return tr("token id %1").arg(m->tokenId);
    if (role == Qt::TextAlignmentRole && index.column() != Token) return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant MassiveTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation == Qt::Vertical) return QAbstractTableModel::headerData(section, orientation, role);
    if (section < 0 || section >= ColumnCount || role != Qt::DisplayRole) return {};
    switch (section) {
    case Layer: return tr("layer");
    case Sample: return tr("sample");
    case Position: return tr("position");
    case Token: return tr("token");
    case Channel: return tr("channel");
    case Value: return tr("value");
    }
    return {};
}

} // namespace ql
