// SPDX-License-Identifier: MIT
#include "lib/analysis/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace vmtrace::analysis {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr double kQuantiles[] = {1e-9, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0};

// The nearest-rank percentile: the ceil(q * n)-th smallest sample.
std::int64_t exact_percentile(const std::vector<std::int64_t>& sorted, double q) {
    const auto rank =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(sorted.size()))));
    return sorted[rank - 1];
}

std::vector<std::int64_t> samples(const std::function<std::int64_t(std::mt19937_64&)>& draw, std::size_t n) {
    std::mt19937_64 rng(20240611);
    std::vector<std::int64_t> out(n);
    for (auto& v : out) {
        v = draw(rng);
    }
    return out;
}

void expect_matches_exact(const std::vector<std::int64_t>& values, const char* what) {
    LatencyHistogram h;
    for (std::int64_t v : values) {
        h.add(v);
    }
    std::vector<std::int64_t> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(h.count(), values.size()) << what;
    EXPECT_EQ(h.min(), sorted.front()) << what;
    EXPECT_EQ(h.max(), sorted.back()) << what;
    long double sum = 0;
    for (std::int64_t v : values) {
        sum += static_cast<long double>(v);
    }
    EXPECT_NEAR(h.mean(), static_cast<double>(sum / static_cast<long double>(values.size())), 1e-9 * h.mean()) << what;
    for (double q : kQuantiles) {
        const std::int64_t exact = exact_percentile(sorted, q);
        const std::int64_t got = h.percentile(q);
        EXPECT_LE(std::abs(static_cast<double>(got - exact)), static_cast<double>(exact) / 64.0)
            << what << " q=" << q << " exact=" << exact << " got=" << got;
    }
}

