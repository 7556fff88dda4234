#pragma once

#include "snapshot.h"

#include <QWidget>

class QTreeView;

namespace ql {

class ModelTreeModel;
class Selection;

/// The model explorer: blocks → linear layers with shapes, parameters and dtype. Clicking a
/// layer selects it for the whole window; the tree follows selections made elsewhere.
class ExplorerView : public QWidget {
    Q_OBJECT
public:
    explicit ExplorerView(Selection* selection, QWidget* parent = nullptr);
    /// Shows the snapshot's layer table (null: empty).
    void setSnapshot(SnapshotPtr snapshot);
    /// The tree's model (tests).
    ModelTreeModel* model() const { return m_model; }
    /// The tree widget (tests).
    QTreeView* tree() const { return m_tree; }
    /// Wide enough for a layer's name, shape and size without scrolling.
    QSize sizeHint() const override;

private:
    void followSelection();

    Selection* m_selection;
    ModelTreeModel* m_model;
    QTreeView* m_tree;
};

} // namespace ql
