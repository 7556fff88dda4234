#include "pagegate.h"

#include <QEvent>
#include <QWidget>

namespace ql {

PageGate::PageGate(QWidget* page) : QObject(page), m_page(page) { page->installEventFilter(this); }

void PageGate::run(std::function<void()> work)
{
    if (m_page && m_page->isVisible()) {
        m_pending = nullptr;
        work();
    } else {
        m_pending = std::move(work);
    }
}

bool PageGate::eventFilter(QObject* watched, QEvent* event)
{
    if (watched == m_page && event->type() == QEvent::Show && m_pending) {
        auto work = std::move(m_pending);
        m_pending = nullptr;
        work();
    }
    return QObject::eventFilter(watched, event);
}

} // namespace ql
