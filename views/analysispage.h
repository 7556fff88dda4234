#pragma once

#include "snapshot.h"

#include <QList>
#include <QWidget>

namespace ql {

class Exportable;

/// What every page of the window's analysis tabs offers: it shows an analysis snapshot and
/// names what it can export. The window talks to its pages through this interface only.
class AnalysisPage : public QWidget {
    Q_OBJECT
public:
    using QWidget::QWidget;

    /// Shows a snapshot (null: a placeholder).
    virtual void setSnapshot(SnapshotPtr snapshot) = 0;
    /// What can be exported from the page as it is now, the main item first.
    virtual QList<Exportable*> exportables() const = 0;
};

} // namespace ql
