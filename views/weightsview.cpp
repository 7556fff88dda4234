#include "weightsview.h"

#include "chartaxes.h"
#include "chartpanel.h"
#include "histogramchart.h"
#include "histogrammodel.h"
#include "selection.h"
#include "viewlayout.h"

#include <QChart>
#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QLineSeries>
#include <QSplitter>
#include <QStackedWidget>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace ql {

WeightsView::WeightsView(Selection* selection, QWidget* parent) : AnalysisPage(parent), m_selection(selection)
{
    m_placeholder = detail::makePlaceholder(this);

    auto* page = new QWidget(this);
    m_summary = new QLabel(page);
    m_summary->setTextFormat(Qt::PlainText);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_histogram = new HistogramChart(tr("Weight histogram"), page);
    m_rowPanel = new ChartPanel(tr("Per-row absmax"), page);
    m_rowPanel->setCsvSource([this] { return rowCsv(); });
    m_logCheck = new QCheckBox(tr("Log counts"), page);
    m_logCheck->setChecked(m_histogram->logCounts());
    m_logCheck->setToolTip(tr("Logarithmic count axis: the few large weights in the tails stay visible"));

    auto* bar = new QHBoxLayout;
    bar->addWidget(m_summary, 1);
    bar->addWidget(m_logCheck);
    auto* split = new QSplitter(Qt::Vertical, page);
    split->addWidget(m_histogram);
    split->addWidget(m_rowPanel);
    split->setSizes({1000, 1000});
    split->setChildrenCollapsible(false);
    detail::layOutPage(page, bar, split);
    m_stack = detail::makePlaceholderStack(this, m_placeholder, page);

    connect(m_logCheck, &QCheckBox::toggled, m_histogram, &HistogramChart::setLogCounts);
    if (m_selection) connect(m_selection, &Selection::changed, this, &WeightsView::followSelection);
    setSnapshot(nullptr);
}

WeightsView::~WeightsView() = default;

void WeightsView::setSnapshot(SnapshotPtr snapshot)
{
    m_snapshot = std::move(snapshot);
    followSelection();
}

QList<Exportable*> WeightsView::exportables() const
{
    return {m_histogram, m_rowPanel};
}

HistogramModel* WeightsView::histogramModel() const
{
    return m_histogram->model();
}

bool WeightsView::showsPlaceholder() const
{
    return m_stack->currentIndex() == 0;
}

QString WeightsView::placeholderText() const
{
    return m_placeholder->text();
}

void WeightsView::showPlaceholder(const QString& text)
{
    m_stats = nullptr;
    m_placeholder->setText(text);
    m_stack->setCurrentIndex(0);
    m_histogram->clearHistogram(tr("Weight histogram"));
    rebuildRows();
}

void WeightsView::followSelection()
{
    if (!m_snapshot) {
        showPlaceholder(tr("No model open.\n\nOpen a model and run an analysis to see the weights of each layer."));
        return;
    }
    if (!m_snapshot->analysis || m_snapshot->analysis->weights.empty()) {
        showPlaceholder(
            tr("No weight statistics yet.\n\nRun an analysis to see the weight distribution of each layer."));
        return;
    }
    const QString layer = m_selection ? m_selection->layer() : QString();
    if (layer.isEmpty()) {
        showPlaceholder(tr("Select a linear layer in the model explorer or a table to see its weights."));
        return;
    }
    // WeightStats are named by tensor: the module name plus ".weight".
    const std::string tensor = layer.toStdString() + ".weight";
    const auto& weights = m_snapshot->analysis->weights;
    const auto it = std::find_if(weights.begin(), weights.end(),
                                 [&](const WeightStats& w) { return w.name == tensor; });
    if (it == weights.end()) {
        showPlaceholder(tr("No weight statistics were stored for %1.").arg(layer));
        return;
    }
    m_stats = &*it;
    m_stack->setCurrentIndex(1);

    QString shape;
    for (const LinearLayer& l : m_snapshot->layers)
        if (l.name == layer.toStdString()) shape = QStringLiteral("%1 × %2 · ").arg(l.outFeatures).arg(l.inFeatures);
    m_summary->setText(tr("%1 · %2excess kurtosis %3 · %4 % beyond 3σ")
                           .arg(layer, shape)
                           .arg(m_stats->kurtosis, 0, 'f', 2)
                           .arg(m_stats->fracBeyond3Sigma * 100.0, 0, 'f', 3));
    m_histogram->setHistogram(m_stats->histCounts, m_stats->histEdges, QString::fromStdString(m_stats->name),
                              tr("Weight histogram — %1").arg(layer), tr("Weight value"));
    rebuildRows();
}

