#include "planeditor.h"

#include "paramform.h"
#include "plandelegate.h"
#include "plantablemodel.h"
#include "tableexport.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSplitter>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>

#include <algorithm>

namespace ql {

PlanEditor::PlanEditor(QWidget* parent) : AnalysisPage(parent)
{
    auto* layout = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    m_summary = new QLabel(this);
    m_summary->setObjectName(QStringLiteral("planSummary"));
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    top->addWidget(m_summary, 1);
    m_fullEval = new QPushButton(tr("Full evaluation"), this);
    m_fullEval->setToolTip(tr("Perplexity and KL of this plan on the whole evaluation text, as a job"));
    top->addWidget(m_fullEval);
    layout->addLayout(top);
    m_error = new QLabel(this);
    m_error->setObjectName(QStringLiteral("planError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: #b00020"));
    m_error->hide();
    layout->addWidget(m_error);

    m_model = new PlanTableModel(this);
    m_table = new QTableView(this);
    m_table->setModel(m_model);
    m_table->setItemDelegate(new PlanDelegate(m_model, m_table));
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_table->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed |
                             QAbstractItemView::SelectedClicked);
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 6);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setStretchLastSection(true);
    // Columns as wide as their contents: full layer names, every number readable.
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setResizeContentsPrecision(64);

    m_form = new ParamForm(this);
    auto* formScroll = new QScrollArea(this);
    formScroll->setWidget(m_form);
    formScroll->setWidgetResizable(true);

    auto* rules = new QWidget(this);
    auto* rulesLayout = new QVBoxLayout(rules);
    rulesLayout->setContentsMargins(0, 0, 0, 0);
    m_recipeText = new QPlainTextEdit(rules);
    m_recipeText->setObjectName(QStringLiteral("recipeText"));
    m_recipeText->setLineWrapMode(QPlainTextEdit::NoWrap);
    QFont mono(QStringLiteral("monospace"));
    mono.setStyleHint(QFont::TypeWriter);
    m_recipeText->setFont(mono);
    m_applyRecipe = new QPushButton(tr("Apply rules"), rules);
    m_applyRecipe->setToolTip(tr("Replace the plan by this recipe (rules, overrides, skip); undoable"));
    rulesLayout->addWidget(
        new QLabel(tr("Ordered glob rules (first match wins), overrides in order, skip globs:"), rules));
    rulesLayout->addWidget(m_recipeText, 1);
    rulesLayout->addWidget(m_applyRecipe, 0, Qt::AlignRight);

    m_tabs = new QTabWidget(this);
    m_tabs->addTab(formScroll, tr("Parameters"));
    m_tabs->addTab(rules, tr("Rules"));

    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(m_table);
    split->addWidget(m_tabs);
    split->setStretchFactor(0, 4);
    split->setStretchFactor(1, 1);
    split->setSizes({1000, 260});
    layout->addWidget(split, 1);

    m_export = std::make_unique<TableExport>(tr("Quantization plan"), m_table);

    connect(m_model, &PlanTableModel::editRequested, this, &PlanEditor::onCellEdit);
    connect(m_table->selectionModel(), &QItemSelectionModel::selectionChanged, this, &PlanEditor::updateForm);
    connect(m_form, &ParamForm::valueChanged, this, [this](const QString& name, const QString& value) {
        // The parameter goes to the selected layers that run the form's method.
        QStringList layers;
        for (const QString& l : selectedLayers()) {
            const int row = m_model->rowOfLayer(l);
            if (m_model->index(row, PlanTableModel::MethodColumn).data(Qt::EditRole).toString() == m_form->method())
                layers << l;
        }
        if (!layers.isEmpty()) emit editRequested(layers, QStringLiteral("params.") + name, value);
    });
    connect(m_applyRecipe, &QPushButton::clicked, this,
            [this]() { emit recipeTextApplied(m_recipeText->toPlainText()); });
    connect(m_fullEval, &QPushButton::clicked, this, &PlanEditor::fullEvaluationRequested);
    setPlan(nullptr);
}

PlanEditor::~PlanEditor() = default;

