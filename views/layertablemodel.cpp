#include "layertablemodel.h"

#include "tableexport.h"

#include <QLocale>

namespace ql {

namespace {

struct ColumnInfo {
    const char* title;
    const char* help;
};

// Header and tooltip of each fixed column, in Column order.
constexpr ColumnInfo kColumns[LayerTableModel::FixedColumnCount] = {
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Layer"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Hugging Face module name")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Block"), QT_TRANSLATE_NOOP("ql::LayerTableModel", "Decoder block")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Kind"), QT_TRANSLATE_NOOP("ql::LayerTableModel", "Projection")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Shape"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Output × input features")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Params"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Parameters, bias included")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Act absmax"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Largest |x| of the activations entering the layer (its site)")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Act kurtosis"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel",
                       "Excess kurtosis of all activation values of the site (0 for a Gaussian)")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Energy H (bits)"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel",
                       "Entropy of the per-channel energy share E[x²] of the site (llama.cpp imatrix estimator)")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Value H (bits)"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Shannon entropy of the site's value histogram")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "Outlier ch."),
     QT_TRANSLATE_NOOP("ql::LayerTableModel",
                       "Input channels whose absmax exceeds the outlier threshold × the median channel absmax")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "W kurtosis"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Excess kurtosis of all weights of the layer")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "W > 3σ"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Share of weights further than 3 standard deviations from the mean")},
    {QT_TRANSLATE_NOOP("ql::LayerTableModel", "W absmax"),
     QT_TRANSLATE_NOOP("ql::LayerTableModel", "Largest per-row absmax of the weight, i.e. the weight's absmax")},
};

QString compactCount(qlonglong n)
{
    const double v = double(n);
    if (n >= 1'000'000'000) return QString::number(v / 1e9, 'f', 2) + QStringLiteral(" B");
    if (n >= 1'000'000) return QString::number(v / 1e6, 'f', 2) + QStringLiteral(" M");
    if (n >= 1'000) return QString::number(v / 1e3, 'f', 1) + QStringLiteral(" K");
    return QString::number(n);
}

// Statistics whose magnitude varies over orders across layers keep four significant digits.
QString significant(double v)
{
    return QString::number(v, 'g', 4);
}

} // namespace

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setSnapshot(SnapshotPtr snapshot)
{
    beginResetModel();
    m_snapshot = std::move(snapshot);
    m_rows.clear();
    m_rowOf.clear();
    m_sensColumns.clear();
    if (m_snapshot) {
        const AnalysisResult* a = m_snapshot->analysis.get();
        QHash<QString, const SiteStats*> sites;
        QHash<QString, const WeightStats*> weights;
        QHash<QString, const LayerSensitivity*> sens;
        if (a) {
            for (const SiteStats& s : a->sites) sites.insert(QString::fromStdString(s.name), &s);
            for (const WeightStats& w : a->weights) weights.insert(QString::fromStdString(w.name), &w);
            for (const LayerSensitivity& s : a->sensitivity) sens.insert(QString::fromStdString(s.name), &s);
            m_sensColumns = SensitivityModel::columnsFor(a->sensitivity);
        }
        m_rows.reserve(m_snapshot->layers.size());
        for (const LinearLayer& l : m_snapshot->layers) {
            const QString name = QString::fromStdString(l.name);
            m_rowOf.insert(name, int(m_rows.size()));
            m_rows.push_back(Row{&l, sites.value(QString::fromStdString(l.site)),
                                 weights.value(name + QStringLiteral(".weight")), sens.value(name)});
        }
    }
    endResetModel();
}

int LayerTableModel::rowOfLayer(const QString& layer) const
{
    return m_rowOf.value(layer, -1);
}

QString LayerTableModel::layerName(int row) const
{
    if (row < 0 || size_t(row) >= m_rows.size()) return {};
    return QString::fromStdString(m_rows[size_t(row)].layer->name);
}

int LayerTableModel::sensitivityColumn(SensitivityMeasure measure, int bits) const
{
    const qsizetype i = m_sensColumns.indexOf(SensitivityColumn{measure, bits});
    return i < 0 ? -1 : FixedColumnCount + int(i);
}

int LayerTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int LayerTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : FixedColumnCount + int(m_sensColumns.size());
}

