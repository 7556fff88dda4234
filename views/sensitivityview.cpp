#include "sensitivityview.h"

#include "chartpanel.h"
#include "klscatter.h"
#include "selection.h"
#include "tableexport.h"
#include "viewlayout.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLocale>
#include <QLogValueAxis>
#include <QScopedValueRollback>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// Axis range for a log axis: whole decades around the data.
QPair<double, double> decades(double lo, double hi)
{
    return {std::pow(10.0, std::floor(std::log10(lo))), std::pow(10.0, std::ceil(std::log10(hi)))};
}

} // namespace

SensitivityView::SensitivityView(Selection* selection, QWidget* parent)
    : AnalysisPage(parent), m_selection(selection), m_model(new SensitivityModel(this)),
      m_proxy(new QSortFilterProxyModel(this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(Qt::UserRole);

    m_placeholder = detail::makePlaceholder(this, 24);
    auto* page = new QWidget(this);

    m_measureCombo = new QComboBox(page);
    m_widthCombo = new QComboBox(page);
    m_scatterCombo = new QComboBox(page);
    m_scatterCombo->addItem(SensitivityModel::measureName(SensitivityMeasure::Proxy), int(SensitivityMeasure::Proxy));
    m_scatterCombo->addItem(SensitivityModel::measureName(SensitivityMeasure::RelMse), int(SensitivityMeasure::RelMse));
    m_scatterCombo->addItem(SensitivityModel::measureName(SensitivityMeasure::Fisher), int(SensitivityMeasure::Fisher));
    m_scatterCombo->addItem(SensitivityModel::measureName(SensitivityMeasure::FisherOut),
                            int(SensitivityMeasure::FisherOut));
    m_logCheck = new QCheckBox(tr("Log scale"), page);
    m_logCheck->setChecked(true); // the measures span orders of magnitude across layers
    m_logCheck->setToolTip(tr("Logarithmic value axis (not for SQNR, which is already in dB)"));

    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Measure:"), page));
    controls->addWidget(m_measureCombo);
    controls->addSpacing(8);
    controls->addWidget(new QLabel(tr("Width:"), page));
    controls->addWidget(m_widthCombo);
    controls->addSpacing(8);
    controls->addWidget(m_logCheck);
    controls->addStretch(1);
    controls->addWidget(new QLabel(tr("Against KL:"), page));
    controls->addWidget(m_scatterCombo);

    m_barPanel = new ChartPanel(tr("Sensitivity per layer"), page);
    m_scatter = new KlScatter(selection, page);

    m_table = detail::makeRowTable(m_proxy, page);

    // The bars get the larger share.
    auto* charts = detail::makeSplitter(Qt::Horizontal, m_barPanel, m_scatter, 3, 2, {3000, 2000}, page);
    auto* split = detail::makeSplitter(Qt::Vertical, charts, m_table, 3, 2, {3000, 2000}, page);
    split->setChildrenCollapsible(false);
    detail::layOutPage(page, controls, split);
    m_stack = detail::makePlaceholderStack(this, m_placeholder, page);

    m_tableExport = std::make_unique<TableExport>(tr("Sensitivity table"), m_table);
    m_barPanel->setCsvSource([this] { return barCsv(); });

    connect(m_measureCombo, &QComboBox::currentIndexChanged, this, [this] {
        fillWidthCombo();
        rebuildBars();
        rebuildScatter();
    });
    connect(m_widthCombo, &QComboBox::currentIndexChanged, this, [this] {
        rebuildBars();
        rebuildScatter();
    });
    connect(m_logCheck, &QCheckBox::toggled, this, [this] { rebuildBars(); });
    connect(m_scatterCombo, &QComboBox::currentIndexChanged, this, [this] { rebuildScatter(); });
    connect(m_table, &QTableView::clicked, this, &SensitivityView::selectFromTable);
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            &SensitivityView::selectFromTable);
    if (m_selection) connect(m_selection, &Selection::changed, this, &SensitivityView::followSelection);

    setSnapshot(nullptr);
}

SensitivityView::~SensitivityView() = default;

