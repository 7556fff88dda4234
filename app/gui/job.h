#pragma once

#include "quantlens/base/feedback.h"

#include <QElapsedTimer>
#include <QObject>
#include <QString>

#include <atomic>
#include <mutex>

namespace ql {

/// One background job as the Jobs dock shows it. Its Feedback is what the core work on the
/// pool thread reports to and polls; the UI reads the same numbers on a timer.
class Job : public QObject, public Feedback {
    Q_OBJECT
public:
    enum class State { Running, Succeeded, Failed, Canceled };

    explicit Job(const QString& title, QObject* parent = nullptr);

    /// What the job does, e.g. "Analysis of stories260k".
    QString title() const { return m_title; }
    /// Running, or how it ended.
    State state() const { return m_state; }
    /// The error of a failed job.
    QString error() const { return m_error; }
    /// Seconds since the job started (frozen when it ends).
    double elapsedSeconds() const;
    /// Estimated seconds left from the progress so far, -1 while unknown.
    double remainingSeconds() const;
    /// Latest progress fraction, from any thread.
    double fraction() const { return m_progress.load(); }
    /// Latest status line, from any thread.
    QString statusText() const;

    // Feedback, called from the worker thread.
    void progress(double fraction) override { m_progress.store(fraction); }
    void message(const std::string& text) override;
    bool isCanceled() const override { return m_canceled.load(); }

public slots:
    /// Asks the work to stop at its next check; the job then ends as Canceled.
    void cancel();

signals:
    /// cancel() was called on the running job (once).
    void cancelRequested();
    /// Progress or status changed (emitted on the UI thread, at most every 100 ms).
    void updated();
    /// The job ended; state() tells how.
    void finished();

private:
    friend class JobRunner;
    void finish(State state, const QString& error = {});

    QString m_title;
    State m_state = State::Running;
    QString m_error;
    QElapsedTimer m_clock;
    double m_endSeconds = -1;
    std::atomic<double> m_progress{0};
    std::atomic<bool> m_canceled{false};
    mutable std::mutex m_mutex;
    std::string m_message;
};

} // namespace ql