void WeightsView::rebuildRows()
{
    m_rowPanel->clear();
    m_absmax = m_std = nullptr;
    if (!m_stats || m_stats->rowAbsmax.size() == 0) {
        m_rowPanel->setTitle(tr("Per-row absmax"));
        return;
    }
    const Eigen::Index rows = m_stats->rowAbsmax.size();
    QList<QPointF> absmax, stddev;
    absmax.reserve(rows);
    stddev.reserve(rows);
    for (Eigen::Index r = 0; r < rows; ++r) absmax << QPointF(double(r), double(m_stats->rowAbsmax[r]));
    if (m_stats->rowStd.size() == rows)
        for (Eigen::Index r = 0; r < rows; ++r) stddev << QPointF(double(r), double(m_stats->rowStd[r]));

    QChart* chart = m_rowPanel->chart();
    m_absmax = new QLineSeries;
    m_absmax->setName(tr("row absmax"));
    m_absmax->setPen(detail::hairline(QColor(0xe1, 0x57, 0x59), 1.5));
    chart->addSeries(m_absmax);
    if (!stddev.isEmpty()) {
        m_std = new QLineSeries;
        m_std->setName(tr("row std"));
        m_std->setPen(detail::hairline(QColor(0x4e, 0x79, 0xa7), 1.5));
        chart->addSeries(m_std);
    }
    auto* x = detail::indexAxis(tr("Output row"), rows);
    auto* y = new QValueAxis;
    y->setRange(0, double(m_stats->rowAbsmax.maxCoeff()) * 1.05 + 1e-12);
    y->applyNiceNumbers();
    y->setLabelFormat(QStringLiteral("%.3g"));
    y->setTitleText(tr("|w|"));
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (QLineSeries* s : {m_absmax, m_std}) {
        if (!s) continue;
        s->attachAxis(x);
        s->attachAxis(y);
        m_rowPanel->attachHover(s, [s](int index, const QBarSet*) {
            if (index < 0 || index >= s->count()) return QString();
            return QStringLiteral("row %1\n%2: %3")
                .arg(qRound(s->at(index).x()))
                .arg(s->name())
                .arg(s->at(index).y(), 0, 'g', 5);
        });
    }
    // At pixel detail: a 7B model's gate and up projections have 11008 rows.
    m_rowPanel->setPoints(m_absmax, absmax);
    if (m_std) m_rowPanel->setPoints(m_std, stddev);
    m_rowPanel->setTitle(
        tr("Per-row absmax and std — %1 (%2 rows)").arg(m_selection ? m_selection->layer() : QString()).arg(rows));
}

QString WeightsView::rowCsv() const
{
    QString out = QStringLiteral("row,absmax,std\n");
    if (!m_stats) return out;
    const bool hasStd = m_stats->rowStd.size() == m_stats->rowAbsmax.size();
    for (Eigen::Index r = 0; r < m_stats->rowAbsmax.size(); ++r)
        out += QStringLiteral("%1,%2,%3\n")
                   .arg(r)
                   .arg(QString::number(double(m_stats->rowAbsmax[r]), 'g', 9),
                        hasStd ? QString::number(double(m_stats->rowStd[r]), 'g', 9) : QString());
    return out;
}

} // namespace ql
