#pragma once

#include <QObject>
#include <QPointer>

#include <functional>

class QWidget;

namespace ql {

/// Runs work for one page of the window at once while the page is visible, or when it is next
/// shown: a new analysis then costs the UI thread only the page in front, not all of them.
/// Only the latest work waits; installed after the page's PageSelection, it runs before the
/// selection catches up, so a page takes the new data before the new selection.
class PageGate : public QObject {
public:
    /// Gates `page`; the gate is a child of the page.
    explicit PageGate(QWidget* page);
    /// Runs `work` now if the page is visible, otherwise when it is shown (replacing older work).
    void run(std::function<void()> work);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    QPointer<QWidget> m_page;
    std::function<void()> m_pending;
};

} // namespace ql
