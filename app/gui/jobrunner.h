#pragma once

#include "job.h"

#include "quantlens/base/expected.h"

#include <QFutureWatcher>
#include <QList>
#include <QObject>
#include <QPointer>
#include <QThreadPool>
#include <QTimer>
#include <QtConcurrent>

#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ql {

/// Runs core work off the UI thread (QtConcurrent) and reports through Job objects; the result
/// is handed to a continuation on the UI thread. No event-loop spinning: callers that must wait
/// (tests, screenshots) wait on the finished() signal.
class JobRunner : public QObject {
    Q_OBJECT
public:
    explicit JobRunner(QObject* parent = nullptr);
    /// Cancels every running job and waits for its work to return (the work reports to its Job).
    ~JobRunner() override;

    /// Starts work(job) on the pool; when it succeeds, done(value) runs on the UI thread. A
    /// failure or cancel ends the job with its message and done is not called.
    template <class T>
    Job* run(const QString& title, std::function<Expected<T>(Job&)> work, std::function<void(T&)> done)
    {
        auto* job = new Job(title, this);
        auto result = std::make_shared<std::optional<Expected<T>>>();
        auto* watcher = new QFutureWatcher<void>(job);
        connect(watcher, &QFutureWatcher<void>::finished, this, [this, job, result, done]() {
            if (job->state() != Job::State::Running) return; // abandoned: ended already, result dropped
            Expected<T>& r = **result;
            if (job->isCanceled())
                job->finish(Job::State::Canceled, QStringLiteral("canceled"));
            else if (!r)
                job->finish(Job::State::Failed, QString::fromStdString(r.message()));
            else {
                if (done) done(*r);
                job->finish(Job::State::Succeeded);
            }
            jobEnded(job);
        });
        QFuture<void> future = QtConcurrent::run(m_pool, [job, result, work]() {
            yieldToUiThread();
            // An exception (std::bad_alloc, a plugin's own) fails this job; escaping the pool
            // task it would terminate the application.
            try {
                result->emplace(work(*job));
            } catch (const std::bad_alloc&) {
                result->emplace(makeError("out of memory"));
            } catch (const std::exception& e) {
                result->emplace(makeError(std::string("unexpected error: ") + e.what()));
            } catch (...) {
                result->emplace(makeError("unexpected error (an exception of unknown type)"));
            }
        });
        watcher->setFuture(future);
        m_futures.append({job, future});
        jobBegan(job);
        return job;
    }

    /// Lowers the calling thread's scheduling priority (nice +10, inherited by the OpenMP threads
    /// it starts) once per thread: the UI thread then gets a core the moment it needs one, and a
    /// job loses nothing while the UI is idle. Job threads call it before their work.
    static void yieldToUiThread();

    /// How long a canceled job may take to stop before the runner looks for a plugin call it is
    /// stuck in (10 s by default).
    void setCancelGrace(int ms) { m_cancelGraceMs = ms; }
    /// What reports the plugin calls running now (PluginRegistry::callsInProgress): a canceled
    /// job still running after the grace period while some are is ended as failed, naming them.
    void setStallReporter(std::function<std::vector<std::string>()> calls) { m_stalls = std::move(calls); }
    /// Jobs ended while their work never returned: their threads still run and their results are
    /// dropped.
    int abandoned() const { return m_abandoned; }

    /// Every job of this session, oldest first.
    QList<Job*> jobs() const { return m_jobs; }
    /// Number of jobs still running.
    int running() const;

public slots:
    /// Asks every running job to stop.
    void cancelAll();

signals:
    /// A job was started.
    void jobStarted(ql::Job* job);
    /// A job ended (succeeded, failed or canceled).
    void jobFinished(ql::Job* job);
    /// No job is running any more.
    void idle();

private:
    void jobBegan(Job* job);
    void jobEnded(Job* job);
    // Looks again, after the cancel grace, whether a canceled job has stopped.
    void armStopCheck(Job* job);
    void checkStopped(Job* job);

    QList<Job*> m_jobs;
    QList<std::pair<Job*, QFuture<void>>> m_futures;
    // Jobs run in a pool of their own: Qt's image conversion and scaling on the UI thread wait
    // for tasks on the global pool, which long jobs would otherwise hold for seconds. It is left
    // undeleted when a job was abandoned, since deleting it waits for every thread.
    QThreadPool* m_pool;
    QTimer m_tick;
    int m_cancelGraceMs = 10000;
    std::function<std::vector<std::string>()> m_stalls;
    int m_abandoned = 0;
};

} // namespace ql
