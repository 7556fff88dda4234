#include "klscatter.h"

#include "chartaxes.h"
#include "chartpanel.h"
#include "selection.h"
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
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace ql {

namespace detail {

QColor projectionColor(const QString& kind)
{
    static const QHash<QString, QColor> colors = {
        {QStringLiteral("q_proj"), QColor(0x4e, 0x79, 0xa7)},    {QStringLiteral("k_proj"), QColor(0xf2, 0x8e, 0x2b)},
        {QStringLiteral("v_proj"), QColor(0xe1, 0x57, 0x59)},    {QStringLiteral("o_proj"), QColor(0x76, 0xb7, 0xb2)},
        {QStringLiteral("gate_proj"), QColor(0x59, 0xa1, 0x4f)}, {QStringLiteral("up_proj"), QColor(0xed, 0xc9, 0x48)},
        {QStringLiteral("down_proj"), QColor(0xb0, 0x7a, 0xa1)},
    };
    return colors.value(kind, QColor(0x9c, 0x75, 0x5f));
}

} // namespace detail

KlScatter::KlScatter(Selection* selection, QWidget* parent) : QWidget(parent), m_selection(selection)
{
    m_panel = new ChartPanel(tr("Cheap measure vs end-to-end KL"), this);
    m_panel->chart()->legend()->setAlignment(Qt::AlignRight);
    m_panel->setCsvSource([this] { return csv(); });
    m_note = detail::makePlaceholder(this, 24);
    m_stack = new QStackedWidget(this);
    m_stack->addWidget(m_panel);
    m_stack->addWidget(m_note);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_stack);
}

KlScatter::~KlScatter()
{
    // Series removed while the panel is whole: their destroyed() handlers touch the panel's hover table.
    m_panel->clear();
}

bool KlScatter::showsNote() const
{
    return m_stack->currentWidget() == m_note;
}

QString KlScatter::noteText() const
{
    return m_note->text();
}

void KlScatter::showNote(const QString& text)
{
    m_note->setText(text);
    m_stack->setCurrentWidget(m_note);
}

