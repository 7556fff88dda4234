#include "job.h"

namespace ql {

Job::Job(const QString& title, QObject* parent) : QObject(parent), m_title(title)
{
    m_clock.start();
}

double Job::elapsedSeconds() const
{
    return m_endSeconds >= 0 ? m_endSeconds : double(m_clock.elapsed()) / 1000.0;
}

double Job::remainingSeconds() const
{
    const double p = fraction();
    // Before 2 % the rate says little; after the end there is nothing left.
    if (m_state != State::Running) return 0;
    if (p < 0.02) return -1;
    return elapsedSeconds() * (1.0 - p) / p;
}

QString Job::statusText() const
{
    std::lock_guard<std::mutex> lock(m_mutex);
    return QString::fromStdString(m_message);
}

void Job::message(const std::string& text)
{
    std::lock_guard<std::mutex> lock(m_mutex);
    m_message = text;
}

void Job::cancel()
{
    if (m_state != State::Running || m_canceled.exchange(true)) return;
    emit cancelRequested();
}

void Job::finish(State state, const QString& error)
{
    m_endSeconds = double(m_clock.elapsed()) / 1000.0;
    m_state = state;
    m_error = error;
    if (state == State::Succeeded) m_progress.store(1.0);
    emit updated();
    emit finished();
}

} // namespace ql
