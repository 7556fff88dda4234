#include "entropyview.h"

#include "chartpanel.h"
#include "entropymodel.h"
#include "histogramchart.h"
#include "selection.h"
#include "tableexport.h"
#include "viewlayout.h"

#include "quantlens/forward/site.h"

#include <QChart>
#include <QCheckBox>
#include <QHBoxLayout>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QScatterSeries>
#include <QScopedValueRollback>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// One colour per site kind; energy and value entropy of a kind share it.
QColor siteKindColor(const QString& kind, int fallbackIndex)
{
    // attn_in, o_in, mlp_in, down_in
    static const QColor sites[kSiteCount] = {QColor(0x4e, 0x79, 0xa7), QColor(0x76, 0xb7, 0xb2),
                                             QColor(0x59, 0xa1, 0x4f), QColor(0xb0, 0x7a, 0xa1)};
    const auto point = parsePoint(kind.toStdString());
    if (const int i = point ? siteIndex(*point) : -1; i >= 0) return sites[i];
    static const QColor others[] = {QColor(0xf2, 0x8e, 0x2b), QColor(0xe1, 0x57, 0x59), QColor(0x9c, 0x75, 0x5f)};
    return others[fallbackIndex % 3];
}

} // namespace

EntropyView::EntropyView(Selection* selection, QWidget* parent)
    : AnalysisPage(parent), m_selection(selection), m_model(new EntropyModel(this)),
      m_proxy(new QSortFilterProxyModel(this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(Qt::UserRole);

    m_placeholder = detail::makePlaceholder(this);

    auto* page = new QWidget(this);
    m_depthPanel = new ChartPanel(tr("Activation entropy across depth"), page);
    m_depthPanel->setCsvSource([this] { return depthCsv(); });
    m_histogram = new HistogramChart(tr("Value histogram"), page);
    m_logCheck = new QCheckBox(tr("Log counts"), page);
    m_logCheck->setChecked(m_histogram->logCounts());
    m_logCheck->setToolTip(
        tr("Logarithmic count axis: the tails of the distribution, where outliers live, stay visible"));

    m_table = detail::makeRowTable(m_proxy, page);

    auto* histBox = new QWidget(page);
    auto* histLayout = new QVBoxLayout(histBox);
    histLayout->setContentsMargins(0, 0, 0, 0);
    histLayout->addWidget(m_histogram, 1);
    histLayout->addWidget(m_logCheck);

    auto* bottom = detail::makeSplitter(Qt::Horizontal, histBox, m_table, 3, 2, {3000, 2000}, page);
    auto* split = detail::makeSplitter(Qt::Vertical, m_depthPanel, bottom, 1, 1, {1000, 1000}, page);
    split->setChildrenCollapsible(false);
    auto* pageLayout = new QVBoxLayout(page);
    pageLayout->setContentsMargins(0, 0, 0, 0);
    pageLayout->addWidget(split);

    m_stack = detail::makePlaceholderStack(this, m_placeholder, page);

    m_tableExport = std::make_unique<TableExport>(tr("Site entropy"), m_table);

    connect(m_logCheck, &QCheckBox::toggled, m_histogram, &HistogramChart::setLogCounts);
    connect(m_table, &QTableView::clicked, this, &EntropyView::selectFromTable);
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &EntropyView::selectFromTable);
    if (m_selection) connect(m_selection, &Selection::changed, this, &EntropyView::followSelection);

    setSnapshot(nullptr);
}

EntropyView::~EntropyView() = default;

void EntropyView::setSnapshot(SnapshotPtr snapshot)
{
    m_snapshot = std::move(snapshot);
    {
        const QScopedValueRollback guard(m_syncing, true);
        m_model->setSnapshot(m_snapshot);
    }
    if (!m_snapshot) {
        m_placeholder->setText(tr("No model open.\n\nOpen a model and run an analysis to see how much information "
                                  "each layer's activations carry."));
    } else if (!m_snapshot->analysis) {
        m_placeholder->setText(
            tr("No analysis yet.\n\nRun an analysis to measure the entropy of every activation site."));
    } else if (m_model->rowCount() == 0) {
        m_placeholder->setText(tr("This analysis has no activation statistics."));
    }
    m_stack->setCurrentIndex(m_model->rowCount() == 0 ? 0 : 1);
    rebuildDepth();
    m_table->resizeColumnsToContents();
    followSelection();
}

