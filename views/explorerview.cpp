#include "explorerview.h"

#include "modeltreemodel.h"
#include "selection.h"

#include <QHeaderView>
#include <QStyle>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>

namespace ql {

ExplorerView::ExplorerView(Selection* selection, QWidget* parent)
    : QWidget(parent), m_selection(selection), m_model(new ModelTreeModel(this)), m_tree(new QTreeView(this))
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_tree);
    m_tree->setModel(m_model);
    m_tree->setUniformRowHeights(true);
    m_tree->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this, [this](const QModelIndex& current) {
        const QString layer = m_model->layerName(current);
        if (!layer.isEmpty()) m_selection->selectLayer(layer);
    });
    connect(m_selection, &Selection::changed, this, &ExplorerView::followSelection);
}

QSize ExplorerView::sizeHint() const
{
    // Every column at its header's width (wider than a 7B model's shapes, counts and dtypes),
    // the name column also wide enough for an indented layer name, plus frame and scroll bar:
    // the width at which nothing is cut, known before any model is open.
    const QHeaderView* header = m_tree->header();
    const int margin = 2 * style()->pixelMetric(QStyle::PM_FocusFrameHMargin) + 8;
    const int name = 2 * m_tree->indentation() + m_tree->fontMetrics().horizontalAdvance(QStringLiteral("down_proj")) +
                     margin;
    int width = 2 * m_tree->frameWidth() + style()->pixelMetric(QStyle::PM_ScrollBarExtent) + 2;
    for (int c = 0; c < header->count(); ++c)
        width += c == 0 ? std::max(name, header->sectionSizeHint(c)) : header->sectionSizeHint(c);
    return {width, QWidget::sizeHint().height()};
}

void ExplorerView::setSnapshot(SnapshotPtr snapshot)
{
    m_model->setSnapshot(std::move(snapshot));
    followSelection();
}

void ExplorerView::followSelection()
{
    const QModelIndex idx = m_model->indexOfLayer(m_selection->layer());
    if (!idx.isValid() || idx == m_tree->currentIndex()) return;
    m_tree->setCurrentIndex(idx);
    m_tree->scrollTo(idx);
}

} // namespace ql
