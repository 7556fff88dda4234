#include "plantablemodel.h"

#include "quantlens/quant/formats.h"

#include <cmath>

namespace ql {

namespace {

bool isIntFormat(const std::string& id)
{
    auto f = findFormat(id);
    return f && ((*f)->kind == FormatKind::IntSym || (*f)->kind == FormatKind::IntAsym);
}

QString groupText(const FormatSpec& f)
{
    switch (f.granularity) {
    case Granularity::PerTensor: return QStringLiteral("per_tensor");
    case Granularity::PerChannel: return QStringLiteral("per_channel");
    case Granularity::PerGroup: return QString::number(f.groupSize);
    }
    return {};
}

QString channelsText(const std::vector<ChannelOverride>& channels)
{
    QStringList parts;
    for (const ChannelOverride& c : channels) {
        const QString which = c.selector.empty() ? QStringLiteral("%1 ch").arg(c.channels.size())
                                                 : QStringLiteral("top %1%").arg(c.selectorValue);
        parts << which + QStringLiteral(" → ") + QString::fromStdString(c.weight.format);
    }
    return parts.join(QStringLiteral("; "));
}

} // namespace

PlanTableModel::PlanTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void PlanTableModel::setPlan(PlanSnapshotPtr plan)
{
    const bool sameRows = m_plan && plan && m_plan->rows.size() == plan->rows.size() &&
                          std::equal(m_plan->rows.begin(), m_plan->rows.end(), plan->rows.begin(),
                                     [](const PlanRow& a, const PlanRow& b) { return a.layer == b.layer; });
    if (sameRows) {
        m_plan = std::move(plan);
        if (!m_plan->rows.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
        return;
    }
    beginResetModel();
    m_plan = std::move(plan);
    m_rowOf.clear();
    if (m_plan)
        for (size_t i = 0; i < m_plan->rows.size(); ++i)
            m_rowOf.insert(QString::fromStdString(m_plan->rows[i].layer), int(i));
    endResetModel();
}

int PlanTableModel::rowOfLayer(const QString& layer) const
{
    return m_rowOf.value(layer, -1);
}

QString PlanTableModel::layerName(int row) const
{
    if (!m_plan || row < 0 || size_t(row) >= m_plan->rows.size()) return {};
    return QString::fromStdString(m_plan->rows[size_t(row)].layer);
}

QString PlanTableModel::editKey(int column)
{
    switch (column) {
    case MethodColumn: return QStringLiteral("method");
    case FormatColumn: return QStringLiteral("format");
    case BitsColumn: return QStringLiteral("bits");
    case SymColumn: return QStringLiteral("sym");
    case GroupColumn: return QStringLiteral("group");
    default: return {};
    }
}

int PlanTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() || !m_plan ? 0 : int(m_plan->rows.size());
}

int PlanTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant PlanTableModel::rawValue(const PlanRow& row, int column) const
{
    const QuantSpec& s = row.spec;
    const bool quantized = !s.skip;
    switch (column) {
    case LayerColumn: return QString::fromStdString(row.layer);
    case MethodColumn: return quantized ? QString::fromStdString(s.method) : QStringLiteral("float");
    case FormatColumn: return quantized ? QString::fromStdString(s.weight.format) : QVariant();
    case BitsColumn: {
        auto f = findFormat(s.weight.format);
        return quantized && f ? QVariant(int((*f)->bits)) : QVariant();
    }
    case SymColumn: {
        auto f = findFormat(s.weight.format);
        return quantized && isIntFormat(s.weight.format) ? QVariant((*f)->kind == FormatKind::IntSym) : QVariant();
    }
    case GroupColumn: return quantized ? groupText(s.weight) : QVariant();
    case ActBitsColumn: return quantized ? s.activations.bits : 0;
    case ChannelsColumn: return quantized ? channelsText(s.channels) : QString();
    case BitsPerWeightColumn: return row.report ? row.report->bitsPerWeight : row.plannedBits;
    case WeightErrorColumn: return row.report ? QVariant(row.report->weightRelError) : QVariant();
    case OutputErrorColumn:
        return row.report && row.report->outputRelMse ? QVariant(*row.report->outputRelMse) : QVariant();
    case SqnrColumn:
        return row.report && row.report->outputRelMse && *row.report->outputRelMse > 0
                   ? QVariant(-10.0 * std::log10(*row.report->outputRelMse))
                   : QVariant();
    case SourceColumn: return QString::fromStdString(row.source);
    default: return {};
    }
}

QVariant PlanTableModel::data(const QModelIndex& index, int role) const
{
    if (!m_plan || !index.isValid() || size_t(index.row()) >= m_plan->rows.size()) return {};
    const PlanRow& row = m_plan->rows[size_t(index.row())];
    if (role == LayerNameRole) return QString::fromStdString(row.layer);
    const QVariant raw = rawValue(row, index.column());
    if (role == Qt::UserRole || role == Qt::EditRole) return raw;
    if (role == Qt::ToolTipRole && index.column() == BitsPerWeightColumn)
        return row.report ? tr("Measured by the last run of this layer's spec")
                          : tr("Planned from the spec (codes, scales, zeros, salient columns); a run measures it");
    if (role == Qt::TextAlignmentRole && index.column() >= BitsPerWeightColumn && index.column() <= SqnrColumn)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role != Qt::DisplayRole) return {};
    if (!raw.isValid()) return QStringLiteral("–");
    switch (index.column()) {
    case SymColumn: return raw.toBool() ? tr("sym") : tr("asym");
    case ActBitsColumn: return raw.toInt() == 0 ? QStringLiteral("–") : raw.toString();
    case BitsPerWeightColumn:
        return (row.report ? QString() : QStringLiteral("≈ ")) + QString::number(raw.toDouble(), 'f', 3);
    case WeightErrorColumn:
    case OutputErrorColumn: return QString::number(raw.toDouble(), 'e', 3);
    case SqnrColumn: return QString::number(raw.toDouble(), 'f', 2);
    default: return raw.toString();
    }
}

