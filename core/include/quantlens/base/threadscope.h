#pragma once

namespace ql {

/// Sets the calling thread's OpenMP team size for a scope and restores it afterwards. Eigen's
/// products follow the same per-thread setting (Eigen's process-wide setNbThreads is never
/// called), so two jobs on two threads each run with their own thread count.
class ThreadScope {
public:
    /// threads <= 0 keeps the current setting.
    explicit ThreadScope(int threads);
    ~ThreadScope();
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    int m_previous = 0;
};

} // namespace ql
