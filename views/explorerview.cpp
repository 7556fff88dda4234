#include "explorerview.h"

#include "modeltreemodel.h"
#include "selection.h"

#include <QHeaderView>
#include <QTreeView>
#include <QVBoxLayout>

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
