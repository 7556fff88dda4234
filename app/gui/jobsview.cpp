#include "jobsview.h"

#include "jobrunner.h"

#include <QHeaderView>
#include <QProgressBar>
#include <QPushButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>

namespace ql {

namespace {

enum Column { Title, Progress, Elapsed, Left, Status, Action, ColumnCount };

QString duration(double s)
{
    if (s < 0) return QStringLiteral("…");
    if (s < 60) return QStringLiteral("%1 s").arg(s, 0, 'f', 1);
    return QStringLiteral("%1 min %2 s").arg(int(s) / 60).arg(int(s) % 60);
}

QString stateText(const Job* job)
{
    switch (job->state()) {
    case Job::State::Running: return job->statusText();
    case Job::State::Succeeded: return QObject::tr("done");
    case Job::State::Canceled: return QObject::tr("canceled");
    case Job::State::Failed: return QObject::tr("failed: %1").arg(job->error());
    }
    return {};
}

} // namespace

JobsView::JobsView(JobRunner* runner, QWidget* parent) : QWidget(parent), m_list(new QTreeWidget(this))
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_list);
    m_list->setColumnCount(ColumnCount);
    m_list->setHeaderLabels({tr("Job"), tr("Progress"), tr("Elapsed"), tr("Left"), tr("Status"), QString()});
    m_list->setRootIsDecorated(false);
    m_list->header()->setSectionResizeMode(Title, QHeaderView::ResizeToContents);
    m_list->header()->setSectionResizeMode(Status, QHeaderView::Stretch);
    m_list->header()->setStretchLastSection(false);
    for (Job* j : runner->jobs()) add(j);
    connect(runner, &JobRunner::jobStarted, this, &JobsView::add);
}

QSize JobsView::sizeHint() const
{
    // The header and three rows: a job's progress bar sets the row height.
    const int row = std::max(fontMetrics().height() + 8, QProgressBar().sizeHint().height() + 4);
    return {QWidget::sizeHint().width(), m_list->header()->sizeHint().height() + 3 * row + 2 * m_list->frameWidth()};
}

void JobsView::add(Job* job)
{
    auto* item = new QTreeWidgetItem(m_list);
    item->setText(Title, job->title());
    item->setToolTip(Title, job->title());
    auto* bar = new QProgressBar(m_list);
    bar->setRange(0, 1000);
    bar->setTextVisible(true);
    m_list->setItemWidget(item, Progress, bar);
    auto* cancel = new QPushButton(tr("Cancel"), m_list);
    m_list->setItemWidget(item, Action, cancel);
    connect(cancel, &QPushButton::clicked, job, &Job::cancel);
    connect(job, &Job::updated, this, [this, job, item]() { refresh(job, item); });
    refresh(job, item);
    m_list->scrollToItem(item);
}

void JobsView::refresh(Job* job, QTreeWidgetItem* item)
{
    if (auto* bar = qobject_cast<QProgressBar*>(m_list->itemWidget(item, Progress))) {
        bar->setValue(int(job->fraction() * 1000));
        bar->setFormat(QStringLiteral("%1 %").arg(job->fraction() * 100, 0, 'f', 0));
    }
    item->setText(Elapsed, duration(job->elapsedSeconds()));
    item->setText(Left, job->state() == Job::State::Running ? duration(job->remainingSeconds()) : QString());
    item->setText(Status, stateText(job));
    item->setToolTip(Status, stateText(job));
    if (job->state() != Job::State::Running)
        if (QWidget* w = m_list->itemWidget(item, Action)) w->setEnabled(false);
}

} // namespace ql
