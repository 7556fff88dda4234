#include "rundiffview.h"

#include <QCheckBox>
#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QVBoxLayout>

namespace ql {

namespace {

enum Column { Layer, SpecA, SpecB, BitsA, BitsB, OutA, OutB, Changed, Columns };

QTableWidgetItem* numberCell(const std::optional<double>& v, char format, int precision)
{
    auto* item = new QTableWidgetItem(v ? QString::number(*v, format, precision) : QStringLiteral("–"));
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

} // namespace

RunDiffView::RunDiffView(QWidget* parent) : QWidget(parent)
{
    m_title = new QLabel(tr("No runs compared yet: keep two runs (Plan > Quantize), then Plan > Compare Kept Runs."),
                         this);
    m_title->setWordWrap(true);
    m_only = new QCheckBox(tr("Only layers that differ"), this);
    m_only->setChecked(true);
    connect(m_only, &QCheckBox::toggled, this, [this] { fill(); });
    m_table = new QTableWidget(0, Columns, this);
    m_table->setHorizontalHeaderLabels({tr("layer"), tr("A"), tr("B"), tr("bits A"), tr("bits B"), tr("output err. A"),
                                        tr("output err. B"), tr("differs in")});
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setStretchLastSection(true);
    connect(m_table, &QTableWidget::cellActivated, this, [this](int row) {
        if (auto* item = m_table->item(row, Layer)) emit layerActivated(item->text());
    });
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(m_title);
    layout->addWidget(m_only);
    layout->addWidget(m_table, 1);
}

void RunDiffView::setDiff(const RunDiff& diff, const QString& nameA, const QString& nameB)
{
    m_diff = diff;
    m_nameA = nameA;
    m_nameB = nameB;
    QString title = tr("A: %1<br>B: %2<br>%3 of %n layer(s) differ.", nullptr, int(diff.rows.size()))
                        .arg(nameA.toHtmlEscaped(), nameB.toHtmlEscaped())
                        .arg(diff.changedLayers);
    if (!diff.sameModel) title += tr(" <b>The runs were quantized from different weights.</b>");
    m_title->setText(title);
    fill();
}

void RunDiffView::setOnlyDifferences(bool only)
{
    m_only->setChecked(only);
}

void RunDiffView::fill()
{
    const bool only = m_only->isChecked();
    m_table->setRowCount(0);
    const QColor highlight = palette().color(QPalette::Highlight);
    QColor tint = highlight;
    tint.setAlpha(48);
    for (const RunDiffRow& r : m_diff.rows) {
        const bool differs = !r.changed.empty();
        if (only && !differs) continue;
        const int row = m_table->rowCount();
        m_table->insertRow(row);
        QStringList keys;
        for (const std::string& k : r.changed) keys << QString::fromStdString(k);
        auto label = [](const std::optional<RunLayer>& s) {
            return s ? QString::fromStdString(runLayerLabel(*s)) : QStringLiteral("–");
        };
        auto bits = [](const std::optional<RunLayer>& s) {
            return s ? std::optional<double>(s->bitsPerWeight) : std::nullopt;
        };
        auto out = [](const std::optional<RunLayer>& s) { return s ? s->outputRelMse : std::nullopt; };
        m_table->setItem(row, Layer, new QTableWidgetItem(QString::fromStdString(r.layer)));
        m_table->setItem(row, SpecA, new QTableWidgetItem(label(r.a)));
        m_table->setItem(row, SpecB, new QTableWidgetItem(label(r.b)));
        m_table->setItem(row, BitsA, numberCell(bits(r.a), 'f', 3));
        m_table->setItem(row, BitsB, numberCell(bits(r.b), 'f', 3));
        m_table->setItem(row, OutA, numberCell(out(r.a), 'e', 3));
        m_table->setItem(row, OutB, numberCell(out(r.b), 'e', 3));
        m_table->setItem(row, Changed, new QTableWidgetItem(keys.join(QStringLiteral(", "))));
        if (!differs) continue;
        for (int c = 0; c < Columns; ++c) m_table->item(row, c)->setBackground(tint);
        QFont f = m_table->item(row, Layer)->font();
        f.setBold(true);
        m_table->item(row, Layer)->setFont(f);
    }
}

} // namespace ql
