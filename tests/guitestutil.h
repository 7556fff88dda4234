#pragma once

// Helpers shared by the window's tests.

#include "job.h"

#include <QSignalSpy>

namespace qltest {

/// Waits for a job to end (true when it did within the time).
inline bool finish(ql::Job* job, int ms = 120000)
{
    if (!job) return false;
    if (job->state() != ql::Job::State::Running) return true;
    QSignalSpy spy(job, &ql::Job::finished);
    return spy.wait(ms);
}

} // namespace qltest
