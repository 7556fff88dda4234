#pragma once

#include "snapshot.h"

#include <QList>
#include <QWidget>

namespace ql {

class Exportable;

/// What every page of the window's analysis tabs offers: it shows an analysis snapshot, names
/// what it can export, and catches up when shown. The window talks to its pages through this
/// interface only.
class AnalysisPage : public QWidget {
    Q_OBJECT
public:
    using QWidget::QWidget;

    /// Shows a snapshot (null: a placeholder).
    virtual void setSnapshot(SnapshotPtr snapshot) = 0;
    /// What can be exported from the page as it is now, the main item first.
    virtual QList<Exportable*> exportables() const = 0;
    /// setSnapshot now while the page is visible, else when it is next shown (only the latest
    /// waits): a new analysis then costs the UI thread only the page in front.
    void offerSnapshot(SnapshotPtr snapshot);

signals:
    /// The page was shown, after taking any snapshot offered while it was hidden, so a
    /// selection that catches up on this signal meets the new data.
    void shown();

protected:
    void showEvent(QShowEvent* event) override;

private:
    SnapshotPtr m_pending;
    bool m_hasPending = false;
};

} // namespace ql
