#pragma once

#include "selection.h"

#include <QPointer>

namespace ql {

class AnalysisPage;

/// The selection as one page of the window sees it: it follows the window's selection only
/// while the page is visible (and catches up when the page is shown), and passes the page's
/// own selections on to the window. Hidden views thus do no work on every click. The catch-up
/// runs on the page's AnalysisPage::shown, after the page took its pending snapshot.
class PageSelection : public Selection {
    Q_OBJECT
public:
    /// Follows `master` for `page` (set with setPage once the page exists).
    explicit PageSelection(Selection* master, QObject* parent = nullptr);
    /// The page whose visibility gates the updates.
    void setPage(AnalysisPage* page);

private:
    void pull();

    Selection* m_master;
    QPointer<AnalysisPage> m_page;
    QMetaObject::Connection m_shown;
};

} // namespace ql