QVariant LayerTableModel::rawValue(const Row& r, int column) const
{
    const LinearLayer& l = *r.layer;
    switch (column) {
    case NameColumn: return QString::fromStdString(l.name);
    case BlockColumn: return l.block;
    case KindColumn: return QString::fromLatin1(linearShortName(l.kind));
    case ShapeColumn: return qlonglong(l.outFeatures * l.inFeatures);
    case ParamsColumn: return qlonglong(l.params());
    case SiteAbsmaxColumn: return r.site ? QVariant(r.site->absmaxSite) : QVariant();
    case SiteKurtosisColumn: return r.site ? QVariant(r.site->kurtosisSite) : QVariant();
    case EnergyEntropyColumn: return r.site ? QVariant(r.site->energyEntropyBits) : QVariant();
    case ValueEntropyColumn: return r.site ? QVariant(r.site->valueEntropyBits) : QVariant();
    case OutlierChannelsColumn: return r.site ? QVariant(int(r.site->outlierChannels.size())) : QVariant();
    case WeightKurtosisColumn: return r.weight ? QVariant(r.weight->kurtosis) : QVariant();
    case WeightBeyond3SigmaColumn: return r.weight ? QVariant(r.weight->fracBeyond3Sigma) : QVariant();
    case WeightMaxRowAbsmaxColumn:
        // The weight's absmax is the largest of the stored row absmaxes; picking it is display, not estimation.
        return (r.weight && r.weight->rowAbsmax.size()) ? QVariant(double(r.weight->rowAbsmax.maxCoeff())) : QVariant();
    default: break;
    }
    const int s = column - FixedColumnCount;
    if (!r.sensitivity || s < 0 || s >= m_sensColumns.size()) return {};
    const SensitivityColumn& c = m_sensColumns[s];
    const std::optional<double> v = SensitivityModel::lookup(*r.sensitivity, c.measure, c.bits);
    return v ? QVariant(*v) : QVariant();
}

QString LayerTableModel::displayText(const Row& r, int column, const QVariant& raw) const
{
    if (!raw.isValid()) return QStringLiteral("–");
    switch (column) {
    case NameColumn:
    case KindColumn: return raw.toString();
    case BlockColumn:
    case OutlierChannelsColumn: return QString::number(raw.toLongLong());
    case ShapeColumn: return QStringLiteral("%1 × %2").arg(r.layer->outFeatures).arg(r.layer->inFeatures);
    case ParamsColumn: return compactCount(raw.toLongLong());
    case SiteKurtosisColumn:
    case WeightKurtosisColumn: return QString::number(raw.toDouble(), 'f', 2);
    case EnergyEntropyColumn:
    case ValueEntropyColumn: return QString::number(raw.toDouble(), 'f', 3);
    case WeightBeyond3SigmaColumn: return QString::number(raw.toDouble() * 100.0, 'f', 3) + QStringLiteral(" %");
    case SiteAbsmaxColumn:
    case WeightMaxRowAbsmaxColumn: return significant(raw.toDouble());
    default: break;
    }
    const int s = column - FixedColumnCount;
    if (s < 0 || s >= m_sensColumns.size()) return {};
    return SensitivityModel::formatValue(m_sensColumns[s].measure, raw.toDouble());
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || size_t(index.row()) >= m_rows.size() || index.column() >= columnCount()) return {};
    const Row& r = m_rows[size_t(index.row())];
    const int col = index.column();
    switch (role) {
    case Qt::DisplayRole: return displayText(r, col, rawValue(r, col));
    case Qt::UserRole: return rawValue(r, col);
    case LayerNameRole: return QString::fromStdString(r.layer->name);
    case TableExport::CsvRole: {
        // Missing statistics export as empty fields, the shape as "out × in" rather than its product.
        const QVariant raw = rawValue(r, col);
        if (!raw.isValid()) return QString();
        if (col == ShapeColumn) return displayText(r, col, raw);
        return {};
    }
    case Qt::TextAlignmentRole:
        if (col == NameColumn || col == KindColumn) return QVariant(Qt::AlignLeft | Qt::AlignVCenter);
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ToolTipRole:
        if (col == NameColumn)
            return tr("%1\nsite %2").arg(QString::fromStdString(r.layer->name), QString::fromStdString(r.layer->site));
        if (col == ParamsColumn) return QLocale().toString(qlonglong(r.layer->params()));
        if (col == OutlierChannelsColumn && r.site && !r.site->outlierChannels.empty()) {
            // The first channels are enough to recognise the usual suspects.
            QStringList ids;
            for (size_t i = 0; i < r.site->outlierChannels.size() && i < 16; ++i)
                ids << QString::number(r.site->outlierChannels[i]);
            if (r.site->outlierChannels.size() > 16) ids << QStringLiteral("…");
            return tr("Channels %1 (threshold %2 × median absmax)")
                .arg(ids.join(QStringLiteral(", ")))
                .arg(r.site->outlierThreshold);
        }
        return {};
    default: return {};
    }
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= columnCount()) return {};
    if (section < FixedColumnCount) {
        if (role == Qt::DisplayRole) return tr(kColumns[section].title);
        if (role == Qt::ToolTipRole) return tr(kColumns[section].help);
        return {};
    }
    const SensitivityColumn& c = m_sensColumns[section - FixedColumnCount];
    if (role == Qt::DisplayRole) return SensitivityModel::columnTitle(c.measure, c.bits);
    if (role == Qt::ToolTipRole) return SensitivityModel::measureHelp(c.measure);
    return {};
}

} // namespace ql
