#pragma once
// Layout pieces the view widgets share: the greyed empty-state label, the placeholder/page stack,
// a page of a control bar over a body, two-pane splitters and the read-only row tables.

#include <QList>
#include <Qt>

QT_BEGIN_NAMESPACE
class QAbstractItemModel;
class QLabel;
class QLayout;
class QSplitter;
class QStackedWidget;
class QTableView;
class QWidget;
QT_END_NAMESPACE

namespace ql::detail {

/// A centred, word-wrapped, greyed label for an empty state, `margin` pixels inside its frame.
QLabel* makePlaceholder(QWidget* parent, int margin = 0);

/// Fills `owner` with a stack showing `placeholder` (index 0) or `page` (index 1), `margin` pixels
/// from its edges.
QStackedWidget* makePlaceholderStack(QWidget* owner, QWidget* placeholder, QWidget* page, int margin = 4);

/// Lays out `page`: the `bar` over a `body` that takes all the spare height, `margin` pixels from its edges.
void layOutPage(QWidget* page, QLayout* bar, QWidget* body, int margin = 0);

/// A splitter of two panes growing as `firstStretch` : `secondStretch`, starting at `sizes`
/// (proportions, scaled to the real size on first layout).
QSplitter* makeSplitter(Qt::Orientation orientation, QWidget* first, QWidget* second, int firstStretch,
                        int secondStretch, const QList<int>& sizes, QWidget* parent = nullptr);

/// A read-only table of `model` selecting one whole row at a time, with compact rows and no row
/// numbers, in the model's order until the user clicks a header.
QTableView* makeRowTable(QAbstractItemModel* model, QWidget* parent);

} // namespace ql::detail
