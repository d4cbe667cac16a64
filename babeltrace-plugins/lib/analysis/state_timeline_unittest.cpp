// SPDX-License-Identifier: MIT
#include "lib/analysis/state_timeline.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmtrace::analysis {
namespace {

struct Interval {
    VcpuState state;
    std::int64_t start;
    std::int64_t end;
};

// What each bin of width `bin_ns` from `begin` should hold, computed
// independently of the timeline.
std::vector<std::array<std::int64_t, kVcpuStateCount>> expected_bins(const std::vector<Interval>& intervals,
                                                                     std::int64_t begin, std::int64_t bin_ns,
                                                                     unsigned bins) {
    std::vector<std::array<std::int64_t, kVcpuStateCount>> out(bins);
    for (const Interval& in : intervals) {
        for (unsigned b = 0; b < bins; ++b) {
            const std::int64_t lo = std::max(in.start, begin + b * bin_ns);
            const std::int64_t hi = std::min(in.end, begin + (b + 1) * bin_ns);
            if (hi > lo) {
                out[b][static_cast<unsigned>(in.state)] += hi - lo;
            }
        }
    }
    return out;
}

void expect_bins(const StateTimeline& tl, const std::vector<Interval>& intervals, std::int64_t begin) {
    const auto expected = expected_bins(intervals, begin, tl.bin_ns(), tl.bins());
    for (unsigned b = 0; b < tl.bins(); ++b) {
        for (unsigned s = 0; s < kVcpuStateCount; ++s) {
            ASSERT_EQ(tl.time_in(b, static_cast<VcpuState>(s)), expected[b][s])
                << "bin " << b << " state " << s << " bin_ns " << tl.bin_ns();
        }
    }
}

TEST(StateTimeline, ConservesTimePerStateAcrossDoublings) {
    const std::int64_t begin = 1'790'000'000'000'000'000;
    StateTimeline tl(begin, 16, 10);
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int> state(0, kVcpuStateCount - 1);
    std::uniform_int_distribution<std::int64_t> length(1, 5'000);
    std::vector<Interval> intervals;
    std::array<std::int64_t, kVcpuStateCount> totals{};
    std::int64_t t = begin;
    for (int i = 0; i < 2'000; ++i) {
        const Interval in{static_cast<VcpuState>(state(rng)), t, t + length(rng)};
        tl.add(in.state, in.start, in.end);
        intervals.push_back(in);
        totals[static_cast<unsigned>(in.state)] += in.end - in.start;
        t = in.end;
        if (i % 50 == 0) {
            // a gap: no state at all
            t += length(rng);
        }
    }
    const std::int64_t span = t - begin;
    // the narrowest power-of-two multiple of 10 ns that holds the span
    EXPECT_GE(tl.bin_ns() * tl.bins(), span);
    EXPECT_LT(tl.bin_ns() / 2 * tl.bins(), span);
    EXPECT_EQ(tl.bins(), 16u);
    std::int64_t w = tl.bin_ns();
    while (w % 2 == 0) {
        w /= 2;
    }
    EXPECT_EQ(w, 5);  // 10 * 2^k
    expect_bins(tl, intervals, begin);

    for (int widen = 0; widen < 3; ++widen) {
        tl.widen_to(tl.bin_ns() * 2);
        expect_bins(tl, intervals, begin);
        std::array<std::int64_t, kVcpuStateCount> sums{};
        for (unsigned b = 0; b < tl.bins(); ++b) {
            for (unsigned s = 0; s < kVcpuStateCount; ++s) {
                sums[s] += tl.time_in(b, static_cast<VcpuState>(s));
            }
        }
        EXPECT_EQ(sums, totals);
        // bins past the end of the span are empty
        const auto last = static_cast<unsigned>((span - 1) / tl.bin_ns());
        for (unsigned b = last + 1; b < tl.bins(); ++b) {
            for (unsigned s = 0; s < kVcpuStateCount; ++s) {
                EXPECT_EQ(tl.time_in(b, static_cast<VcpuState>(s)), 0) << b;
            }
        }
    }
    tl.widen_to(tl.bin_ns());  // already that wide: nothing changes
    expect_bins(tl, intervals, begin);
}

TEST(StateTimeline, IntervalSpanningManyBinsAndBeforeBegin) {
    StateTimeline tl(1000, 4, 100);
    tl.add(VcpuState::guest, 900, 1050);        // only [1000, 1050) counts
    tl.add(VcpuState::idle, 1050, 1350);        // spans three bins
    tl.add(VcpuState::preempted, 1350, 1350);   // empty
    tl.add(VcpuState::hypervisor, 1400, 1300);  // backwards: nothing
    EXPECT_EQ(tl.bin_ns(), 100);
    EXPECT_EQ(tl.time_in(0, VcpuState::guest), 50);
    EXPECT_EQ(tl.time_in(0, VcpuState::idle), 50);
    EXPECT_EQ(tl.time_in(1, VcpuState::idle), 100);
    EXPECT_EQ(tl.time_in(2, VcpuState::idle), 100);
    EXPECT_EQ(tl.time_in(3, VcpuState::idle), 50);
    EXPECT_EQ(tl.time_in(3, VcpuState::preempted), 0);
    EXPECT_EQ(tl.time_in(3, VcpuState::hypervisor), 0);
    tl.add(VcpuState::unknown, 1350, 1401);  // one past the range: one doubling
    EXPECT_EQ(tl.bin_ns(), 200);
    EXPECT_EQ(tl.time_in(0, VcpuState::idle), 150);
    EXPECT_EQ(tl.time_in(1, VcpuState::idle), 150);
    EXPECT_EQ(tl.time_in(1, VcpuState::unknown), 50);
    EXPECT_EQ(tl.time_in(2, VcpuState::unknown), 1);
    EXPECT_EQ(tl.time_in(3, VcpuState::unknown), 0);
}

TEST(StateTimeline, RejectsABadBinCountOrWidth) {
    EXPECT_THROW(StateTimeline(0, 0), std::invalid_argument);
    EXPECT_THROW(StateTimeline(0, 3), std::invalid_argument);
    EXPECT_THROW(StateTimeline(0, 1001), std::invalid_argument);
    EXPECT_THROW(StateTimeline(0, 4, 0), std::invalid_argument);
    EXPECT_THROW(StateTimeline(0, 4, -10), std::invalid_argument);
    EXPECT_NO_THROW(StateTimeline(0, 2, 1));
}

TEST(StateTimeline, StateNames) {
    EXPECT_EQ(std::string(to_string(VcpuState::guest)), "guest");
    EXPECT_EQ(std::string(to_string(VcpuState::hypervisor)), "hypervisor");
    EXPECT_EQ(std::string(to_string(VcpuState::preempted)), "preempted");
    EXPECT_EQ(std::string(to_string(VcpuState::idle)), "idle");
    EXPECT_EQ(std::string(to_string(VcpuState::unknown)), "unknown");
}

}  // namespace
}  // namespace vmtrace::analysis
