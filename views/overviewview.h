#pragma once

#include "analysispage.h"
#include "exportable.h"
#include "snapshot.h"

#include <QList>
#include <QWidget>

#include <memory>

QT_BEGIN_NAMESPACE
class QLabel;
class QLineEdit;
class QSortFilterProxyModel;
class QStackedWidget;
class QTableView;
QT_END_NAMESPACE

namespace ql {

class LayerTableModel;
class Selection;
class TableExport;

/// The Overview: one sortable, filterable row per linear layer with its activation, weight and
/// sensitivity statistics. Clicking a row selects the layer; the selected layer's row follows the
/// window's selection.
class OverviewView : public AnalysisPage {
    Q_OBJECT
public:
    /// A view following (and setting) `selection`.
    explicit OverviewView(Selection* selection, QWidget* parent = nullptr);
    ~OverviewView() override;

    /// Shows a snapshot (null: a placeholder).
    void setSnapshot(SnapshotPtr snapshot) override;
    /// What can be exported: the table (CSV of the rows shown, picture of the table).
    QList<Exportable*> exportables() const override;

    /// The table model (source, model order).
    LayerTableModel* model() const { return m_model; }
    /// The sort/filter proxy the table shows (sorts on Qt::UserRole).
    QSortFilterProxyModel* proxyModel() const { return m_proxy; }
    /// The table.
    QTableView* tableView() const { return m_table; }
    /// The name filter.
    QLineEdit* filterEdit() const { return m_filter; }
    /// True while the placeholder is shown instead of the table.
    bool showsPlaceholder() const;
    /// The placeholder's text.
    QString placeholderText() const;

private:
    void applyFilter(const QString& text);
    void followSelection();
    void onCurrentRowChanged(const QModelIndex& current);
    void updateCount();

    Selection* m_selection;
    SnapshotPtr m_snapshot;
    LayerTableModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QStackedWidget* m_stack;
    QLabel* m_placeholder;
    QLabel* m_summary;
    QLabel* m_count;
    QLineEdit* m_filter;
    QTableView* m_table;
    std::unique_ptr<TableExport> m_export;
    bool m_syncing = false; // true while the view itself moves the current row
};

} // namespace ql