TEST(LatencyHistogram, PercentilesWithinOneSixtyFourthOfExact) {
    expect_matches_exact(
        samples([](auto& rng) { return std::uniform_int_distribution<std::int64_t>(0, 100)(rng); }, 20'000),
        "small uniform");
    expect_matches_exact(
        samples([](auto& rng) { return std::uniform_int_distribution<std::int64_t>(0, 1'000'000)(rng); }, 50'000),
        "uniform");
    expect_matches_exact(
        samples([](auto& rng) { return static_cast<std::int64_t>(std::exponential_distribution<>(1 / 5000.0)(rng)); },
                50'000),
        "exponential");
    expect_matches_exact(
        samples([](auto& rng) { return static_cast<std::int64_t>(std::lognormal_distribution<>(8.0, 2.0)(rng)); },
                50'000),
        "lognormal");
    expect_matches_exact(samples(
                             [](auto& rng) {
                                 // bimodal: fast exits and slow ones, three decades apart
                                 return std::bernoulli_distribution(0.95)(rng)
                                            ? std::uniform_int_distribution<std::int64_t>(200, 900)(rng)
                                            : std::uniform_int_distribution<std::int64_t>(500'000, 2'000'000)(rng);
                             },
                             50'000),
                         "bimodal");
    expect_matches_exact(
        samples(
            [](auto& rng) { return std::uniform_int_distribution<std::int64_t>(1'000'000'000'000'000, kMax / 2)(rng); },
            10'000),
        "huge");
    expect_matches_exact({1234567}, "one sample");
}

TEST(LatencyHistogram, EmptyAndNegative) {
    LatencyHistogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.percentile(0.5), 0);
    EXPECT_EQ(h.mean(), 0.0);
    EXPECT_TRUE(h.log2_buckets().empty());
    h.add(-5);  // a clock step backwards: taken as 0
    EXPECT_EQ(h.min(), 0);
    EXPECT_EQ(h.max(), 0);
    EXPECT_EQ(h.percentile(1.0), 0);
}

TEST(LatencyHistogram, ExtremeValuesStayExact) {
    LatencyHistogram h;
    h.add(kMax);
    EXPECT_EQ(h.min(), kMax);
    EXPECT_EQ(h.max(), kMax);
    EXPECT_EQ(h.percentile(0.5), kMax);
    EXPECT_EQ(h.percentile(1.0), kMax);
    h.add(kMax - (std::int64_t{1} << 50));
    const std::int64_t p50 = h.percentile(0.5);
    EXPECT_LE(std::abs(static_cast<double>(p50 - (kMax - (std::int64_t{1} << 50)))), static_cast<double>(kMax) / 64.0);
    EXPECT_EQ(h.log2_buckets().size(), 64u);
    EXPECT_EQ(h.log2_buckets()[63], 2u);
}

TEST(LatencyHistogram, MergeEqualsAddingEverySample) {
    std::mt19937_64 rng(7);
    std::lognormal_distribution<> dist(7.0, 2.5);
    LatencyHistogram a;
    LatencyHistogram b;
    LatencyHistogram all;
    for (int i = 0; i < 30'000; ++i) {
        const auto v = 10 + static_cast<std::int64_t>(dist(rng));
        (i % 3 == 0 ? a : b).add(v);
        all.add(v);
    }
    b.add(3);  // the smallest sample in the smaller-bucketed histogram
    all.add(3);
    LatencyHistogram merged;
    merged.merge(LatencyHistogram{});  // empty into empty
    EXPECT_EQ(merged.count(), 0u);
    merged.merge(a);  // into empty: takes min and max as they are
    merged.merge(b);
    merged.merge(LatencyHistogram{});  // empty into non-empty: changes nothing
    EXPECT_EQ(merged.count(), all.count());
    EXPECT_EQ(merged.min(), all.min());
    EXPECT_EQ(merged.min(), 3);
    EXPECT_EQ(merged.max(), all.max());
    EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
    EXPECT_EQ(merged.log2_buckets(), all.log2_buckets());
    for (double q : kQuantiles) {
        EXPECT_EQ(merged.percentile(q), all.percentile(q)) << q;
    }
}

TEST(LatencyHistogram, Log2BucketsOfKnownValues) {
    // bucket 0 = [0,1), bucket b = [2^(b-1), 2^b)
    const std::pair<std::int64_t, unsigned> cases[] = {
        {0, 0},
        {1, 1},
        {2, 2},
        {3, 2},
        {4, 3},
        {7, 3},
        {8, 4},
        {63, 6},
        {64, 7},
        {65, 7},
        {127, 7},
        {128, 8},
        {129, 8},
        {255, 8},
        {256, 9},
        {1000, 10},
        {1023, 10},
        {1024, 11},
        {(std::int64_t{1} << 40) - 1, 40},
        {std::int64_t{1} << 40, 41},
        {kMax, 63},
    };
    for (const auto& [value, bucket] : cases) {
        LatencyHistogram h;
        h.add(value);
        const auto buckets = h.log2_buckets();
        ASSERT_EQ(buckets.size(), bucket + 1) << value;
        EXPECT_EQ(buckets[bucket], 1u) << value;
    }
    LatencyHistogram all;
    for (const auto& [value, bucket] : cases) {
        all.add(value);
    }
    const auto buckets = all.log2_buckets();
    ASSERT_EQ(buckets.size(), 64u);
    EXPECT_EQ(buckets[2], 2u);  // 2, 3
    EXPECT_EQ(buckets[7], 3u);  // 64, 65, 127
    EXPECT_EQ(buckets[5], 0u);  // nothing in [16, 32)
}

TEST(LatencyHistogram, Log2BucketsOfRandomSamplesSumToCount) {
    std::mt19937_64 rng(99);
    std::lognormal_distribution<> dist(6.0, 3.0);
    LatencyHistogram h;
    std::vector<std::uint64_t> expected;
    for (int i = 0; i < 50'000; ++i) {
        const auto v = std::min<std::int64_t>(static_cast<std::int64_t>(dist(rng)), kMax / 4);
        h.add(v);
        const auto b = static_cast<std::size_t>(std::bit_width(static_cast<std::uint64_t>(v)));
        if (b >= expected.size()) {
            expected.resize(b + 1, 0);
        }
        ++expected[b];
    }
    const auto buckets = h.log2_buckets();
    EXPECT_EQ(buckets, expected);
    std::uint64_t sum = 0;
    for (std::uint64_t c : buckets) {
        sum += c;
    }
    EXPECT_EQ(sum, h.count());
}

TEST(LatencyHistogram, IndexAndLowerBoundRoundTripAtEdges) {
    EXPECT_EQ(LatencyHistogram::index_of(-1), 0u);
    EXPECT_EQ(LatencyHistogram::index_of(0), 0u);
    EXPECT_EQ(LatencyHistogram::index_of(63), 63u);
    EXPECT_EQ(LatencyHistogram::index_of(64), 64u);
    EXPECT_EQ(LatencyHistogram::index_of(127), 127u);
    EXPECT_EQ(LatencyHistogram::index_of(128), 128u);
    EXPECT_EQ(LatencyHistogram::index_of(129), 128u);  // buckets of width 2 from 128
    EXPECT_EQ(LatencyHistogram::index_of(130), 129u);
    EXPECT_EQ(LatencyHistogram::lower_bound(63), 63);
    EXPECT_EQ(LatencyHistogram::lower_bound(64), 64);
    EXPECT_EQ(LatencyHistogram::lower_bound(127), 127);
    EXPECT_EQ(LatencyHistogram::lower_bound(128), 128);
    EXPECT_EQ(LatencyHistogram::lower_bound(129), 130);

    const unsigned last = LatencyHistogram::index_of(kMax);
    // INT64_MAX is the last value of the last bucket: 64..127 times 2^56
    EXPECT_EQ(LatencyHistogram::lower_bound(last), std::int64_t{127} << 56);
    EXPECT_EQ(LatencyHistogram::index_of((std::int64_t{127} << 56) - 1), last - 1);
    EXPECT_EQ(last, LatencyHistogram::kSubBuckets + 56 * LatencyHistogram::kSubBuckets + 63);
    for (unsigned i = 0; i <= last; ++i) {
        const std::int64_t low = LatencyHistogram::lower_bound(i);
        ASSERT_EQ(LatencyHistogram::index_of(low), i) << i;
        if (i > 0) {
            ASSERT_LT(LatencyHistogram::lower_bound(i - 1), low) << i;
            ASSERT_EQ(LatencyHistogram::index_of(low - 1), i - 1) << i;
            // a bucket is at most 1/64 of its values wide
            const std::int64_t width = low - LatencyHistogram::lower_bound(i - 1);
            ASSERT_LE(width * 64, std::max<std::int64_t>(LatencyHistogram::lower_bound(i - 1), 64)) << i;
        }
    }
}

}  // namespace
}  // namespace vmtrace::analysis