void SensitivityView::setSnapshot(SnapshotPtr snapshot)
{
    m_snapshot = std::move(snapshot);
    {
        const QScopedValueRollback guard(m_syncing, true);
        m_model->setSnapshot(m_snapshot);
        fillMeasureCombo();
    }

    if (!m_snapshot) {
        m_placeholder->setText(tr("No model open.\n\nOpen a model and run an analysis to see how sensitive each "
                                  "layer is to quantization."));
    } else if (!m_snapshot->analysis) {
        m_placeholder->setText(tr("No analysis yet.\n\nRun an analysis to measure each layer's sensitivity to "
                                  "round-to-nearest quantization."));
    } else if (m_model->rowCount() == 0 || m_model->columns().isEmpty()) {
        m_placeholder->setText(tr("This analysis has no per-layer sensitivity.\n\nRun the analysis with "
                                  "sensitivity enabled to fill this view."));
    }
    const bool empty = !m_snapshot || !m_snapshot->analysis || m_model->rowCount() == 0 || m_model->columns().isEmpty();
    m_stack->setCurrentIndex(empty ? 0 : 1);
    rebuildBars();
    rebuildScatter();
    m_table->resizeColumnsToContents();
    m_table->setColumnWidth(SensitivityModel::LayerColumn,
                            qMin(m_table->columnWidth(SensitivityModel::LayerColumn), 280));
    followSelection();
}

QList<Exportable*> SensitivityView::exportables() const
{
    QList<Exportable*> out{m_barPanel};
    if (!showsKlNote()) out << m_scatter->panel();
    out << m_tableExport.get();
    return out;
}

SensitivityMeasure SensitivityView::measure() const
{
    return SensitivityMeasure(m_measureCombo->currentData().toInt());
}

int SensitivityView::bits() const
{
    return m_widthCombo->currentData().toInt();
}

void SensitivityView::setMeasure(SensitivityMeasure measure, int bits)
{
    const int m = m_measureCombo->findData(int(measure));
    if (m < 0) return;
    m_measureCombo->setCurrentIndex(m);
    const int w = m_widthCombo->findData(bits);
    if (w >= 0) m_widthCombo->setCurrentIndex(w);
}

SensitivityMeasure SensitivityView::scatterMeasure() const
{
    return SensitivityMeasure(m_scatterCombo->currentData().toInt());
}

void SensitivityView::setScatterMeasure(SensitivityMeasure measure)
{
    const int i = m_scatterCombo->findData(int(measure));
    if (i >= 0) m_scatterCombo->setCurrentIndex(i);
}

ChartPanel* SensitivityView::scatterPanel() const
{
    return m_scatter->panel();
}

bool SensitivityView::showsKlNote() const
{
    return m_scatter->showsNote();
}

QString SensitivityView::klNoteText() const
{
    return m_scatter->noteText();
}

bool SensitivityView::showsPlaceholder() const
{
    return m_stack->currentIndex() == 0;
}

QString SensitivityView::placeholderText() const
{
    return m_placeholder->text();
}

QString SensitivityView::layerAtBar(int category, int set) const
{
    const int row = m_barRow.value({category, set}, -1);
    return row < 0 ? QString() : m_model->layerName(row);
}

void SensitivityView::fillMeasureCombo()
{
    const QVariant previous = m_measureCombo->currentData();
    const QSignalBlocker block(m_measureCombo);
    m_measureCombo->clear();
    for (SensitivityMeasure m : m_model->measures()) m_measureCombo->addItem(SensitivityModel::measureName(m), int(m));
    const int i = m_measureCombo->findData(previous);
    m_measureCombo->setCurrentIndex(i >= 0 ? i : 0);
    fillWidthCombo();
}

void SensitivityView::fillWidthCombo()
{
    const QVariant previous = m_widthCombo->currentData();
    {
        const QSignalBlocker block(m_widthCombo);
        m_widthCombo->clear();
        for (int b : m_model->widths())
            if (m_model->columnOf(measure(), b) >= 0) m_widthCombo->addItem(tr("%1 bit").arg(b), b);
        // Keep the width across measures; otherwise start at the narrowest, where layers differ most.
        const int i = m_widthCombo->findData(previous);
        m_widthCombo->setCurrentIndex(i >= 0 ? i : 0);
    }
    m_logCheck->setEnabled(measure() != SensitivityMeasure::SqnrDb);
}