void KlScatter::setData(const SensitivityModel* model, const EndToEndSummary* summary, SensitivityMeasure xMeasure,
                        int bits)
{
    m_panel->clear();
    m_series.clear();
    m_rows.clear();
    m_selected = nullptr;
    m_model = model;
    m_xMeasure = xMeasure;
    m_bits = bits;
    if (!model || !model->hasKl()) {
        showNote(tr("End-to-end KL was not computed for this analysis.\n\nThe Hessian proxy and the relative output "
                    "MSE are cheap predictions of how much quantizing a layer hurts the model. Run the analysis with "
                    "end-to-end sensitivity to compare them with the KL divergence each layer causes, and see their "
                    "Spearman rank correlation here."));
        return;
    }
    if (bits != 0 && model->columnOf(SensitivityMeasure::Kl, bits) < 0) {
        QStringList widths;
        for (int w : model->widths())
            if (model->columnOf(SensitivityMeasure::Kl, w) >= 0) widths << QString::number(w);
        showNote(tr("End-to-end KL was not computed at %1 bits (only at %2 bits).").arg(bits).arg(widths.join(", ")));
        return;
    }
    m_stack->setCurrentWidget(m_panel);
    if (bits == 0) return;

    QStringList kinds;
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    int shown = 0, hidden = 0;
    for (int r = 0; r < model->rowCount(); ++r) {
        const std::optional<double> x = model->value(r, xMeasure, bits);
        const std::optional<double> y = model->value(r, SensitivityMeasure::Kl, bits);
        if (!x || !y) continue;
        // Log-log axes: a non-positive value has no place on them (KL can round to ≤ 0).
        if (*x <= 0 || *y <= 0) {
            ++hidden;
            continue;
        }
        const QString kind = model->layerName(r).section('.', -1);
        int s = int(kinds.indexOf(kind));
        if (s < 0) {
            s = int(kinds.size());
            kinds << kind;
            auto* series = new QScatterSeries;
            series->setName(kind);
            series->setMarkerSize(9);
            series->setColor(detail::projectionColor(kind));
            series->setBorderColor(detail::projectionColor(kind).darker(130));
            m_series << series;
            m_rows << QList<int>();
        }
        m_series[s]->append(*x, *y);
        m_rows[s] << r;
        xlo = shown ? std::min(xlo, *x) : *x, xhi = shown ? std::max(xhi, *x) : *x;
        ylo = shown ? std::min(ylo, *y) : *y, yhi = shown ? std::max(yhi, *y) : *y;
        ++shown;
    }

    // The correlation is core's (EndToEndSummary), never recomputed here.
    QString rho = tr("Spearman ρ not available");
    if (summary) {
        const auto wi = std::find(summary->bits.begin(), summary->bits.end(), bits);
        const std::vector<double>& rhos = xMeasure == SensitivityMeasure::Proxy       ? summary->spearmanProxyKl
                                          : xMeasure == SensitivityMeasure::Fisher    ? summary->spearmanFisherKl
                                          : xMeasure == SensitivityMeasure::FisherOut ? summary->spearmanFisherOutKl
                                                                                      : summary->spearmanRelMseKl;
        const size_t i = size_t(wi - summary->bits.begin());
        if (wi != summary->bits.end() && i < rhos.size() && !std::isnan(rhos[i]))
            rho = tr("Spearman ρ = %1").arg(rhos[i], 0, 'f', 3);
    }
    QString title = tr("%1 vs KL at %2 bits — %3").arg(SensitivityModel::measureName(xMeasure)).arg(bits).arg(rho);
    if (hidden) title += tr(" (%n layer(s) ≤ 0 not shown)", nullptr, hidden);
    m_panel->setTitle(title);
    if (shown == 0) return;

    // Whole decades around the data, labelled in exponent form (these measures span many decades).
    const auto logAxis = [](double lo, double hi, const QString& text) {
        QLogValueAxis* axis = detail::decadeAxis(text, lo, hi);
        axis->setLabelFormat(QStringLiteral("%.0e"));
        return axis;
    };
    QChart* chart = m_panel->chart();
    QLogValueAxis* x = logAxis(xlo, xhi, SensitivityModel::measureName(xMeasure));
    QLogValueAxis* y = logAxis(ylo, yhi, tr("KL (nats)"));
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (int s = 0; s < m_series.size(); ++s)
        m_panel->addClickableSeries(
            m_series[s], x, y,
            [this, s](int index, const QBarSet*) {
                if (!m_model || s >= m_rows.size() || index < 0 || index >= m_rows[s].size()) return QString();
                const int row = m_rows[s][index];
                return QStringLiteral("%1\n%2: %3\nKL: %4")
                    .arg(m_model->layerName(row), SensitivityModel::measureName(m_xMeasure),
                         SensitivityModel::formatValue(m_xMeasure, *m_model->value(row, m_xMeasure, m_bits)),
                         SensitivityModel::formatValue(SensitivityMeasure::Kl,
                                                       *m_model->value(row, SensitivityMeasure::Kl, m_bits)));
            },
            [this, s](int index) {
                if (m_selection && m_model) m_selection->selectLayer(m_model->layerName(m_rows[s][index]));
            });
    // The selected layer as a ring on top of its point.
    m_selected = new QScatterSeries;
    m_selected->setName(tr("selected"));
    m_selected->setMarkerSize(18);
    m_selected->setColor(Qt::transparent);
    m_selected->setPen(QPen(QColor(0x20, 0x20, 0x20), 2));
    chart->addSeries(m_selected);
    m_selected->attachAxis(x);
    m_selected->attachAxis(y);
    for (QLegendMarker* marker : chart->legend()->markers(m_selected)) marker->setVisible(false);
    followSelection();
}

void KlScatter::followSelection()
{
    if (!m_selected || !m_model) return;
    m_selected->clear();
    const int row = m_model->rowOfLayer(m_selection ? m_selection->layer() : QString());
    if (row < 0) return;
    for (int s = 0; s < m_rows.size(); ++s) {
        const int i = int(m_rows[s].indexOf(row));
        if (i >= 0) m_selected->append(m_series[s]->at(i));
    }
}

QString KlScatter::csv() const
{
    if (!m_model || m_bits == 0) return QStringLiteral("layer\n");
    QString out = QStringLiteral("layer,%1,%2\n")
                      .arg(TableExport::csvField(SensitivityModel::columnTitle(m_xMeasure, m_bits)),
                           TableExport::csvField(SensitivityModel::columnTitle(SensitivityMeasure::Kl, m_bits)));
    for (int r = 0; r < m_model->rowCount(); ++r) {
        const std::optional<double> x = m_model->value(r, m_xMeasure, m_bits);
        const std::optional<double> y = m_model->value(r, SensitivityMeasure::Kl, m_bits);
        if (!x || !y) continue;
        out += QStringLiteral("%1,%2,%3\n")
                   .arg(m_model->layerName(r), QString::number(*x, 'g', QLocale::FloatingPointShortest),
                        QString::number(*y, 'g', QLocale::FloatingPointShortest));
    }
    return out;
}

} // namespace ql