void PlanEditor::setPlan(PlanSnapshotPtr plan)
{
    const bool recipeChanged = !plan || !m_plan || plan->recipeJson != m_plan->recipeJson;
    m_plan = std::move(plan);
    m_model->setPlan(m_plan);
    if (recipeChanged) m_recipeText->setPlainText(m_plan ? QString::fromStdString(m_plan->recipeJson) : QString());
    m_error->setVisible(m_plan && !m_plan->error.empty());
    m_error->setText(m_plan ? QString::fromStdString(m_plan->error) : QString());
    m_fullEval->setEnabled(m_plan && m_plan->error.empty());
    m_applyRecipe->setEnabled(bool(m_plan));
    updateSummary();
    // Queued: a plan may arrive while a form field is still emitting the edit that caused it.
    QMetaObject::invokeMethod(this, &PlanEditor::updateForm, Qt::QueuedConnection);
}

QList<Exportable*> PlanEditor::exportables() const
{
    return {m_export.get()};
}

QStringList PlanEditor::selectedLayers() const
{
    std::vector<int> rows;
    for (const QModelIndex& i : m_table->selectionModel()->selectedRows()) rows.push_back(i.row());
    std::sort(rows.begin(), rows.end());
    QStringList out;
    for (int r : rows) out << m_model->layerName(r);
    return out;
}

QString PlanEditor::summaryText() const
{
    return m_summary->text();
}

void PlanEditor::onCellEdit(const QString& layer, const QString& key, const QString& value)
{
    // An edit of a selected row applies to every selected row; of another row, to that row.
    QStringList layers = selectedLayers();
    if (!layers.contains(layer)) layers = {layer};
    emit editRequested(layers, key, value);
}

void PlanEditor::updateSummary()
{
    if (!m_plan) {
        m_summary->setText(tr("Open a model to make a quantization plan."));
        return;
    }
    const PlanSize& s = m_plan->size;
    QString text = tr("<b>%1</b> bits/weight · <b>%2 MB</b>")
                       .arg(m_plan->measuredBitsPerWeight
                                ? QString::number(*m_plan->measuredBitsPerWeight, 'f', 3)
                                : QStringLiteral("≈ ") + QString::number(s.bitsPerWeight, 'f', 3))
                       .arg(double(s.modelBytes) / 1e6, 0, 'f', 2);
    auto line = [this](const PlanMeasure& m) {
        return tr("KL <b>%1</b> · top-1 %2% · ppl <b>%3</b> (float %4) on %5 × %6 tokens%7")
            .arg(m.kl.meanKl, 0, 'g', 4)
            .arg(100.0 * m.kl.top1Agreement, 0, 'f', 2)
            .arg(m.kl.pplModel, 0, 'f', 3)
            .arg(m.kl.pplRef, 0, 'f', 3)
            .arg(m.windows)
            .arg(m.ctx)
            .arg(m.bf16 ? tr(", bf16 products") : QString());
    };
    if (m_plan->measure) text += QStringLiteral(" · ") + line(*m_plan->measure);
    if (m_plan->full) text += tr("<br>Full evaluation: ") + line(*m_plan->full);
    if (m_plan->measuring) text += tr(" · <i>measuring…</i>");
    m_summary->setText(text);
}

void PlanEditor::updateForm()
{
    const QStringList layers = selectedLayers();
    QString method;
    const PlanRow* first = nullptr;
    if (m_plan)
        for (const QString& l : layers) {
            const int row = m_model->rowOfLayer(l);
            if (row < 0 || m_plan->rows[size_t(row)].spec.skip) continue;
            first = &m_plan->rows[size_t(row)];
            method = QString::fromStdString(first->spec.method);
            break;
        }
    if (!first) {
        m_formKey.clear();
        m_form->setParameters({}, {}, {});
        return;
    }
    // Rebuilt only when what it shows changes: the field being edited stays the same widget.
    QString key = method + QLatin1Char('|') + QString::fromStdString(first->layer);
    for (const auto& [name, value] : first->spec.params)
        key += QLatin1Char('|') + QString::fromStdString(name + '=' + paramValueText(value));
    if (key == m_formKey) return;
    m_formKey = key;
    auto it = m_plan->methods.find(first->spec.method);
    static const std::vector<ParamSpec> none;
    m_form->setParameters(method, it != m_plan->methods.end() ? it->second : none, first->spec.params);
}

} // namespace ql