void SensitivityView::rebuildBars()
{
    m_barPanel->clear();
    m_bars = nullptr;
    m_barRow.clear();
    m_blocks.clear();
    m_kinds.clear();
    const int b = bits();
    const SensitivityMeasure mea = measure();
    if (b == 0 || m_model->rowCount() == 0) {
        m_barPanel->setTitle(tr("Sensitivity per layer"));
        return;
    }

    // Categories are blocks, bar sets are projections: a model's 7 × blocks layers stay readable.
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const QString name = m_model->layerName(r);
        const int block = Selection::blockOf(name);
        if (block < 0) continue;
        if (!m_blocks.contains(block)) m_blocks << block;
        if (!m_kinds.contains(name.section('.', -1))) m_kinds << name.section('.', -1);
    }
    std::sort(m_blocks.begin(), m_blocks.end());

    QList<QList<double>> values(m_kinds.size(), QList<double>(m_blocks.size(), std::nan("")));
    double lo = 0, hi = 0, minPositive = 0;
    bool any = false;
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const QString name = m_model->layerName(r);
        const int c = int(m_blocks.indexOf(Selection::blockOf(name)));
        const int s = int(m_kinds.indexOf(name.section('.', -1)));
        const std::optional<double> v = m_model->value(r, mea, b);
        if (c < 0 || s < 0 || !v) continue;
        m_barRow.insert({c, s}, r);
        values[s][c] = *v;
        lo = any ? std::min(lo, *v) : *v;
        hi = any ? std::max(hi, *v) : *v;
        if (*v > 0 && (minPositive == 0 || *v < minPositive)) minPositive = *v;
        any = true;
    }
    const bool log = m_logCheck->isChecked() && mea != SensitivityMeasure::SqnrDb && minPositive > 0;
    const auto [logLo, logHi] = log ? decades(minPositive, hi) : QPair<double, double>(0, 0);

    m_bars = new QBarSeries;
    m_bars->setBarWidth(0.85);
    for (int s = 0; s < m_kinds.size(); ++s) {
        auto* set = new QBarSet(m_kinds[s]);
        set->setColor(detail::projectionColor(m_kinds[s]));
        set->setBorderColor(Qt::transparent);
        set->setSelectedColor(QColor(0x20, 0x20, 0x20));
        for (double v : values[s])
            // A missing value (or one a log axis cannot show) is drawn as an empty bar at the axis floor.
            set->append(std::isnan(v) || (log && v <= 0) ? (log ? logLo : 0.0) : v);
        m_bars->append(set);
    }
    m_barPanel->chart()->addSeries(m_bars);

    // A category axis labels every block and elides them all once there are more than a dozen;
    // blocks numbered 0..n-1 (the usual case) get a value axis with every few blocks labelled.
    bool contiguous = true;
    for (int i = 0; i < m_blocks.size(); ++i) contiguous = contiguous && m_blocks[i] == i;
    if (contiguous && m_blocks.size() > 12) {
        auto* xAxis = new QValueAxis;
        xAxis->setRange(-0.5, double(m_blocks.size()) - 0.5);
        xAxis->setTickType(QValueAxis::TicksDynamic);
        xAxis->setTickAnchor(0);
        xAxis->setTickInterval(m_blocks.size() > 40 ? 5 : 2);
        xAxis->setLabelFormat(QStringLiteral("%d"));
        xAxis->setGridLineVisible(false);
        xAxis->setTitleText(tr("Block"));
        m_barPanel->chart()->addAxis(xAxis, Qt::AlignBottom);
        m_bars->attachAxis(xAxis);
    } else {
        auto* xAxis = new QBarCategoryAxis;
        for (int block : std::as_const(m_blocks)) xAxis->append(QString::number(block));
        xAxis->setTitleText(tr("Block"));
        m_barPanel->chart()->addAxis(xAxis, Qt::AlignBottom);
        m_bars->attachAxis(xAxis);
    }
    if (log) {
        auto* y = new QLogValueAxis;
        y->setLabelFormat(QStringLiteral("%.0e"));
        y->setRange(logLo, logHi);
        y->setTitleText(SensitivityModel::measureName(mea) + tr(" (log)"));
        m_barPanel->chart()->addAxis(y, Qt::AlignLeft);
        m_bars->attachAxis(y);
    } else {
        auto* y = new QValueAxis;
        y->setRange(std::min(0.0, lo), any ? std::max(hi, 0.0) * 1.05 + (hi == 0 ? 1.0 : 0.0) : 1.0);
        y->applyNiceNumbers();
        y->setTitleText(SensitivityModel::measureName(mea));
        m_barPanel->chart()->addAxis(y, Qt::AlignLeft);
        m_bars->attachAxis(y);
    }
    m_barPanel->chart()->legend()->setVisible(m_kinds.size() > 1);
    m_barPanel->setTitle(tr("%1 at %2 bits per layer%3")
                             .arg(SensitivityModel::measureName(mea))
                             .arg(b)
                             .arg(SensitivityModel::largerIsWorse(mea) ? tr(" (higher = more sensitive)")
                                                                       : tr(" (lower = more sensitive)")));

    m_barPanel->attachHover(m_bars, [this, mea, b](int index, const QBarSet* set) {
        const int s = m_bars ? int(m_bars->barSets().indexOf(const_cast<QBarSet*>(set))) : -1;
        const int row = m_barRow.value({index, s}, -1);
        if (row < 0) return tr("not computed");
        return QStringLiteral("%1\n%2 @%3: %4")
            .arg(m_model->layerName(row), SensitivityModel::measureName(mea))
            .arg(b)
            .arg(SensitivityModel::formatValue(mea, *m_model->value(row, mea, b)));
    });
    connect(m_bars, &QBarSeries::clicked, this, [this](int index, QBarSet* set) {
        const QString layer = layerAtBar(index, int(m_bars->barSets().indexOf(set)));
        if (!layer.isEmpty() && m_selection) m_selection->selectLayer(layer);
    });
    followSelection();
}

