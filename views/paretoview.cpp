#include "paretoview.h"

#include "chartaxes.h"
#include "chartpanel.h"
#include "tableexport.h"
#include "viewlayout.h"

#include <QChart>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLocale>
#include <QLogValueAxis>
#include <QScatterSeries>
#include <QStackedWidget>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace ql {

namespace {

// One colour per family, the uniform plans in grey so the allocators stand out.
QColor familyColor(const QString& family, int index)
{
    if (family == QLatin1String("uniform")) return QColor(0x79, 0x70, 0x6e);
    static const QColor colors[] = {QColor(0x4e, 0x79, 0xa7), QColor(0xe1, 0x57, 0x59), QColor(0x59, 0xa1, 0x4f),
                                    QColor(0xf2, 0x8e, 0x2b), QColor(0xb0, 0x7a, 0xa1), QColor(0x76, 0xb7, 0xb2),
                                    QColor(0xed, 0xc9, 0x48)};
    return colors[index % 7];
}

// KL on a log axis needs a positive value; a plan equal to the float model sits at the floor.
constexpr double kKlFloor = 1e-6;

} // namespace

ParetoView::ParetoView(QWidget* parent) : QWidget(parent)
{
    m_panel = new ChartPanel(tr("Size vs quality"), this);
    m_panel->chart()->legend()->setAlignment(Qt::AlignRight);
    m_panel->setCsvSource([this] { return csv(); });
    m_note = detail::makePlaceholder(this, 24);
    m_note->setText(tr("No sweep yet.\n\nPlan > Pareto Sweep quantizes the uniform plan of every option the analysis "
                       "measured and each allocator's plan at several budgets, and measures each on the quick "
                       "slice. Click a point to load its plan."));
    m_stack = detail::makePlaceholderStack(this, m_note, m_panel, 0);
}

ParetoView::~ParetoView()
{
    // Series removed while the panel is whole: their destroyed() handlers touch the panel's hover table.
    m_panel->clear();
}

void ParetoView::clear()
{
    m_points.clear();
    redraw();
}

void ParetoView::addPoint(const ParetoPoint& point)
{
    m_points << point;
    redraw();
}

void ParetoView::setCurrent(double bitsPerWeight, std::optional<double> meanKl)
{
    m_currentBits = bitsPerWeight;
    m_currentKl = meanKl;
    redraw();
}

void ParetoView::choose(int index)
{
    if (index < 0 || index >= m_points.size()) return;
    emit planChosen(m_points[index].recipe, m_points[index].label);
}

void ParetoView::redraw()
{
    m_panel->clear();
    m_series.clear();
    m_indices.clear();
    if (m_points.isEmpty()) {
        m_stack->setCurrentWidget(m_note);
        return;
    }
    m_stack->setCurrentWidget(m_panel);
    QStringList families;
    double xlo = m_points.front().bitsPerWeight, xhi = xlo;
    double ylo = std::max(kKlFloor, m_points.front().meanKl), yhi = ylo;
    for (int i = 0; i < m_points.size(); ++i) {
        const ParetoPoint& p = m_points[i];
        int s = int(families.indexOf(p.family));
        if (s < 0) {
            s = int(families.size());
            families << p.family;
            auto* series = new QScatterSeries;
            series->setName(p.family);
            series->setMarkerSize(p.family == QLatin1String("uniform") ? 11 : 9);
            if (p.family == QLatin1String("uniform")) series->setMarkerShape(QScatterSeries::MarkerShapeRectangle);
            series->setColor(familyColor(p.family, s));
            series->setBorderColor(familyColor(p.family, s).darker(130));
            m_series << series;
            m_indices << QList<int>();
        }
        const double y = std::max(kKlFloor, p.meanKl);
        m_series[s]->append(p.bitsPerWeight, y);
        m_indices[s] << i;
        xlo = std::min(xlo, p.bitsPerWeight), xhi = std::max(xhi, p.bitsPerWeight);
        ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    }
    if (m_currentKl) {
        xlo = std::min(xlo, m_currentBits), xhi = std::max(xhi, m_currentBits);
        ylo = std::min(ylo, std::max(kKlFloor, *m_currentKl)), yhi = std::max(yhi, std::max(kKlFloor, *m_currentKl));
    }
    QChart* chart = m_panel->chart();
    auto* x = new QValueAxis;
    x->setTitleText(tr("bits per weight of the linears"));
    const double pad = std::max(0.1, 0.05 * (xhi - xlo));
    x->setRange(xlo - pad, xhi + pad);
    x->setLabelFormat(QStringLiteral("%.2f"));
    QLogValueAxis* y = detail::decadeAxis(tr("quick KL to float (nats)"), ylo, yhi);
    y->setLabelFormat(QStringLiteral("%.0e"));
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (int s = 0; s < m_series.size(); ++s)
        m_panel->addClickableSeries(
            m_series[s], x, y,
            [this, s](int index, const QBarSet*) {
                if (s >= m_indices.size() || index < 0 || index >= m_indices[s].size()) return QString();
                const ParetoPoint& p = m_points[m_indices[s][index]];
                return tr("%1\n%2 bits per weight\nKL %3 nats, top-1 %4%, ppl %5%6")
                    .arg(p.label)
                    .arg(p.bitsPerWeight, 0, 'f', 3)
                    .arg(p.meanKl, 0, 'g', 4)
                    .arg(100.0 * p.top1, 0, 'f', 1)
                    .arg(p.ppl, 0, 'f', 2)
                    .arg(p.measure == QLatin1String("-") ? QString() : tr("\nminimises %1").arg(p.measure));
            },
            [this, s](int index) { choose(m_indices[s][index]); });
    if (m_currentKl) {
        auto* current = new QScatterSeries;
        current->setName(tr("current plan"));
        current->setMarkerSize(20);
        current->setColor(Qt::transparent);
        current->setPen(QPen(QColor(0x20, 0x20, 0x20), 2));
        current->append(m_currentBits, std::max(kKlFloor, *m_currentKl));
        chart->addSeries(current);
        current->attachAxis(x);
        current->attachAxis(y);
    }
    m_panel->setTitle(tr("Size vs quality: %n plan(s)", nullptr, int(m_points.size())));
}

QString ParetoView::csv() const
{
    QString out = QStringLiteral("plan,family,measure,bits_per_weight,mean_kl,top1_agreement,ppl\n");
    for (const ParetoPoint& p : m_points)
        out += QStringLiteral("%1,%2,%3,%4,%5,%6,%7\n")
                   .arg(TableExport::csvField(p.label), TableExport::csvField(p.family),
                        TableExport::csvField(p.measure),
                        QString::number(p.bitsPerWeight, 'g', QLocale::FloatingPointShortest),
                        QString::number(p.meanKl, 'g', QLocale::FloatingPointShortest),
                        QString::number(p.top1, 'g', QLocale::FloatingPointShortest),
                        QString::number(p.ppl, 'g', QLocale::FloatingPointShortest));
    return out;
}

} // namespace ql