QList<Exportable*> EntropyView::exportables() const
{
    return {m_depthPanel, m_histogram, m_tableExport.get()};
}

HistogramModel* EntropyView::histogramModel() const
{
    return m_histogram->model();
}

QLineSeries* EntropyView::depthSeries(const QString& kind, bool energy) const
{
    const int i = int(m_model->kinds().indexOf(kind));
    if (i < 0) return nullptr;
    const QList<QLineSeries*>& list = energy ? m_energy : m_value;
    return i < list.size() ? list[i] : nullptr;
}

bool EntropyView::showsPlaceholder() const
{
    return m_stack->currentIndex() == 0;
}

QString EntropyView::placeholderText() const
{
    return m_placeholder->text();
}

void EntropyView::rebuildDepth()
{
    m_depthPanel->clear();
    m_energy.clear();
    m_value.clear();
    m_selectedEnergy = m_selectedValue = nullptr;
    if (m_model->rowCount() == 0) return;

    QChart* chart = m_depthPanel->chart();
    const QStringList kinds = m_model->kinds();
    for (int k = 0; k < kinds.size(); ++k) {
        const QColor color = siteKindColor(kinds[k], k);
        auto* energy = new QLineSeries;
        energy->setName(tr("%1 energy").arg(kinds[k]));
        energy->setPen(QPen(color, 2));
        energy->setPointsVisible(true);
        auto* value = new QLineSeries;
        value->setName(tr("%1 value").arg(kinds[k]));
        value->setPen(QPen(color, 2, Qt::DashLine));
        value->setPointsVisible(true);
        m_energy << energy;
        m_value << value;
    }
    // Values come from the model, the one place that reads the snapshot's statistics.
    double elo = 0, ehi = 0, vlo = 0, vhi = 0, bmin = 0, bmax = 0;
    bool any = false;
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const int k = int(kinds.indexOf(m_model->index(r, EntropyModel::KindColumn).data(Qt::UserRole).toString()));
        const double block = m_model->index(r, EntropyModel::BlockColumn).data(Qt::UserRole).toDouble();
        const double e = m_model->index(r, EntropyModel::EnergyEntropyColumn).data(Qt::UserRole).toDouble();
        const double v = m_model->index(r, EntropyModel::ValueEntropyColumn).data(Qt::UserRole).toDouble();
        if (k < 0) continue;
        m_energy[k]->append(block, e);
        m_value[k]->append(block, v);
        elo = any ? std::min(elo, e) : e, ehi = any ? std::max(ehi, e) : e;
        vlo = any ? std::min(vlo, v) : v, vhi = any ? std::max(vhi, v) : v;
        bmin = any ? std::min(bmin, block) : block, bmax = any ? std::max(bmax, block) : block;
        any = true;
    }

    auto* x = new QValueAxis;
    x->setRange(bmin - 0.5, bmax + 0.5);
    x->setTickType(QValueAxis::TicksDynamic);
    x->setTickAnchor(0);
    x->setTickInterval(std::max(1.0, std::ceil((bmax - bmin + 1) / 16.0)));
    x->setLabelFormat(QStringLiteral("%d"));
    x->setTitleText(tr("Block"));
    // Energy and value entropy measure different things on different scales: one axis each.
    const auto entropyAxis = [](double lo, double hi, const QString& title) {
        auto* y = new QValueAxis;
        const double pad = std::max(0.05, (hi - lo) * 0.08);
        y->setRange(std::max(0.0, lo - pad), hi + pad);
        y->applyNiceNumbers();
        y->setLabelFormat(QStringLiteral("%.2f"));
        y->setTitleText(title);
        return y;
    };
    QValueAxis* yEnergy = entropyAxis(elo, ehi, tr("Energy entropy, bits (solid)"));
    QValueAxis* yValue = entropyAxis(vlo, vhi, tr("Value entropy, bits (dashed)"));
    yValue->setGridLineVisible(false); // one grid is enough; two would not line up
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(yEnergy, Qt::AlignLeft);
    chart->addAxis(yValue, Qt::AlignRight);

    for (int k = 0; k < kinds.size(); ++k) {
        for (QLineSeries* s : {m_energy[k], m_value[k]}) {
            chart->addSeries(s);
            s->attachAxis(x);
            s->attachAxis(s == m_energy[k] ? yEnergy : yValue);
            m_depthPanel->attachHover(s, [s, kind = kinds[k]](int index, const QBarSet*) {
                if (index < 0 || index >= s->count()) return QString();
                return QStringLiteral("%1\n%2: %3 bits")
                    .arg(Selection::siteName(int(s->at(index).x()), kind), s->name())
                    .arg(s->at(index).y(), 0, 'f', 3);
            });
            // A click selects the site of that kind at the nearest block.
            connect(s, &QLineSeries::clicked, this, [this, kind = kinds[k]](const QPointF& p) {
                if (m_selection) m_selection->selectSite(Selection::siteName(qRound(p.x()), kind));
            });
        }
    }
    for (QScatterSeries** ring : {&m_selectedEnergy, &m_selectedValue}) {
        *ring = new QScatterSeries;
        (*ring)->setName(tr("selected"));
        (*ring)->setMarkerSize(16);
        (*ring)->setColor(Qt::transparent);
        (*ring)->setPen(QPen(QColor(0x20, 0x20, 0x20), 2));
        chart->addSeries(*ring);
        (*ring)->attachAxis(x);
        (*ring)->attachAxis(ring == &m_selectedEnergy ? yEnergy : yValue);
        for (QLegendMarker* marker : chart->legend()->markers(*ring)) marker->setVisible(false);
    }
    // Legend entries drawn as line segments, so solid (energy) and dashed (value) read apart.
    chart->legend()->setMarkerShape(QLegend::MarkerShapeFromSeries);
    m_depthPanel->setTitle(
        tr("Activation entropy across depth — energy (solid, left axis) and value (dashed, right axis)"));
}

