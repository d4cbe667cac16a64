// SPDX-License-Identifier: MIT
#include "clock_fit.hpp"

#include <cmath>
#include <limits>

namespace vmtrace::ctfclock {
namespace {

using clocksync::div_round;
using clocksync::Int128;

// Times below are kept in units of 1/kSub ns, so that the rounding of the
// anchor's host time stays far below a nanosecond.
constexpr Int128 kSub = 1024;
constexpr Int128 kNs = 1'000'000'000;

// The guest's ns from origin of `cycle`, in 1/kSub ns.
Int128 guest_time_sub(const CtfClock& clock, Int128 cycle) {
    return static_cast<Int128>(clock.offset_s) * kNs * kSub +
           div_round((static_cast<Int128>(clock.offset) + cycle) * kNs * kSub, static_cast<Int128>(clock.freq));
}

Int128 floor_div(Int128 num, Int128 den) {
    Int128 q = num / den;
    if ((num % den != 0) && ((num < 0) != (den < 0))) {
        --q;
    }
    return q;
}

}  // namespace

std::int64_t cycle_at(const CtfClock& clock, std::int64_t ns) {
    const Int128 origin_ns_sub = guest_time_sub(clock, 0);
    const Int128 delta_sub = static_cast<Int128>(ns) * kSub - origin_ns_sub;
    return static_cast<std::int64_t>(div_round(delta_sub * static_cast<Int128>(clock.freq), kNs * kSub));
}

std::int64_t ns_at(const CtfClock& clock, std::uint64_t cycle) {
    return static_cast<std::int64_t>(div_round(guest_time_sub(clock, cycle), kSub));
}

std::optional<ClockFit> fit_clock(const CtfClock& guest, const clocksync::LinearTransform& t, std::uint64_t first_cycle,
                                  std::uint64_t last_cycle) {
    if (first_cycle > last_cycle || t.slope_num <= 0 || t.slope_den <= 0) {
        return std::nullopt;
    }
    // Host ns per guest cycle is 1e9 / freq * num / den: the new frequency
    // is freq * den / num, rounded.
    const Int128 freq = div_round(static_cast<Int128>(guest.freq) * t.slope_den, t.slope_num);
    if (freq <= 0 || freq > static_cast<Int128>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
    }
    ClockFit fit;
    fit.clock.freq = static_cast<std::uint64_t>(freq);
    const Int128 anchor = (static_cast<Int128>(first_cycle) + static_cast<Int128>(last_cycle)) / 2;
    fit.anchor_cycle = static_cast<std::int64_t>(anchor);
    // The transform's host time of the anchor, then the origin offset that
    // makes the new clock give that time there.
    const Int128 guest_sub = guest_time_sub(guest, anchor);
    const Int128 host_sub = static_cast<Int128>(t.y0) * kSub +
                            div_round((guest_sub - static_cast<Int128>(t.x0) * kSub) * t.slope_num, t.slope_den);
    const Int128 origin_sub = host_sub - div_round(anchor * kNs * kSub, freq);
    const Int128 second = kNs * kSub;
    Int128 offset_s = floor_div(origin_sub, second);
    Int128 offset = div_round((origin_sub - offset_s * second) * freq, second);
    if (offset >= freq) {
        offset -= freq;
        ++offset_s;
    }
    if (offset_s < 0 || offset_s > static_cast<Int128>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
    }
    fit.clock.offset_s = static_cast<std::int64_t>(offset_s);
    fit.clock.offset = static_cast<std::int64_t>(offset);

    // The error over the range, in ns (long double: these are figures, not
    // times).
    const long double true_ns_per_cycle = 1e9L / static_cast<long double>(guest.freq) *
                                          static_cast<long double>(t.slope_num) / static_cast<long double>(t.slope_den);
    const long double new_ns_per_cycle = 1e9L / static_cast<long double>(freq);
    const long double reach = static_cast<long double>(
        std::max(anchor - static_cast<Int128>(first_cycle), static_cast<Int128>(last_cycle) - anchor));
    const long double slope_error = std::fabs(new_ns_per_cycle - true_ns_per_cycle) * reach;
    // The offset is a whole number of the new clock's cycles.
    const long double offset_rounding = 0.5L * new_ns_per_cycle;
    // Readers convert offset and value to ns separately, truncating each,
    // in double precision when freq is not 1 GHz: up to 1 ns each plus the
    // double's relative 2^-52 of the value's ns.
    const long double last_ns = static_cast<long double>(last_cycle) * new_ns_per_cycle;
    const long double reader = 2.0L + last_ns * std::ldexp(1.0L, -50) +
                               static_cast<long double>(offset) * new_ns_per_cycle * std::ldexp(1.0L, -50);
    // The anchor's host time itself was rounded to 1/kSub ns, and the
    // transform to the nearest ns is the reference: half a ns.
    fit.error_ns = static_cast<std::int64_t>(std::ceil(slope_error + offset_rounding + reader + 0.5L));
    return fit;
}

}  // namespace vmtrace::ctfclock
