#include "plandelegate.h"

#include "plantablemodel.h"

#include <QComboBox>
#include <QSpinBox>

namespace ql {

PlanDelegate::PlanDelegate(PlanTableModel* model, QObject* parent) : QStyledItemDelegate(parent), m_model(model) {}

QWidget* PlanDelegate::createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const
{
    const PlanSnapshotPtr plan = m_model->plan();
    if (!plan) return nullptr;
    switch (index.column()) {
    case PlanTableModel::MethodColumn: {
        auto* box = new QComboBox(parent);
        for (const auto& [id, params] : plan->methods) box->addItem(QString::fromStdString(id));
        box->addItem(QStringLiteral("float")); // keep the layer unquantized (the recipe's skip list)
        return box;
    }
    case PlanTableModel::FormatColumn: {
        auto* box = new QComboBox(parent);
        for (const std::string& id : plan->formats) box->addItem(QString::fromStdString(id));
        return box;
    }
    case PlanTableModel::BitsColumn: {
        auto* spin = new QSpinBox(parent);
        spin->setRange(2, 8);
        return spin;
    }
    case PlanTableModel::SymColumn: {
        auto* box = new QComboBox(parent);
        box->addItem(tr("sym"), true);
        box->addItem(tr("asym"), false);
        return box;
    }
    case PlanTableModel::GroupColumn: {
        auto* box = new QComboBox(parent);
        box->setEditable(true); // any positive group size; the list holds the usual ones
        box->addItems({QStringLiteral("32"), QStringLiteral("64"), QStringLiteral("128"), QStringLiteral("256"),
                       QStringLiteral("per_channel"), QStringLiteral("per_tensor")});
        return box;
    }
    default: return QStyledItemDelegate::createEditor(parent, option, index);
    }
}

void PlanDelegate::setEditorData(QWidget* editor, const QModelIndex& index) const
{
    const QVariant v = index.data(Qt::EditRole);
    if (auto* spin = qobject_cast<QSpinBox*>(editor)) {
        spin->setValue(v.toInt());
    } else if (auto* box = qobject_cast<QComboBox*>(editor)) {
        const int at = index.column() == PlanTableModel::SymColumn ? box->findData(v.toBool())
                                                                   : box->findText(v.toString());
        if (at >= 0)
            box->setCurrentIndex(at);
        else if (box->isEditable())
            box->setEditText(v.toString());
    } else {
        QStyledItemDelegate::setEditorData(editor, index);
    }
}

void PlanDelegate::setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const
{
    if (auto* spin = qobject_cast<QSpinBox*>(editor)) {
        model->setData(index, spin->value());
    } else if (auto* box = qobject_cast<QComboBox*>(editor)) {
        if (index.column() == PlanTableModel::SymColumn)
            model->setData(index, box->currentData().toBool());
        else
            model->setData(index, box->currentText().trimmed());
    } else {
        QStyledItemDelegate::setModelData(editor, model, index);
    }
}

} // namespace ql