QVariant PlanTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    switch (section) {
    case LayerColumn: return tr("Layer");
    case MethodColumn: return tr("Method");
    case FormatColumn: return tr("Format");
    case BitsColumn: return tr("Bits");
    case SymColumn: return tr("Sym");
    case GroupColumn: return tr("Group");
    case ActBitsColumn: return tr("Act bits");
    case ChannelsColumn: return tr("Salient channels");
    case BitsPerWeightColumn: return tr("Bits/weight");
    case WeightErrorColumn: return tr("Weight error");
    case OutputErrorColumn: return tr("Hessian proxy");
    case SqnrColumn: return tr("SQNR dB");
    case SourceColumn: return tr("Source");
    default: return {};
    }
}

Qt::ItemFlags PlanTableModel::flags(const QModelIndex& index) const
{
    Qt::ItemFlags f = QAbstractTableModel::flags(index);
    if (!m_plan || !index.isValid() || editKey(index.column()).isEmpty()) return f;
    const PlanRow& row = m_plan->rows[size_t(index.row())];
    // A float layer's only edit is its method: back to the rule's (float=false in the skip list).
    if (row.spec.skip) return index.column() == MethodColumn ? f | Qt::ItemIsEditable : f;
    const bool isInt = isIntFormat(row.spec.weight.format);
    if ((index.column() == BitsColumn || index.column() == SymColumn) && !isInt) return f;
    return f | Qt::ItemIsEditable;
}

bool PlanTableModel::setData(const QModelIndex& index, const QVariant& value, int role)
{
    if (role != Qt::EditRole || !(flags(index) & Qt::ItemIsEditable)) return false;
    QString text = value.typeId() == QMetaType::Bool
                       ? (value.toBool() ? QStringLiteral("true") : QStringLiteral("false"))
                       : value.toString();
    if (text.isEmpty() || text == data(index, Qt::EditRole).toString()) return false;
    // "float" keeps the layer unquantized; another method for a float layer takes it out of the skip list.
    const bool floatRow = m_plan->rows[size_t(index.row())].spec.skip;
    if (index.column() == MethodColumn && (text == QLatin1String("float") || floatRow))
        emit editRequested(layerName(index.row()), QStringLiteral("float"),
                           text == QLatin1String("float") ? QStringLiteral("true") : QStringLiteral("false"));
    else
        emit editRequested(layerName(index.row()), editKey(index.column()), text);
    return true;
}

} // namespace ql
