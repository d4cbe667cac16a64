// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace vmtrace::plugin {

// A progress line on stderr, rewritten in place at most twice a second:
// events done, their rate, how far into the trace, elapsed time.  The
// caller decides whether stderr is a terminal worth writing to.
class ProgressLine {
public:
    explicit ProgressLine(const char* what) : what_(what) {}

    // `trace_ns`: how far into the trace (host time from its first event).
    void update(std::uint64_t events, std::int64_t trace_ns, bool last = false) {
        const auto now = std::chrono::steady_clock::now();
        if (!last && now - shown_ < std::chrono::milliseconds(500)) {
            return;
        }
        shown_ = now;
        const double elapsed = std::chrono::duration<double>(now - started_).count();
        const double millions = static_cast<double>(events) / 1e6;
        std::fprintf(stderr, "\r%s: %.2f M events, %.2f M events/s, trace time %.3f s, elapsed %.1f s %s", what_,
                     millions, elapsed > 0 ? millions / elapsed : 0.0, static_cast<double>(trace_ns) / 1e9, elapsed,
                     last ? "\n" : "");
        std::fflush(stderr);
    }

private:
    const char* what_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point shown_ = started_;
};

}  // namespace vmtrace::plugin
