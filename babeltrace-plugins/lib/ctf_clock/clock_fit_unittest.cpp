// SPDX-License-Identifier: MIT
#include "lib/ctf_clock/clock_fit.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace vmtrace::ctfclock {
namespace {

using clocksync::LinearTransform;

// host = guest * (1 + ppm) + offset, anchored at x0 as the estimator does.
LinearTransform drift(std::int64_t x0, std::int64_t offset_ns, double ppm) {
    LinearTransform t;
    t.x0 = x0;
    t.y0 = x0 + offset_ns;
    t.slope_den = static_cast<clocksync::Int128>(1) << 53;
    t.slope_num = static_cast<clocksync::Int128>(static_cast<long double>(t.slope_den) * (1.0L + ppm * 1e-6L));
    return t;
}

// The largest |new clock - transform| over samples of the range.
std::int64_t worst_error(const CtfClock& guest, const ClockFit& fit, const LinearTransform& t, std::uint64_t first,
                         std::uint64_t last) {
    std::int64_t worst = 0;
    for (int i = 0; i <= 1000; ++i) {
        const std::uint64_t c = first + (last - first) / 1000 * static_cast<std::uint64_t>(i);
        const std::int64_t want = t.apply(ns_at(guest, c));
        worst = std::max(worst, std::abs(ns_at(fit.clock, c) - want));
    }
    return worst;
}

TEST(ClockFit, IdentityKeepsTheClock) {
    const CtfClock guest{1'000'000'000, 1'790'000'000, 522'901'210};
    const auto fit = fit_clock(guest, LinearTransform::identity(), 1'000'000'000, 61'000'000'000);
    ASSERT_TRUE(fit);
    EXPECT_EQ(fit->clock.freq, 1'000'000'000u);
    EXPECT_EQ(fit->clock.offset_s, 1'790'000'000);
    EXPECT_EQ(fit->clock.offset, 522'901'210);
    EXPECT_LE(fit->error_ns, 4);
}

TEST(ClockFit, DriftAndOffsetWithinTheReportedErrorOverAMinute) {
    // An LTTng-like guest clock: all of the epoch in `offset` cycles.
    const CtfClock guest{1'000'000'000, 0, 1'790'003'939'522'901'210};
    for (const double ppm : {-200.0, -37.5, 0.0, 13.1, 109.9, 200.0}) {
        const std::uint64_t first = 3'000'000'000;
        const std::uint64_t last = first + 60'000'000'000;
        const LinearTransform t = drift(guest.offset + 33'000'000'000, 4'615'218'882, ppm);
        const auto fit = fit_clock(guest, t, first, last);
        ASSERT_TRUE(fit) << ppm;
        const std::int64_t worst = worst_error(guest, *fit, t, first, last);
        EXPECT_LE(worst, fit->error_ns) << ppm;
        // A minute with a 1 GHz clock: the frequency's rounding (at most
        // 5e-10) costs at most 15 ns at the ends.
        EXPECT_LE(fit->error_ns, 20) << ppm;
        EXPECT_GE(fit->clock.offset_s, 0);
        EXPECT_LT(static_cast<std::uint64_t>(fit->clock.offset), fit->clock.freq);
    }
}

TEST(ClockFit, ErrorGrowsWithTheRangeAndStaysABound) {
    const CtfClock guest{1'000'000'000, 1'790'000'000, 0};
    const LinearTransform t = drift(1'790'000'000'000'000'000 + 3'600'000'000'000, 1'000'000, 123.4567);
    const auto minute = fit_clock(guest, t, 0, 60'000'000'000);
    const auto two_hours = fit_clock(guest, t, 0, 7'200'000'000'000);
    ASSERT_TRUE(minute && two_hours);
    EXPECT_GT(two_hours->error_ns, minute->error_ns);
    EXPECT_LE(worst_error(guest, *two_hours, t, 0, 7'200'000'000'000), two_hours->error_ns);
}

TEST(ClockFit, OtherGuestFrequencies) {
    const CtfClock guest{2'400'000'000, 1'790'000'000, 17};
    const LinearTransform t = drift(1'790'000'010'000'000'000, -250'000, -150.0);
    const std::uint64_t first = 24'000'000'000;
    const std::uint64_t last = first + 144'000'000'000;  // a minute of cycles
    const auto fit = fit_clock(guest, t, first, last);
    ASSERT_TRUE(fit);
    EXPECT_LE(worst_error(guest, *fit, t, first, last), fit->error_ns);
}

TEST(ClockFit, RefusesAnOriginBeforeTheHosts) {
    // Host time = guest time - 10 s, guest clock origin at 0: the new
    // clock's origin would be at -10 s.
    const CtfClock guest{1'000'000'000, 0, 0};
    LinearTransform t;
    t.x0 = 20'000'000'000;
    t.y0 = 10'000'000'000;
    EXPECT_FALSE(fit_clock(guest, t, 15'000'000'000, 25'000'000'000));
}

TEST(ClockFit, CycleAtInvertsNsAt) {
    const CtfClock guest{1'000'000'000, 12, 345};
    EXPECT_EQ(cycle_at(guest, ns_at(guest, 987'654'321)), 987'654'321);
    const CtfClock slow{3'000'000, 12, 345};
    EXPECT_EQ(cycle_at(slow, ns_at(slow, 987'654)), 987'654);
}

}  // namespace
}  // namespace vmtrace::ctfclock
