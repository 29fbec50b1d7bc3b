#pragma once
// A leveled logger whose sink the user can replace.
//
// The library prints nothing by default: the level starts at LogLevel::warn and the default sink
// writes to stderr. Examples raise the level to info; a user may install their own sink.

#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

#include "unetpp/error.hpp"

namespace unetpp {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

using LogSink = std::function<void(LogLevel, const std::string&)>;

namespace detail {

struct LogState {
    LogLevel level = LogLevel::warn;
    LogSink sink;
    std::mutex mutex;
};

inline LogState& log_state() {
    static LogState state;
    return state;
}

inline const char* log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        default: return "off";
    }
}

}  // namespace detail

// Messages below `level` are dropped.
inline void log_set_level(LogLevel level) { detail::log_state().level = level; }
inline LogLevel log_level() { return detail::log_state().level; }

// Replaces where messages go; an empty sink restores the default (stderr).
inline void log_set_sink(LogSink sink) {
    auto& state = detail::log_state();
    std::lock_guard<std::mutex> lock(state.mutex);
    state.sink = std::move(sink);
}

// Sends one message at `level`. Thread-safe.
inline void log_message(LogLevel level, const std::string& message) {
    auto& state = detail::log_state();
    if (level < state.level || level == LogLevel::off) {
        return;
    }
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.sink) {
        state.sink(level, message);
    } else {
        std::fprintf(stderr, "[unetpp %s] %s\n", detail::log_level_name(level), message.c_str());
    }
}

template <class... Parts>
void log_debug(const Parts&... parts) {
    if (LogLevel::debug >= log_level()) log_message(LogLevel::debug, detail::concat(parts...));
}
template <class... Parts>
void log_info(const Parts&... parts) {
    if (LogLevel::info >= log_level()) log_message(LogLevel::info, detail::concat(parts...));
}
template <class... Parts>
void log_warn(const Parts&... parts) {
    log_message(LogLevel::warn, detail::concat(parts...));
}
template <class... Parts>
void log_error(const Parts&... parts) {
    log_message(LogLevel::error, detail::concat(parts...));
}

}  // namespace unetpp
