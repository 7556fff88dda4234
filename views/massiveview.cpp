#include "massiveview.h"

#include "chartaxes.h"
#include "chartpanel.h"
#include "massivetablemodel.h"
#include "residualdepthmodel.h"
#include "selection.h"
#include "viewlayout.h"

#include "quantlens/forward/site.h"

#include <QChart>
#include <QHeaderView>
#include <QLabel>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <QValueAxis>

#include <cmath>
#include <limits>

namespace ql {

MassiveView::MassiveView(Selection* selection, QWidget* parent)
    : AnalysisPage(parent), m_selection(selection), m_residualModel(new ResidualDepthModel(this)),
      m_massiveModel(new MassiveTableModel(this)), m_proxy(new QSortFilterProxyModel(this))
{
    m_placeholder = detail::makePlaceholder(this, 24);

    auto* content = new QWidget(this);
    m_summary = new QLabel(content);
    m_summary->setWordWrap(true);
    m_chart = new ChartPanel(tr("Residual stream |a| across depth"), content);
    m_chart->setCsvSource([this] { return chartCsv(); });

    m_proxy->setSourceModel(m_massiveModel);
    m_proxy->setSortRole(MassiveTableModel::RawRole); // numbers sort as numbers
    m_table = detail::makeRowTable(m_proxy, content);
    m_table->sortByColumn(MassiveTableModel::Layer, Qt::AscendingOrder);
    m_table->horizontalHeader()->setStretchLastSection(false);
    m_table->setToolTip(tr("Click a row to select its block"));
    connect(m_table, &QTableView::clicked, this, &MassiveView::activateRow);
    connect(m_table, &QTableView::activated, this, &MassiveView::activateRow);

    // The chart gets three fifths.
    auto* split = detail::makeSplitter(Qt::Vertical, m_chart, m_table, 3, 2, {600, 400}, content);
    auto* layout = new QVBoxLayout(content);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_summary);
    layout->addWidget(split, 1);

    m_stack = detail::makePlaceholderStack(this, m_placeholder, content, 0);
    setSnapshot(nullptr);
}

MassiveView::~MassiveView() = default;

void MassiveView::setSnapshot(SnapshotPtr snapshot)
{
    m_snapshot = std::move(snapshot);
    const bool has = m_snapshot && m_snapshot->analysis;
    m_residualModel->setSnapshot(has ? m_snapshot : nullptr);
    m_massiveModel->setSnapshot(has ? m_snapshot : nullptr);
    rebuildChart();
    if (!has) {
        m_placeholder->setText(!m_snapshot
                                   ? tr("No model loaded.\nOpen a model folder to look for massive activations.")
                                   : tr("No analysis yet.\nRun Analyze to measure the residual stream; massive "
                                        "activations (|a| > 100 and > 1000× the median) appear here."));
        m_stack->setCurrentWidget(m_placeholder);
        return;
    }
    const int n = m_massiveModel->rowCount();
    m_summary->setText(n == 0
                           ? tr("No massive activations (|a| > 100 and > 1000× the median |a| of the hidden state) "
                                "in the calibration set.")
                           : tr("%n massive activation(s): |a| > 100 and > 1000× the median |a| of the hidden state. "
                                "Click a row to select its block.",
                                nullptr, n));
    m_table->resizeColumnsToContents();
    // Token text varies most in width; let it take the spare room.
    m_table->horizontalHeader()->setSectionResizeMode(MassiveTableModel::Token, QHeaderView::Stretch);
    m_stack->setCurrentIndex(1);
}

bool MassiveView::showsPlaceholder() const
{
    return m_stack->currentWidget() == m_placeholder;
}

QString MassiveView::placeholderText() const
{
    return m_placeholder->text();
}

QList<Exportable*> MassiveView::exportables() const
{
    return {m_chart};
}

void MassiveView::activateRow(const QModelIndex& proxyIndex)
{
    if (!proxyIndex.isValid()) return;
    const MassiveActivation* m = m_massiveModel->activation(m_proxy->mapToSource(proxyIndex).row());
    if (m) m_selection->selectSite(Selection::siteName(m->layer, QString::fromLatin1(pointName(BlockPoint::AttnIn))));
}

void MassiveView::rebuildChart()
{
    m_chart->clear();
    const int rows = m_residualModel->rowCount();
    if (rows == 0) return;
    QChart* chart = m_chart->chart();
    static const QColor colours[] = {QColor(200, 40, 40), QColor(230, 130, 20), QColor(220, 190, 40),
                                     QColor(40, 90, 170)};
    double lo = std::numeric_limits<double>::max(), hi = 0;
    QList<QLineSeries*> lines;
    for (int col = ResidualDepthModel::Top1; col <= ResidualDepthModel::Median; ++col) {
        auto* line = new QLineSeries;
        line->setName(m_residualModel->headerData(col, Qt::Horizontal).toString());
        line->setPointsVisible(true);
        QPen pen(colours[col - ResidualDepthModel::Top1], col == ResidualDepthModel::Median ? 2.5 : 2);
        if (col == ResidualDepthModel::Median) pen.setStyle(Qt::DashLine);
        line->setPen(pen);
        for (int r = 0; r < rows; ++r) {
            const double v = m_residualModel->value(r, col);
            if (!(v > 0) || !std::isfinite(v)) continue; // a log axis cannot show 0
            line->append(m_residualModel->value(r, ResidualDepthModel::Block), v);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        lines << line;
    }
    if (hi <= 0) return;
    auto* x = detail::blockAxis(tr("block (residual stream after it)"),
                                m_residualModel->value(0, ResidualDepthModel::Block),
                                m_residualModel->value(rows - 1, ResidualDepthModel::Block), rows);
    auto* y = detail::decadeAxis(tr("|a| (log)"), lo, hi);
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (QLineSeries* line : lines) {
        chart->addSeries(line);
        line->attachAxis(x);
        line->attachAxis(y);
        m_chart->attachHover(line, [line](int i, const QBarSet*) {
            return tr("block %1\n%2 = %3").arg(int(line->at(i).x())).arg(line->name()).arg(line->at(i).y(), 0, 'g', 5);
        });
        // Clicking a point selects that block, like the table.
        connect(line, &QXYSeries::clicked, this, [this](const QPointF& p) {
            m_selection->selectSite(
                Selection::siteName(qRound(p.x()), QString::fromLatin1(pointName(BlockPoint::AttnIn))));
        });
    }
}

QString MassiveView::chartCsv() const
{
    QString out = QStringLiteral("block,top1,top2,top3,median\n");
    for (int r = 0; r < m_residualModel->rowCount(); ++r) {
        out += QString::number(int(m_residualModel->value(r, ResidualDepthModel::Block)));
        for (int col = ResidualDepthModel::Top1; col <= ResidualDepthModel::Median; ++col)
            out += ',' + QString::number(m_residualModel->value(r, col), 'g', 6);
        out += '\n';
    }
    return out;
}

} // namespace ql
