#include "sensitivitymodel.h"

#include "selection.h"
#include "tableexport.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace ql {

namespace {

constexpr SensitivityMeasure kAllMeasures[] = {SensitivityMeasure::Proxy,  SensitivityMeasure::RelMse,
                                               SensitivityMeasure::SqnrDb, SensitivityMeasure::Kl,
                                               SensitivityMeasure::Fisher, SensitivityMeasure::FisherOut};

const std::vector<double>& valuesOf(const LayerSensitivity& s, SensitivityMeasure m)
{
    switch (m) {
    case SensitivityMeasure::Proxy: return s.proxy;
    case SensitivityMeasure::RelMse: return s.relMse;
    case SensitivityMeasure::SqnrDb: return s.sqnrDb;
    case SensitivityMeasure::Kl: return s.kl;
    case SensitivityMeasure::Fisher: return s.fisher;
    case SensitivityMeasure::FisherOut: return s.fisherOut;
    }
    return s.proxy;
}

} // namespace

SensitivityModel::SensitivityModel(QObject* parent) : QAbstractTableModel(parent) {}

std::optional<double> SensitivityModel::lookup(const LayerSensitivity& s, SensitivityMeasure measure, int bits)
{
    const auto it = std::find(s.bits.begin(), s.bits.end(), bits);
    if (it == s.bits.end()) return std::nullopt;
    const size_t i = size_t(it - s.bits.begin());
    const std::vector<double>& v = valuesOf(s, measure);
    // A vector shorter than bits means the measure was not computed at that width.
    if (i >= v.size() || std::isnan(v[i])) return std::nullopt;
    return v[i];
}

QList<SensitivityColumn> SensitivityModel::columnsFor(const std::vector<LayerSensitivity>& table)
{
    QList<SensitivityColumn> cols;
    for (SensitivityMeasure m : kAllMeasures) {
        std::set<int> widths;
        for (const LayerSensitivity& s : table)
            for (int b : s.bits)
                if (lookup(s, m, b)) widths.insert(b);
        for (int b : widths) cols.append({m, b});
    }
    return cols;
}

void SensitivityModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_rows = (m_snapshot && m_snapshot->analysis) ? &m_snapshot->analysis->sensitivity : nullptr;
    m_columns = m_rows ? columnsFor(*m_rows) : QList<SensitivityColumn>();
    m_rowOf.clear();
    if (m_rows)
        for (size_t i = 0; i < m_rows->size(); ++i) m_rowOf.insert(QString::fromStdString((*m_rows)[i].name), int(i));
    endResetModel();
}

QList<SensitivityMeasure> SensitivityModel::measures() const
{
    QList<SensitivityMeasure> out;
    for (const SensitivityColumn& c : m_columns)
        if (!out.contains(c.measure)) out.append(c.measure);
    return out;
}

QList<int> SensitivityModel::widths() const
{
    QList<int> out;
    for (const SensitivityColumn& c : m_columns)
        if (!out.contains(c.bits)) out.append(c.bits);
    std::sort(out.begin(), out.end());
    return out;
}

int SensitivityModel::columnOf(SensitivityMeasure measure, int bits) const
{
    const qsizetype i = m_columns.indexOf(SensitivityColumn{measure, bits});
    return i < 0 ? -1 : FixedColumnCount + int(i);
}

int SensitivityModel::rowOfLayer(const QString& layer) const
{
    return m_rowOf.value(layer, -1);
}

QString SensitivityModel::layerName(int row) const
{
    if (!m_rows || row < 0 || size_t(row) >= m_rows->size()) return {};
    return QString::fromStdString((*m_rows)[size_t(row)].name);
}

std::optional<double> SensitivityModel::value(int row, SensitivityMeasure measure, int bits) const
{
    if (!m_rows || row < 0 || size_t(row) >= m_rows->size()) return std::nullopt;
    return lookup((*m_rows)[size_t(row)], measure, bits);
}

bool SensitivityModel::hasKl() const
{
    return measures().contains(SensitivityMeasure::Kl);
}

QString SensitivityModel::measureName(SensitivityMeasure measure)
{
    switch (measure) {
    case SensitivityMeasure::Proxy: return tr("Hessian proxy");
    case SensitivityMeasure::RelMse: return tr("Relative output MSE");
    case SensitivityMeasure::SqnrDb: return tr("SQNR (dB)");
    case SensitivityMeasure::Kl: return tr("End-to-end KL");
    case SensitivityMeasure::Fisher: return tr("Fisher");
    case SensitivityMeasure::FisherOut: return tr("Output Fisher");
    }
    return {};
}

