// SPDX-License-Identifier: MIT
#include "lib/sync/linear_transform.hpp"

#include <gtest/gtest.h>

namespace vmtrace::clocksync {
namespace {

TEST(LinearTransform, IdentityMapsEveryTimeToItself) {
    const LinearTransform t = LinearTransform::identity();
    EXPECT_TRUE(t.is_identity());
    EXPECT_EQ(t.apply(0), 0);
    EXPECT_EQ(t.apply(1'790'000'000'123'456'789), 1'790'000'000'123'456'789);
}

TEST(LinearTransform, AppliesDriftExactlyAtEpochMagnitudes) {
    // host = guest_ref_host + (guest - guest_ref) * (1 + 200 ppm)
    LinearTransform t;
    t.x0 = 1'790'000'005'000'000'000;
    t.y0 = 1'790'000'000'000'000'000;
    t.slope_num = 1'000'200;
    t.slope_den = 1'000'000;
    EXPECT_EQ(t.apply(t.x0), t.y0);
    EXPECT_EQ(t.apply(t.x0 + 60'000'000'000), t.y0 + 60'012'000'000);
    EXPECT_EQ(t.apply(t.x0 - 10'000'000'000), t.y0 - 10'002'000'000);
    EXPECT_EQ(t.offset_at_reference(), -5'000'000'000);
    EXPECT_NEAR(t.slope(), 1.0002, 1e-12);
}

TEST(LinearTransform, InvertUndoesApplyWithinOneNanosecond) {
    LinearTransform t;
    t.x0 = 1'000'000'000'000;
    t.y0 = 1'790'000'000'000'000'000;
    t.slope_num = 999'837;
    t.slope_den = 1'000'000;
    for (std::int64_t dx = -100'000'000'000; dx <= 100'000'000'000; dx += 7'777'777'777) {
        const std::int64_t x = t.x0 + dx;
        EXPECT_LE(std::llabs(t.invert(t.apply(x)) - x), 1) << dx;
    }
}

TEST(LinearTransform, PowerOfTwoDenominatorsRoundLikeDivision) {
    LinearTransform shifted;
    shifted.x0 = 1'790'000'000'000'000'000;
    shifted.y0 = 1'790'000'004'000'000'000;
    shifted.slope_den = static_cast<Int128>(1) << 53;
    shifted.slope_num = shifted.slope_den + 1'801'439'850'948;  // ~ +200 ppm
    for (std::int64_t dx = -90'000'000'001; dx <= 90'000'000'001; dx += 1'234'567'891) {
        const Int128 exact = div_round(static_cast<Int128>(dx) * shifted.slope_num, shifted.slope_den);
        EXPECT_EQ(shifted.apply(shifted.x0 + dx), shifted.y0 + static_cast<std::int64_t>(exact)) << dx;
    }
}

TEST(LinearTransform, DivRoundRoundsHalfAwayFromZero) {
    EXPECT_EQ(div_round(5, 2), 3);
    EXPECT_EQ(div_round(-5, 2), -3);
    EXPECT_EQ(div_round(4, 3), 1);
    EXPECT_EQ(div_round(-4, 3), -1);
    EXPECT_EQ(div_round(7, -2), -4);
}

TEST(LinearTransform, PrintsInt128) {
    EXPECT_EQ(to_string(Int128{0}), "0");
    EXPECT_EQ(to_string(static_cast<Int128>(1) << 100), "1267650600228229401496703205376");
    EXPECT_EQ(to_string(-(static_cast<Int128>(1) << 64)), "-18446744073709551616");
    for (const Int128 v : {Int128{0}, Int128{-1}, static_cast<Int128>(1) << 100, -(static_cast<Int128>(1) << 64),
                           static_cast<Int128>(~static_cast<unsigned __int128>(0) >> 1),
                           static_cast<Int128>(static_cast<unsigned __int128>(1) << 127)}) {
        EXPECT_EQ(parse_int128(to_string(v)), v) << to_string(v);
    }
    for (const char* bad : {"", "-", "12a", "+5", "170141183460469231731687303715884105728", " 1"}) {
        EXPECT_FALSE(parse_int128(bad).has_value()) << bad;
    }
}

}  // namespace
}  // namespace vmtrace::clocksync
