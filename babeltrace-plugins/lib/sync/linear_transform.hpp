// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmtrace::clocksync {

using Int128 = __int128;

// y = y0 + (x - x0) * slope_num / slope_den, evaluated in 128-bit integers
// and rounded to the nearest nanosecond.  Times are nanoseconds from the
// clock origin (what babeltrace2 calls "ns from origin").
//
// Keeping the slope as a ratio of integers, anchored at a reference point
// inside the synchronised range, keeps a 60 s trace with a 200 ppm drift
// exact to the nanosecond: a double slope would lose ~10 bits of the
// intercept at Unix-epoch magnitudes.
struct LinearTransform {
    std::int64_t x0 = 0;
    std::int64_t y0 = 0;
    Int128 slope_num = 1;
    Int128 slope_den = 1;

    static LinearTransform identity() { return {}; }

    [[nodiscard]] std::int64_t apply(std::int64_t x) const;

    // The inverse, used by tests and by the ground truth comparison.
    [[nodiscard]] std::int64_t invert(std::int64_t y) const;

    [[nodiscard]] double slope() const;
    // y - x at the reference point: the offset at x0, in ns.
    [[nodiscard]] std::int64_t offset_at_reference() const { return y0 - x0; }
    [[nodiscard]] bool is_identity() const;
};

// Rounded division of 128-bit integers (ties away from zero); den > 0.
Int128 div_round(Int128 num, Int128 den);

std::string to_string(Int128 value);

// The inverse of to_string(): decimal digits with an optional `-`;
// nullopt for anything else or a value beyond 128 bits.
std::optional<Int128> parse_int128(std::string_view text);

}  // namespace vmtrace::clocksync
