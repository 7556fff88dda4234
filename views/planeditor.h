#pragma once

#include "analysispage.h"
#include "plansnapshot.h"

#include <QStringList>

#include <memory>

QT_BEGIN_NAMESPACE
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTableView;
class QTabWidget;
QT_END_NAMESPACE

namespace ql {

class ParamForm;
class PlanTableModel;
class TableExport;

/// The plan editor: the plan table (edited in place, many rows at once), the selected method's
/// parameter form, the recipe's rules, overrides and skips as text, and a summary line with
/// the plan's size and its last quick measure. It computes nothing: every change leaves as a
/// request, and the plan it causes comes back through setPlan.
class PlanEditor : public AnalysisPage {
    Q_OBJECT
public:
    explicit PlanEditor(QWidget* parent = nullptr);
    ~PlanEditor() override;

    /// Shows a plan (null: a placeholder).
    void setPlan(PlanSnapshotPtr plan);
    /// The analysis is not needed by the table; kept for the page interface.
    void setSnapshot(SnapshotPtr snapshot) override { m_snapshot = std::move(snapshot); }
    /// The plan table.
    QList<Exportable*> exportables() const override;

    /// The table model, view and parameter form (tests, screenshots).
    PlanTableModel* model() const { return m_model; }
    QTableView* tableView() const { return m_table; }
    ParamForm* paramForm() const { return m_form; }
    /// The summary line's text.
    QString summaryText() const;
    /// The rule editor (recipe JSON) and its apply button.
    QPlainTextEdit* recipeEditor() const { return m_recipeText; }
    QPushButton* applyRecipeButton() const { return m_applyRecipe; }
    /// Layers selected in the table, in model order.
    QStringList selectedLayers() const;

signals:
    /// Set `key` to `value` on `layers` (edit text form; see docs/recipe.md "Plan edits").
    void editRequested(const QStringList& layers, const QString& key, const QString& value);
    /// Replace the plan by this recipe JSON (the rule editor's Apply).
    void recipeTextApplied(const QString& json);
    /// Evaluate the plan on the whole evaluation text (a job).
    void fullEvaluationRequested();

private:
    void updateForm();
    void updateSummary();
    void onCellEdit(const QString& layer, const QString& key, const QString& value);

    SnapshotPtr m_snapshot;
    PlanSnapshotPtr m_plan;
    PlanTableModel* m_model = nullptr;
    QTableView* m_table = nullptr;
    ParamForm* m_form = nullptr;
    QLabel* m_summary = nullptr;
    QLabel* m_error = nullptr;
    QTabWidget* m_tabs = nullptr;
    QPlainTextEdit* m_recipeText = nullptr;
    QPushButton* m_applyRecipe = nullptr;
    QPushButton* m_fullEval = nullptr;
    std::unique_ptr<TableExport> m_export;
    QString m_formKey; ///< method, first selected layer and its parameters the form shows
};

} // namespace ql
