#pragma once

#include <QStyledItemDelegate>

namespace ql {

class PlanTableModel;

/// Editors for the plan table that offer only valid choices: the methods the plugins declare,
/// the format table's ids, integer bits 2–8, sym/asym, and the group sizes.
class PlanDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    /// A delegate reading its choices from `model`'s plan.
    explicit PlanDelegate(PlanTableModel* model, QObject* parent = nullptr);

    QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    void setEditorData(QWidget* editor, const QModelIndex& index) const override;
    void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override;

private:
    PlanTableModel* m_model;
};

} // namespace ql