QString SensitivityModel::columnTitle(SensitivityMeasure measure, int bits)
{
    switch (measure) {
    case SensitivityMeasure::Proxy: return tr("proxy @%1").arg(bits);
    case SensitivityMeasure::RelMse: return tr("rel MSE @%1").arg(bits);
    case SensitivityMeasure::SqnrDb: return tr("SQNR @%1 (dB)").arg(bits);
    case SensitivityMeasure::Kl: return tr("KL @%1").arg(bits);
    case SensitivityMeasure::Fisher: return tr("Fisher @%1").arg(bits);
    case SensitivityMeasure::FisherOut: return tr("out Fisher @%1").arg(bits);
    }
    return {};
}

QString SensitivityModel::measureHelp(SensitivityMeasure measure)
{
    switch (measure) {
    case SensitivityMeasure::Proxy:
        return tr("Hessian proxy tr(ΔW H ΔWᵀ) / tokens of round-to-nearest at this width (higher: more sensitive)");
    case SensitivityMeasure::RelMse:
        return tr("Relative output MSE ‖Y − Ŷ‖² / ‖Y‖² on the calibration inputs (higher: more sensitive)");
    case SensitivityMeasure::SqnrDb:
        return tr("Signal-to-quantization-noise ratio of the layer output in dB (lower: more sensitive)");
    case SensitivityMeasure::Kl:
        return tr("KL divergence of the model's next-token distribution from the float model's when only this "
                  "layer is quantized, on held-out windows (higher: more sensitive)");
    case SensitivityMeasure::Fisher:
        return tr("½·Σ F·ΔW² with F the diagonal empirical Fisher of the language-model loss per weight, from a "
                  "backward sweep over the calibration windows (nats per token; higher: more sensitive)");
    case SensitivityMeasure::FisherOut:
        return tr("½·Σ F_out·(ΔW H ΔWᵀ)_ii / tokens with F_out the Fisher of each output of the layer: the "
                  "Fisher-weighted output error (nats per token; higher: more sensitive)");
    }
    return {};
}

QString SensitivityModel::formatValue(SensitivityMeasure measure, double value)
{
    if (measure == SensitivityMeasure::SqnrDb) return QString::number(value, 'f', 1);
    // The other measures span orders of magnitude across layers: significant digits, not decimals.
    return QString::number(value, 'g', 4);
}

int SensitivityModel::rowCount(const QModelIndex& parent) const
{
    return (parent.isValid() || !m_rows) ? 0 : int(m_rows->size());
}

int SensitivityModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : FixedColumnCount + int(m_columns.size());
}

QVariant SensitivityModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || !m_rows || size_t(index.row()) >= m_rows->size()) return {};
    const LayerSensitivity& s = (*m_rows)[size_t(index.row())];
    const QString name = QString::fromStdString(s.name);
    if (role == LayerNameRole) return name;
    const int col = index.column();
    if (col < FixedColumnCount) {
        switch (role) {
        case Qt::DisplayRole:
            if (col == LayerColumn) return name;
            if (col == BlockColumn) return Selection::blockOf(name);
            return name.section('.', -1);
        case Qt::UserRole:
            if (col == BlockColumn) return Selection::blockOf(name);
            return data(index, Qt::DisplayRole);
        case Qt::TextAlignmentRole:
            if (col == BlockColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
            return {};
        default: return {};
        }
    }
    if (col - FixedColumnCount >= m_columns.size()) return {};
    const SensitivityColumn& c = m_columns[col - FixedColumnCount];
    const std::optional<double> v = lookup(s, c.measure, c.bits);
    switch (role) {
    case Qt::DisplayRole: return v ? formatValue(c.measure, *v) : QStringLiteral("–");
    case Qt::UserRole: return v ? QVariant(*v) : QVariant();
    case TableExport::CsvRole: return v ? QVariant() : QVariant(QString()); // missing: empty field
    case Qt::ToolTipRole: return v ? QString::number(*v, 'g', 8) : tr("not computed");
    case Qt::TextAlignmentRole: return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    default: return {};
    }
}

QVariant SensitivityModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= columnCount()) return {};
    if (section < FixedColumnCount) {
        if (role != Qt::DisplayRole) return {};
        if (section == LayerColumn) return tr("Layer");
        if (section == BlockColumn) return tr("Block");
        return tr("Kind");
    }
    const SensitivityColumn& c = m_columns[section - FixedColumnCount];
    if (role == Qt::DisplayRole) return columnTitle(c.measure, c.bits);
    if (role == Qt::ToolTipRole) return measureHelp(c.measure);
    return {};
}

} // namespace ql
