#include "compareview.h"

#include "histogramchart.h"

#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>

namespace ql {

namespace {

enum Column { Method, Bits, WeightError, OutputError, Kl, Top1, Ppl, Columns };

} // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent)
{
    m_title = new QLabel(tr("No comparison yet: select a layer, then Plan > Compare Methods on Layer."), this);
    m_title->setWordWrap(true);
    m_table = new QTableWidget(0, Columns, this);
    m_table->setHorizontalHeaderLabels({tr("method"), tr("bits/weight"), tr("weight rel. error"),
                                        tr("output rel. error"), tr("quick KL"), tr("top-1"), tr("ppl")});
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    connect(m_table, &QTableWidget::currentCellChanged, this, [this](int row) { showError(row); });
    m_weights = new HistogramChart(tr("Weights"), this);
    m_error = new HistogramChart(tr("Weight error"), this);
    auto* charts = new QSplitter(Qt::Horizontal, this);
    charts->addWidget(m_weights);
    charts->addWidget(m_error);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_table);
    split->addWidget(charts);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_title);
    layout->addWidget(split, 1);
}

void CompareView::setComparison(const LayerComparison& c)
{
    m_comparison = c;
    const QString layer = QString::fromStdString(c.layer);
    m_title->setText(tr("%n method(s) on %1, each alone with every other layer float (after the candidate's "
                        "transforms, named before its method); KL, top-1 and perplexity on the quick slice. Bold: the "
                        "best of each column.",
                        nullptr, int(c.methods.size()))
                         .arg(layer));
    m_table->setRowCount(int(c.methods.size()));
    auto cell = [](const QString& text, double sortKey) {
        auto* item = new QTableWidgetItem(text);
        item->setData(Qt::UserRole, sortKey);
        item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        return item;
    };
    for (int r = 0; r < int(c.methods.size()); ++r) {
        const LayerMethodResult& m = c.methods[size_t(r)];
        m_table->setItem(r, Method, new QTableWidgetItem(QString::fromStdString(m.label)));
        m_table->setItem(r, Bits, cell(QString::number(m.bitsPerWeight, 'f', 3), m.bitsPerWeight));
        m_table->setItem(r, WeightError, cell(QString::number(m.weightRelError, 'e', 3), m.weightRelError));
        m_table->setItem(r, OutputError,
                         m.outputRelMse ? cell(QString::number(*m.outputRelMse, 'e', 3), *m.outputRelMse)
                                        : cell(tr("–"), NAN));
        m_table->setItem(r, Kl, cell(QString::number(m.kl.meanKl, 'e', 3), m.kl.meanKl));
        m_table->setItem(r, Top1, cell(QString::number(100.0 * m.kl.top1Agreement, 'f', 2) + '%', -m.kl.top1Agreement));
        m_table->setItem(r, Ppl, cell(QString::number(m.kl.pplModel, 'f', 3), m.kl.pplModel));
    }
    // The best (smallest key) of each measured column in bold.
    for (int col = WeightError; col < Columns; ++col) {
        int best = -1;
        for (int r = 0; r < m_table->rowCount(); ++r) {
            const double v = m_table->item(r, col)->data(Qt::UserRole).toDouble();
            if (!std::isnan(v) && (best < 0 || v < m_table->item(best, col)->data(Qt::UserRole).toDouble())) best = r;
        }
        if (best < 0) continue;
        QFont f = m_table->item(best, col)->font();
        f.setBold(true);
        m_table->item(best, col)->setFont(f);
    }
    m_weights->setHistogram(c.weights.histCounts, c.weights.histEdges, layer, tr("Weights of %1").arg(layer),
                            tr("weight"));
    m_table->setCurrentCell(c.methods.empty() ? -1 : 0, 0);
    showError(c.methods.empty() ? -1 : 0);
}

void CompareView::showError(int row)
{
    if (row < 0 || row >= int(m_comparison.methods.size())) {
        m_error->clearHistogram(tr("Weight error"));
        return;
    }
    const LayerMethodResult& m = m_comparison.methods[size_t(row)];
    const QString label = QString::fromStdString(m.label);
    m_error->setHistogram(m.error.histCounts, m.error.histEdges, label, tr("Error W − Ŵ of %1").arg(label),
                          tr("W − Ŵ"));
}

} // namespace ql
