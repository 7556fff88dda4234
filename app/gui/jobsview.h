#pragma once

#include <QWidget>

class QTreeWidget;
class QTreeWidgetItem;

namespace ql {

class Job;
class JobRunner;

/// The Jobs dock: one row per job with a progress bar, elapsed time, an estimate of the time
/// left, its status line and a Cancel button.
class JobsView : public QWidget {
    Q_OBJECT
public:
    explicit JobsView(JobRunner* runner, QWidget* parent = nullptr);
    /// The list (tests).
    QTreeWidget* list() const { return m_list; }
    /// Room for a few jobs: the dock stays small beside the views until the user enlarges it.
    QSize sizeHint() const override;

private:
    void add(Job* job);
    void refresh(Job* job, QTreeWidgetItem* item);

    QTreeWidget* m_list;
};

} // namespace ql
