// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>

#include "lib/sync/linear_transform.hpp"

namespace vmtrace::ctfclock {

// A CTF 1.8 clock: value v (cycles) is at offset_s * 1e9 + (offset + v) *
// 1e9 / freq ns from the clock's origin.
struct CtfClock {
    std::uint64_t freq = 1'000'000'000;
    std::int64_t offset_s = 0;
    std::int64_t offset = 0;  // cycles
};

// The clock that puts a guest clock's values on the host's time base:
// `transform` maps the guest's ns from origin to the host's.  CTF 1.8
// frequencies are integers, so the slope is rounded; the clock is exact at
// the middle of [first_cycle, last_cycle] and its error grows towards both
// ends.  `error_ns` bounds |clock's time - transform's time| over the range,
// including the rounding of the offset to a whole cycle and the arithmetic
// of readers that convert cycles to ns in double precision (babeltrace2,
// babeltrace 1.x, Trace Compass).
struct ClockFit {
    CtfClock clock;
    std::int64_t anchor_cycle = 0;
    std::int64_t error_ns = 0;
};

// nullopt when no CTF clock can carry the transform: a frequency that does
// not fit 64 bits, or an origin offset before the host clock's origin (a
// negative offset_s, which Trace Compass drops).
std::optional<ClockFit> fit_clock(const CtfClock& guest, const clocksync::LinearTransform& transform,
                                  std::uint64_t first_cycle, std::uint64_t last_cycle);

// The guest clock value at `ns` from its origin (rounded to a cycle), for
// turning a time range into a cycle range.
std::int64_t cycle_at(const CtfClock& clock, std::int64_t ns);

// ns from origin of value `cycle` under `clock`, exactly (rounded to the
// nearest ns), as a reader with exact arithmetic computes it.
std::int64_t ns_at(const CtfClock& clock, std::uint64_t cycle);

}  // namespace vmtrace::ctfclock
