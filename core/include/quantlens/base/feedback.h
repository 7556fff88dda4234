#pragma once

#include <string>

namespace ql {

/// How long-running core work reports progress and learns it was canceled; app/ bridges it to Qt.
class Feedback {
public:
    virtual ~Feedback() = default;
    /// Fraction done in [0, 1] of the current job.
    virtual void progress(double fraction) { (void)fraction; }
    /// A short human-readable status line.
    virtual void message(const std::string& text) { (void)text; }
    /// Polled between units of work; when true the job stops and returns an error.
    virtual bool isCanceled() const { return false; }
};

/// The error message every canceled core job returns.
inline const char* canceledMessage()
{
    return "canceled by the user";
}

} // namespace ql
