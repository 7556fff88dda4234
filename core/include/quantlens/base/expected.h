#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ql {

/// A failure a user can act on: the message names the file, tensor or value and what was expected.
struct Error {
    std::string message;
};

/// Builds an Error from a message.
inline Error makeError(std::string message)
{
    return Error{std::move(message)};
}

/// A value or an Error; the core's return type for anything that can fail on user data.
template <class T>
class [[nodiscard]] Expected {
public:
    Expected(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    Expected(Error error) : m_v(std::in_place_index<1>, std::move(error)) {}

    /// True when a value is held.
    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    /// The error; only valid when !ok().
    const Error& error() const { return std::get<1>(m_v); }
    /// The error message, or an empty string when a value is held.
    std::string message() const { return ok() ? std::string() : error().message; }

private:
    std::variant<T, Error> m_v;
};

/// Success or an Error, for operations without a result value.
template <>
class [[nodiscard]] Expected<void> {
public:
    Expected() = default;
    Expected(Error error) : m_error(std::move(error)), m_failed(true) {}

    bool ok() const { return !m_failed; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return m_error; }
    std::string message() const { return m_failed ? m_error.message : std::string(); }

private:
    Error m_error;
    bool m_failed = false;
};

} // namespace ql

/// Propagates the error of an Expected expression out of the current function.
#define QL_TRY(expr)                                                                                                   \
    do {                                                                                                               \
        auto&& ql_try_result_ = (expr);                                                                                \
        if (!ql_try_result_) return ql_try_result_.error();                                                            \
    } while (0)