void SensitivityView::rebuildScatter()
{
    const bool kl = m_model->hasKl();
    m_scatterCombo->setEnabled(kl);
    m_scatter->setData(m_model, (m_snapshot && m_snapshot->analysis) ? &m_snapshot->analysis->endToEnd : nullptr,
                       scatterMeasure(), bits());
}

void SensitivityView::followSelection()
{
    const QString layer = m_selection ? m_selection->layer() : QString();
    const int row = m_model->rowOfLayer(layer);
    if (m_bars) {
        for (QBarSet* set : m_bars->barSets()) set->deselectAllBars();
        if (row >= 0) {
            const QString name = m_model->layerName(row);
            const int c = int(m_blocks.indexOf(Selection::blockOf(name)));
            const int s = int(m_kinds.indexOf(name.section('.', -1)));
            if (c >= 0 && s >= 0) m_bars->barSets()[s]->selectBar(c);
        }
    }
    m_scatter->followSelection();
    const QModelIndex index = row < 0 ? QModelIndex() : m_proxy->mapFromSource(m_model->index(row, 0));
    const QScopedValueRollback guard(m_syncing, true);
    if (index.isValid()) {
        m_table->selectionModel()->setCurrentIndex(index,
                                                   QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        m_table->scrollTo(index);
    } else {
        m_table->selectionModel()->clearSelection();
    }
}

void SensitivityView::selectFromTable(const QModelIndex& index)
{
    if (m_syncing || !m_selection || !index.isValid()) return;
    const QString layer = index.data(SensitivityModel::LayerNameRole).toString();
    if (!layer.isEmpty()) m_selection->selectLayer(layer);
}

QString SensitivityView::barCsv() const
{
    const SensitivityMeasure mea = measure();
    const int b = bits();
    QString out =
        QStringLiteral("layer,block,kind,%1\n").arg(TableExport::csvField(SensitivityModel::columnTitle(mea, b)));
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const std::optional<double> v = m_model->value(r, mea, b);
        const QString name = m_model->layerName(r);
        out += QStringLiteral("%1,%2,%3,%4\n")
                   .arg(name)
                   .arg(Selection::blockOf(name))
                   .arg(name.section('.', -1),
                        v ? QString::number(*v, 'g', QLocale::FloatingPointShortest) : QString());
    }
    return out;
}

} // namespace ql
