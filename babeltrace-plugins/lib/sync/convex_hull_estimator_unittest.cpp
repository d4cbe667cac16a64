// SPDX-License-Identifier: MIT
#include "lib/sync/convex_hull_estimator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace vmtrace::clocksync {
namespace {

using Point = ConvexHullEstimator::Point;

// A guest clock that runs `drift_ppb` fast and is `offset` ahead.
struct TrueClock {
    std::int64_t host_origin = 1'790'000'000'000'000'000;
    std::int64_t guest_origin = 1'790'000'003'250'000'000;
    std::int64_t drift_ppb = 150'000;

    [[nodiscard]] std::int64_t guest(std::int64_t host) const {
        const __int128 dt = host - host_origin;
        return guest_origin + static_cast<std::int64_t>(dt + dt * drift_ppb / 1'000'000'000);
    }
    [[nodiscard]] double host_of_guest(std::int64_t guest) const {
        return static_cast<double>(host_origin) +
               static_cast<double>(guest - guest_origin) * 1e9 / (1e9 + static_cast<double>(drift_ppb));
    }
};

// Feeds `n` handshakes, one every 10 ms of host time, with one-way
// latencies of at least `min_latency`.
void feed(ConvexHullEstimator& estimator, const TrueClock& clock, int n, std::int64_t min_latency, std::uint64_t seed,
          std::vector<Point>* above = nullptr, std::vector<Point>* below = nullptr) {
    std::mt19937_64 rng(seed);
    std::exponential_distribution<double> tail(1.0 / 3000.0);
    for (int i = 0; i < n; ++i) {
        const std::int64_t sent = clock.host_origin + 1'000'000 + i * 10'000'000LL;
        const auto gh = min_latency + static_cast<std::int64_t>(tail(rng));
        estimator.add_guest_to_host(clock.guest(sent), sent + gh);
        if (above != nullptr) {
            above->push_back({clock.guest(sent), sent + gh});
        }
        const std::int64_t back = sent + gh + 2'000;
        const auto hg = min_latency + static_cast<std::int64_t>(tail(rng));
        estimator.add_host_to_guest(back, clock.guest(back + hg));
        if (below != nullptr) {
            below->push_back({clock.guest(back + hg), back});
        }
    }
}

TEST(ConvexHullEstimator, QualityGrowsWithTheMessages) {
    ConvexHullEstimator estimator;
    EXPECT_EQ(estimator.quality(), SyncQuality::absent);
    EXPECT_EQ(estimator.bound_at(0), -1);
    estimator.add_guest_to_host(100, 1105);
    EXPECT_EQ(estimator.quality(), SyncQuality::incomplete);
    EXPECT_TRUE(estimator.transform().is_identity());
    estimator.add_host_to_guest(1200, 210);
    // One message each way: slope unbounded, offset in [990, 1005].
    EXPECT_EQ(estimator.quality(), SyncQuality::approximate);
    const std::int64_t offset = estimator.transform().apply(150) - 150;
    EXPECT_GE(offset, 990);
    EXPECT_LE(offset, 1005);
    estimator.add_guest_to_host(10'100, 11'104);
    estimator.add_host_to_guest(11'200, 10'210);
    EXPECT_EQ(estimator.quality(), SyncQuality::accurate);
}

TEST(ConvexHullEstimator, ASlopeBoundedOnOneSideIsNotTakenForAContradiction) {
    // Two memsync marks of a tracer drifting by -150 ppm (host time runs
    // 150 ppm faster), as the simulator recorded them: each mark is a
    // host->tracer and a tracer->host message at the same tracer time.
    // After the first mark and the second's host->tracer message, only a
    // lower bound of the slope exists (1.0000155), which slope 1 violates.
    ConvexHullEstimator estimator;
    EXPECT_TRUE(estimator.add_host_to_guest(35'000'000, 34'996'956));
    EXPECT_TRUE(estimator.add_guest_to_host(34'996'956, 35'002'997));
    EXPECT_TRUE(estimator.add_host_to_guest(45'000'000, 44'993'804));
    EXPECT_EQ(estimator.quality(), SyncQuality::approximate);
    const std::int64_t at_second = estimator.transform().apply(44'993'804);
    EXPECT_GE(at_second, 45'000'000);
    EXPECT_GT(estimator.transform().slope(), 1.0000154);
    EXPECT_TRUE(estimator.add_guest_to_host(44'993'804, 45'003'912));
    EXPECT_EQ(estimator.rejected(), 0u);
    // A real contradiction is still refused: received before it was sent.
    EXPECT_FALSE(estimator.add_host_to_guest(45'004'000, 44'993'804));
    EXPECT_EQ(estimator.rejected(), 1u);
}

TEST(ConvexHullEstimator, RecoversADriftingClockWithinItsBound) {
    const TrueClock clock;
    ConvexHullEstimator estimator;
    std::vector<Point> above;
    std::vector<Point> below;
    feed(estimator, clock, 6000, 1'000, 7, &above, &below);
    ASSERT_EQ(estimator.quality(), SyncQuality::accurate);
    EXPECT_EQ(estimator.guest_to_host_count(), 6000u);
    EXPECT_EQ(estimator.host_to_guest_count(), 6000u);
    // The hulls stay small: only points that can bound a line are kept.
    EXPECT_LT(estimator.upper_set_hull().size(), 100u);
    EXPECT_LT(estimator.lower_set_hull().size(), 100u);

    // The estimate separates every message: it is a feasible transform.
    const LinearTransform& t = estimator.transform();
    for (const Point& p : above) {
        ASSERT_LE(t.apply(p.x), p.y);
    }
    for (const Point& p : below) {
        ASSERT_GE(t.apply(p.x), p.y);
    }
    EXPECT_NEAR((t.slope() - 1.0) * 1e9, 1e9 / (1 + 150e-6) - 1e9, 2.0);

    double worst = 0;
    for (std::size_t i = 0; i < above.size(); i += 37) {
        const std::int64_t x = above[i].x + 5'000'000;
        const double error = static_cast<double>(t.apply(x)) - clock.host_of_guest(x);
        const std::int64_t bound = estimator.bound_at(x);
        ASSERT_GE(bound, 0) << x;
        ASSERT_LE(std::abs(error), static_cast<double>(bound) + 1.0) << x;
        worst = std::max(worst, std::abs(error));
    }
    EXPECT_LT(worst, 1'000.0);
    EXPECT_GE(estimator.max_bound(), static_cast<std::int64_t>(worst));
    // The slope bounds also cover times before the first and after the
    // last message, with a bound that grows with the distance.
    for (std::int64_t dx : {-1'000'000'000LL, -10'000'000LL, 10'000'000LL, 1'000'000'000LL}) {
        const std::int64_t x = dx < 0 ? above.front().x + dx : above.back().x + dx;
        const double error = std::abs(static_cast<double>(t.apply(x)) - clock.host_of_guest(x));
        const std::int64_t bound = estimator.bound_at(x);
        ASSERT_GE(bound, 0) << dx;
        EXPECT_LE(error, static_cast<double>(bound) + 1.0) << dx;
    }
    EXPECT_LT(estimator.bound_at(above.back().x + 10'000'000), estimator.bound_at(above.back().x + 1'000'000'000));
}

TEST(ConvexHullEstimator, RejectsAMessageThatContradictsTheOthers) {
    ConvexHullEstimator estimator;
    const TrueClock clock;
    feed(estimator, clock, 50, 1'000, 3);
    ASSERT_EQ(estimator.quality(), SyncQuality::accurate);
    const LinearTransform before = estimator.transform();
    // A guest->host message received 1 ms before it was sent.
    const std::int64_t sent = clock.host_origin + 200'000'000;
    EXPECT_FALSE(estimator.add_guest_to_host(clock.guest(sent), sent - 1'000'000));
    EXPECT_EQ(estimator.rejected(), 1u);
    EXPECT_EQ(estimator.quality(), SyncQuality::accurate);
    EXPECT_EQ(estimator.transform().apply(clock.guest(sent)), before.apply(clock.guest(sent)));
    // Good messages are still taken.
    EXPECT_TRUE(estimator.add_guest_to_host(clock.guest(sent + 5'000'000), sent + 5'002'000));
    EXPECT_EQ(estimator.rejected(), 1u);
}

TEST(ConvexHullEstimator, ContradictionWithTheFirstMessagesIsRejectedToo) {
    ConvexHullEstimator estimator;
    EXPECT_TRUE(estimator.add_guest_to_host(100, 1105));
    EXPECT_FALSE(estimator.add_host_to_guest(1200, 90));  // received before the first was sent
    EXPECT_EQ(estimator.quality(), SyncQuality::incomplete);
}

TEST(ConvexHullEstimator, GenerationChangesOnlyWithTheTransform) {
    ConvexHullEstimator estimator;
    const std::uint64_t start = estimator.generation();
    estimator.add_guest_to_host(100, 1105);
    estimator.add_host_to_guest(1200, 210);
    EXPECT_GT(estimator.generation(), start);
    const std::uint64_t now = estimator.generation();
    estimator.add_guest_to_host(100, 2000);  // weaker than a point already kept
    EXPECT_EQ(estimator.generation(), now);
}

TEST(ConvexHull, OutOfOrderInsertionBuildsTheSameHull) {
    std::mt19937_64 rng(11);
    std::vector<Point> points;
    for (int i = 0; i < 300; ++i) {
        points.push_back({static_cast<std::int64_t>(rng() % 1'000'000), static_cast<std::int64_t>(rng() % 1'000'000)});
    }
    for (bool lower : {true, false}) {
        std::vector<Point> sorted = points;
        std::sort(sorted.begin(), sorted.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
        std::vector<Point> in_order;
        for (const Point& p : sorted) {
            add_to_hull(in_order, p, lower);
        }
        std::vector<Point> shuffled;
        for (const Point& p : points) {
            add_to_hull(shuffled, p, lower);
        }
        EXPECT_EQ(in_order, shuffled) << (lower ? "lower" : "upper");
        // every point is on the right side of every hull edge
        for (std::size_t i = 1; i < shuffled.size(); ++i) {
            const Point& a = shuffled[i - 1];
            const Point& b = shuffled[i];
            for (const Point& p : points) {
                if (p.x < a.x || p.x > b.x) {
                    continue;
                }
                const __int128 cross =
                    static_cast<__int128>(b.x - a.x) * (p.y - a.y) - static_cast<__int128>(b.y - a.y) * (p.x - a.x);
                EXPECT_TRUE(lower ? cross >= 0 : cross <= 0);
            }
        }
    }
}

}  // namespace
}  // namespace vmtrace::clocksync
