#include "pageselection.h"

#include "analysispage.h"

namespace ql {

PageSelection::PageSelection(Selection* master, QObject* parent) : Selection(parent), m_master(master)
{
    connect(master, &Selection::changed, this, [this]() {
        if (!m_page || m_page->isVisible()) pull();
    });
    // The page's own choices go to the window; the guard in Selection stops the echo.
    connect(this, &Selection::changed, master, [this]() {
        if (layer() != m_master->layer()) m_master->selectLayer(layer());
    });
    pull();
}

void PageSelection::setPage(AnalysisPage* page)
{
    disconnect(m_shown);
    m_page = page;
    if (page) m_shown = connect(page, &AnalysisPage::shown, this, &PageSelection::pull);
}

void PageSelection::pull()
{
    if (m_master->layer().isEmpty()) {
        if (!m_master->site().isEmpty()) selectSite(m_master->site());
        return;
    }
    selectLayer(m_master->layer());
}

} // namespace ql
