#pragma once
// Errors and assertions.
//
// Misuse by the caller (bad shapes, missing files, unreadable images) throws unetpp::Error or
// one of its subclasses. Messages name the thing at fault, what was expected and what was found.
// Internal invariants use UNETPP_ASSERT, which stays on in every build; UNETPP_DEBUG_ASSERT is
// for hot inner loops and compiles away unless UNETPP_DEBUG is defined.

#include <sstream>
#include <stdexcept>
#include <string>

namespace unetpp {

// Base of every exception the library throws on purpose.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A tensor or layer received a shape it cannot work with.
class ShapeError : public Error {
public:
    explicit ShapeError(const std::string& what) : Error(what) {}
};

// A file could not be read or written, or its contents are not what was expected.
class IoError : public Error {
public:
    explicit IoError(const std::string& what) : Error(what) {}
};

// An internal invariant failed: a bug in unetpp, not in the caller's code.
class InternalError : public Error {
public:
    explicit InternalError(const std::string& what) : Error(what) {}
};

namespace detail {

// Concatenates any streamable values into one string.
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    return os.str();
}

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line,
                                     const std::string& msg) {
    throw InternalError(concat("unetpp internal check failed: ", expr, " at ", file, ":", line,
                               msg.empty() ? "" : ": ", msg));
}

}  // namespace detail
}  // namespace unetpp

// Checks an internal invariant in every build. `msg` is a stream expression: UNETPP_ASSERT(a == b,
// "a=" << a << " b=" << b).
#define UNETPP_ASSERT(cond, msg)                                                      \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::ostringstream unetpp_assert_os_;                                     \
            unetpp_assert_os_ << msg;                                                 \
            ::unetpp::detail::assert_fail(#cond, __FILE__, __LINE__, unetpp_assert_os_.str()); \
        }                                                                             \
    } while (0)

#ifdef UNETPP_DEBUG
#define UNETPP_DEBUG_ASSERT(cond, msg) UNETPP_ASSERT(cond, msg)
#else
#define UNETPP_DEBUG_ASSERT(cond, msg) \
    do {                               \
    } while (0)
#endif
