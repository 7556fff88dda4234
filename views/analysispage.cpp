#include "analysispage.h"

namespace ql {

void AnalysisPage::offerSnapshot(SnapshotPtr snapshot)
{
    if (isVisible()) {
        m_pending.reset();
        m_hasPending = false;
        setSnapshot(std::move(snapshot));
    } else {
        m_pending = std::move(snapshot);
        m_hasPending = true;
    }
}

void AnalysisPage::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    if (m_hasPending) {
        m_hasPending = false;
        setSnapshot(std::move(m_pending));
        m_pending.reset();
    }
    emit shown();
}

} // namespace ql
