#include "histogramchart.h"

#include "histogrammodel.h"
#include "tableexport.h"

#include <QAreaSeries>
#include <QChart>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QValueAxis>

#include <cmath>

namespace ql {

HistogramChart::HistogramChart(const QString& title, QWidget* parent)
    : ChartPanel(title, parent), m_model(new HistogramModel(this))
{
    chart()->legend()->hide();
    setCsvSource([this] { return TableExport::csvOf(m_model); });
}

HistogramChart::~HistogramChart()
{
    // Series removed while the panel is whole: their destroyed() handlers touch the panel's hover table.
    clear();
}

void HistogramChart::setHistogram(const std::vector<double>& counts, const std::vector<float>& edges,
                                  const QString& source, const QString& title, const QString& xTitle)
{
    m_model->setHistogram(counts, edges, source);
    m_xTitle = xTitle;
    setTitle(m_model->bins() ? title : tr("%1: no histogram stored").arg(source));
    rebuild();
}

void HistogramChart::clearHistogram(const QString& title)
{
    m_model->clear();
    setTitle(title);
    rebuild();
}

void HistogramChart::setLogCounts(bool log)
{
    if (log == m_log) return;
    m_log = log;
    rebuild();
}

void HistogramChart::rebuild()
{
    clear();
    m_series = nullptr;
    const int bins = m_model->bins();
    if (bins == 0) return;

    // Empty bins have no place on a log axis: they are drawn at a floor below the smallest count.
    const double minPositive = m_model->minPositiveCount();
    const bool log = m_log && minPositive > 0;
    const double floor = log ? std::min(0.5, minPositive / 2) : 0.0;

    auto* upper = new QLineSeries;
    auto* lower = new QLineSeries;
    QList<QPointF> steps;
    steps.reserve(2 * bins);
    for (int i = 0; i < bins; ++i) {
        const double c = std::max(m_model->count(i), floor);
        steps << QPointF(m_model->edge(i), c) << QPointF(m_model->edge(i + 1), c);
    }
    upper->replace(steps);
    lower->append(m_model->edge(0), floor);
    lower->append(m_model->edge(bins), floor);
    m_series = new QAreaSeries(upper, lower);
    m_series->setName(m_model->source());
    const QColor color(0x4e, 0x79, 0xa7);
    m_series->setColor(QColor(color.red(), color.green(), color.blue(), 150));
    m_series->setBorderColor(color.darker(120));
    chart()->addSeries(m_series);

    auto* x = new QValueAxis;
    x->setRange(m_model->edge(0), m_model->edge(bins));
    x->setTitleText(m_xTitle);
    x->setLabelFormat(QStringLiteral("%.3g"));
    chart()->addAxis(x, Qt::AlignBottom);
    m_series->attachAxis(x);
    if (log) {
        auto* y = new QLogValueAxis;
        y->setRange(floor, std::pow(10.0, std::ceil(std::log10(std::max(m_model->maxCount(), 1.0)) + 0.05)));
        y->setLabelFormat(QStringLiteral("%.0e"));
        y->setTitleText(tr("Count (log)"));
        chart()->addAxis(y, Qt::AlignLeft);
        m_series->attachAxis(y);
    } else {
        auto* y = new QValueAxis;
        y->setRange(0, m_model->maxCount() > 0 ? m_model->maxCount() * 1.05 : 1.0);
        y->applyNiceNumbers();
        y->setLabelFormat(QStringLiteral("%.3g"));
        y->setTitleText(tr("Count"));
        chart()->addAxis(y, Qt::AlignLeft);
        m_series->attachAxis(y);
    }
    attachHover(m_series, [this](int index, const QBarSet*) {
        const int bin = index / 2; // two step points per bin
        if (bin < 0 || bin >= m_model->bins()) return QString();
        return tr("[%1, %2): %3")
            .arg(m_model->edge(bin), 0, 'g', 5)
            .arg(m_model->edge(bin + 1), 0, 'g', 5)
            .arg(m_model->count(bin), 0, 'g', 10);
    });
}

} // namespace ql
