#include "overviewview.h"

#include "layertablemodel.h"
#include "selection.h"
#include "tableexport.h"
#include "viewlayout.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QRegularExpression>
#include <QScopedValueRollback>
#include <QSortFilterProxyModel>
#include <QStackedWidget>
#include <QTableView>

namespace ql {

OverviewView::OverviewView(Selection* selection, QWidget* parent)
    : AnalysisPage(parent), m_selection(selection), m_model(new LayerTableModel(this)),
      m_proxy(new QSortFilterProxyModel(this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(Qt::UserRole);
    m_proxy->setFilterKeyColumn(LayerTableModel::NameColumn);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);

    m_placeholder = detail::makePlaceholder(this);

    auto* page = new QWidget(this);
    m_summary = new QLabel(page);
    m_summary->setTextFormat(Qt::PlainText);
    // A long summary is cut, not allowed to set the window's minimum width (its tooltip has it whole).
    m_summary->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_filter = new QLineEdit(page);
    m_filter->setPlaceholderText(tr("Filter by name, e.g. down_proj or layers.1*.mlp"));
    m_filter->setClearButtonEnabled(true);
    m_filter->setMinimumWidth(200);
    m_filter->setMaximumWidth(420);
    m_count = new QLabel(page);

    m_table = detail::makeRowTable(m_proxy, page);
    m_table->setWordWrap(false);
    m_table->horizontalHeader()->setHighlightSections(false);

    auto* bar = new QHBoxLayout;
    bar->addWidget(m_filter, 1);
    bar->addWidget(m_count);
    bar->addStretch(1);
    bar->addWidget(m_summary);
    detail::layOutPage(page, bar, m_table);
    m_stack = detail::makePlaceholderStack(this, m_placeholder, page);

    m_export = std::make_unique<TableExport>(tr("Layer overview"), m_table);

    connect(m_filter, &QLineEdit::textChanged, this, &OverviewView::applyFilter);
    connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current) { onCurrentRowChanged(current); });
    // A click on the row that is already current still selects it (the selection may have moved on).
    connect(m_table, &QTableView::clicked, this, [this](const QModelIndex& index) { onCurrentRowChanged(index); });
    connect(m_proxy, &QAbstractItemModel::rowsInserted, this, &OverviewView::updateCount);
    connect(m_proxy, &QAbstractItemModel::rowsRemoved, this, &OverviewView::updateCount);
    connect(m_proxy, &QAbstractItemModel::modelReset, this, &OverviewView::updateCount);
    connect(m_proxy, &QAbstractItemModel::layoutChanged, this, &OverviewView::updateCount);
    if (m_selection) connect(m_selection, &Selection::changed, this, &OverviewView::followSelection);

    setSnapshot(nullptr);
}

OverviewView::~OverviewView() = default;

void OverviewView::setSnapshot(SnapshotPtr snapshot)
{
    m_snapshot = std::move(snapshot);
    {
        const QScopedValueRollback guard(m_syncing, true);
        m_model->setSnapshot(m_snapshot);
    }

    if (!m_snapshot) {
        m_placeholder->setText(tr("No model open.\n\nOpen a Hugging Face model folder to see its linear layers here."));
        m_stack->setCurrentIndex(0);
        return;
    }
    if (m_snapshot->layers.empty()) {
        m_placeholder->setText(tr("The model has no linear layers to show."));
        m_stack->setCurrentIndex(0);
        return;
    }
    QString summary = tr("%1 · %2 blocks · %3 linear layers")
                          .arg(QString::fromStdString(m_snapshot->modelName))
                          .arg(m_snapshot->blocks)
                          .arg(m_snapshot->layers.size());
    if (const AnalysisResult* a = m_snapshot->analysis.get()) {
        summary += tr(" · calibration %1 × %2 tokens").arg(a->meta.samples).arg(a->meta.seqlen);
        if (a->endToEnd.windows > 0) summary += tr(" · KL on %1 held-out windows").arg(a->endToEnd.windows);
    } else {
        summary += tr(" · no analysis yet: statistics columns fill in once an analysis has run");
    }
    m_summary->setText(summary);
    m_summary->setToolTip(summary);
    m_stack->setCurrentIndex(1);

    m_table->resizeColumnsToContents();
    // Long module names would otherwise push every statistic off screen.
    m_table->setColumnWidth(LayerTableModel::NameColumn, qMin(m_table->columnWidth(LayerTableModel::NameColumn), 280));
    updateCount();
    followSelection();
}

QList<Exportable*> OverviewView::exportables() const
{
    return {m_export.get()};
}

bool OverviewView::showsPlaceholder() const
{
    return m_stack->currentIndex() == 0;
}

QString OverviewView::placeholderText() const
{
    return m_placeholder->text();
}

void OverviewView::applyFilter(const QString& text)
{
    {
        const QScopedValueRollback guard(m_syncing, true);
        m_proxy->setFilterRegularExpression(QRegularExpression(
            QRegularExpression::wildcardToRegularExpression(text, QRegularExpression::UnanchoredWildcardConversion),
            QRegularExpression::CaseInsensitiveOption));
    }
    updateCount();
    followSelection();
}

void OverviewView::updateCount()
{
    m_count->setText(tr("%1 of %2 layers").arg(m_proxy->rowCount()).arg(m_model->rowCount()));
}

void OverviewView::followSelection()
{
    if (!m_selection) return;
    const int row = m_model->rowOfLayer(m_selection->layer());
    const QModelIndex index = row < 0 ? QModelIndex() : m_proxy->mapFromSource(m_model->index(row, 0));
    const QScopedValueRollback guard(m_syncing, true);
    if (index.isValid()) {
        m_table->selectionModel()->setCurrentIndex(index,
                                                   QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        m_table->scrollTo(index);
    } else {
        m_table->selectionModel()->clearSelection();
        m_table->selectionModel()->setCurrentIndex(QModelIndex(), QItemSelectionModel::NoUpdate);
    }
}

void OverviewView::onCurrentRowChanged(const QModelIndex& current)
{
    // Moves made by the view itself (following the selection, filtering, a new snapshot) are not user choices.
    if (m_syncing || !m_selection || !current.isValid()) return;
    const QString layer = current.data(LayerTableModel::LayerNameRole).toString();
    if (!layer.isEmpty()) m_selection->selectLayer(layer);
}

} // namespace ql
