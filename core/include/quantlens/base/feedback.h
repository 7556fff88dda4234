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

/// Forwards progress in a sub-range [from, from + span] of a parent's job (which may be null).
class SubFeedback final : public Feedback {
public:
    SubFeedback(Feedback* parent, double from, double span) : m_parent(parent), m_from(from), m_span(span) {}
    void progress(double f) override
    {
        if (m_parent) m_parent->progress(m_from + m_span * f);
    }
    void message(const std::string& t) override
    {
        if (m_parent) m_parent->message(t);
    }
    bool isCanceled() const override { return m_parent && m_parent->isCanceled(); }

private:
    Feedback* m_parent;
    double m_from, m_span;
};

/// The error message every canceled core job returns.
inline const char* canceledMessage()
{
    return "canceled by the user";
}

} // namespace ql
