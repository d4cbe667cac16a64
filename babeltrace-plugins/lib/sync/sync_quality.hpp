// SPDX-License-Identifier: MIT
#pragma once

#include <string_view>

namespace vmtrace::clocksync {

// How much a guest->host transform can be trusted.
enum class SyncQuality {
    absent,       // no synchronisation message at all
    incomplete,   // messages in one direction only: no offset bound
    approximate,  // both directions, but too few to bound the slope
    accurate,     // both extreme feasible lines exist: bounded error
    fail,         // no line satisfies causality: the messages contradict
};

constexpr std::string_view to_string(SyncQuality quality) {
    switch (quality) {
    case SyncQuality::absent:
        return "absent";
    case SyncQuality::incomplete:
        return "incomplete";
    case SyncQuality::approximate:
        return "approximate";
    case SyncQuality::accurate:
        return "accurate";
    case SyncQuality::fail:
        return "fail";
    }
    return "unknown";
}

}  // namespace vmtrace::clocksync
