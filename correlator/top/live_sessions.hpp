// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmtrace::cli {

// A session a relay daemon serves live (src.ctf.lttng-live's `sessions`
// query).
struct LiveSession {
    std::string url;  // net://HOST:PORT/host/HOSTNAME/SESSION
    std::string hostname;
    std::string name;
    std::uint64_t streams = 0;
    std::uint64_t clients = 0;
    std::uint64_t timer_us = 0;
};

// The relay daemon URL `relayd` (net://HOST[:PORT]) with the default live
// port when it has none; throws UsageError for anything else.
std::string relayd_url(const std::string& relayd);

// Whether `text` names a live session (net://HOST[:PORT]/host/HOST/SESSION).
bool is_live_session_url(const std::string& text);

// `url` (net://HOST[:PORT]/host/HOSTNAME/SESSION) normalised (the default
// port added); unless `wait`, checked to be served: a UsageError names the
// sessions the relay daemon serves instead.
std::string checked_session_url(const std::string& url, bool wait);

// The sessions the relay daemon at `relayd` serves; throws CommandError
// (exit status 4) when it cannot be reached.
std::vector<LiveSession> list_live_sessions(const std::string& relayd);

}  // namespace vmtrace::cli
