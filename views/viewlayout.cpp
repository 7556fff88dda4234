#include "viewlayout.h"

#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>

namespace ql::detail {

QLabel* makePlaceholder(QWidget* parent, int margin)
{
    auto* label = new QLabel(parent);
    label->setAlignment(Qt::AlignCenter);
    label->setWordWrap(true);
    label->setEnabled(false); // the disabled palette greys it out like other empty states
    label->setMargin(margin);
    return label;
}

QStackedWidget* makePlaceholderStack(QWidget* owner, QWidget* placeholder, QWidget* page, int margin)
{
    auto* stack = new QStackedWidget(owner);
    stack->addWidget(placeholder);
    stack->addWidget(page);
    auto* layout = new QVBoxLayout(owner);
    layout->setContentsMargins(margin, margin, margin, margin);
    layout->addWidget(stack);
    return stack;
}

void layOutPage(QWidget* page, QLayout* bar, QWidget* body, int margin)
{
    auto* layout = new QVBoxLayout(page);
    layout->setContentsMargins(margin, margin, margin, margin);
    layout->addLayout(bar);
    layout->addWidget(body, 1);
}

QSplitter* makeSplitter(Qt::Orientation orientation, QWidget* first, QWidget* second, int firstStretch,
                        int secondStretch, const QList<int>& sizes, QWidget* parent)
{
    auto* split = new QSplitter(orientation, parent);
    split->addWidget(first);
    split->addWidget(second);
    split->setStretchFactor(0, firstStretch);
    split->setStretchFactor(1, secondStretch);
    split->setSizes(sizes);
    return split;
}

QTableView* makeRowTable(QAbstractItemModel* model, QWidget* parent)
{
    auto* table = new QTableView(parent);
    table->setModel(model);
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    table->setSelectionMode(QAbstractItemView::SingleSelection);
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table->setAlternatingRowColors(true);
    table->verticalHeader()->hide();
    table->verticalHeader()->setDefaultSectionSize(table->fontMetrics().height() + 6);
    // Sorting by column -1 keeps the source order until a header is clicked.
    table->horizontalHeader()->setSortIndicator(-1, Qt::AscendingOrder);
    table->setSortingEnabled(true);
    return table;
}

} // namespace ql::detail