void EntropyView::followSelection()
{
    const QString site = m_selection ? m_selection->site() : QString();
    const int row = m_model->rowOfSite(site);
    const SiteStats* s = m_model->siteStats(row);
    if (m_selectedEnergy && m_selectedValue) {
        m_selectedEnergy->clear();
        m_selectedValue->clear();
        if (s) {
            const double block = m_model->index(row, EntropyModel::BlockColumn).data(Qt::UserRole).toDouble();
            m_selectedEnergy->append(
                block, m_model->index(row, EntropyModel::EnergyEntropyColumn).data(Qt::UserRole).toDouble());
            m_selectedValue->append(
                block, m_model->index(row, EntropyModel::ValueEntropyColumn).data(Qt::UserRole).toDouble());
        }
    }
    if (s) {
        m_histogram->setHistogram(s->histCounts, s->histEdges, site,
                                  tr("Value histogram — %1 (%2 tokens)").arg(site).arg(s->nTokens),
                                  tr("Activation value"));
    } else {
        m_histogram->clearHistogram(m_model->rowCount() ? tr("Value histogram — select a layer or site")
                                                        : tr("Value histogram"));
    }
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

void EntropyView::selectFromTable(const QModelIndex& index)
{
    if (m_syncing || !m_selection || !index.isValid()) return;
    const QString site = index.data(EntropyModel::SiteNameRole).toString();
    // Keep the selected layer when it already feeds this site; otherwise take the site's first layer.
    if (!site.isEmpty() && site != m_selection->site()) m_selection->selectSite(site);
}

QString EntropyView::depthCsv() const
{
    return TableExport::csvOf(m_model);
}

} // namespace ql
