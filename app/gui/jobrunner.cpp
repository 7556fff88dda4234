#include "jobrunner.h"

#include <algorithm>
#include <cerrno>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ql {

void JobRunner::yieldToUiThread()
{
#ifdef __linux__
    // Linux schedules each thread by its own nice value; raising it needs no privilege.
    thread_local bool lowered = false;
    if (lowered) return;
    lowered = true;
    const auto tid = id_t(::syscall(SYS_gettid));
    errno = 0;
    const int nice = ::getpriority(PRIO_PROCESS, tid);
    if (errno == 0) ::setpriority(PRIO_PROCESS, tid, std::min(19, nice + 10));
#endif
}

JobRunner::JobRunner(QObject* parent) : QObject(parent), m_pool(new QThreadPool)
{
    // Progress is read on a timer rather than signalled per update: the core reports far more
    // often than a person can read, and the UI thread must stay free.
    m_tick.setInterval(100);
    connect(&m_tick, &QTimer::timeout, this, [this]() {
        for (Job* j : std::as_const(m_jobs))
            if (j->state() == Job::State::Running) emit j->updated();
    });
}

JobRunner::~JobRunner()
{
    cancelAll();
    for (auto& [job, future] : m_futures)
        if (job->state() == Job::State::Running) future.waitForFinished(); // not the abandoned ones
    if (m_abandoned == 0) delete m_pool;
}

int JobRunner::running() const
{
    int n = 0;
    for (const Job* j : m_jobs) n += j->state() == Job::State::Running;
    return n;
}

void JobRunner::cancelAll()
{
    for (Job* j : std::as_const(m_jobs)) j->cancel();
}

void JobRunner::armStopCheck(Job* job)
{
    QTimer::singleShot(m_cancelGraceMs, job, [this, job]() { checkStopped(job); });
}

void JobRunner::checkStopped(Job* job)
{
    if (job->state() != Job::State::Running) return;
    const std::vector<std::string> calls = m_stalls ? m_stalls() : std::vector<std::string>{};
    if (calls.empty()) { // the core's own work stops at its next check: wait for it
        armStopCheck(job);
        return;
    }
    QStringList inside;
    for (const auto& c : calls) inside << QString::fromStdString(c);
    job->finish(Job::State::Failed,
                tr("did not stop within %1 s of the cancel; it is inside %2. The job was abandoned: its thread "
                   "runs on and its result will be dropped.")
                    .arg(m_cancelGraceMs / 1000.0)
                    .arg(inside.join(QStringLiteral("; "))));
    ++m_abandoned;
    m_pool->setMaxThreadCount(m_pool->maxThreadCount() + 1); // new jobs get the thread it holds
    jobEnded(job);
}

void JobRunner::jobBegan(Job* job)
{
    connect(job, &Job::cancelRequested, this, [this, job]() { armStopCheck(job); });
    m_jobs.append(job);
    if (!m_tick.isActive()) m_tick.start();
    emit jobStarted(job);
}

void JobRunner::jobEnded(Job* job)
{
    emit jobFinished(job);
    if (running() == 0) {
        m_tick.stop();
        emit idle();
    }
}

} // namespace ql
