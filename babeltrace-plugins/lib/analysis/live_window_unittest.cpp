// SPDX-License-Identifier: MIT
#include "lib/analysis/live_window.hpp"

#include <gtest/gtest.h>

namespace vmtrace::analysis {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

TEST(LiveWindowTest, IntervalsAreAlignedOnThePeriod) {
    LiveWindow w(kSecond);
    w.start(5 * kSecond + 123);
    EXPECT_EQ(w.begin(), 5 * kSecond);
    EXPECT_EQ(w.end(), 6 * kSecond);
    LiveWindow before_origin(kSecond);
    before_origin.start(-1);
    EXPECT_EQ(before_origin.begin(), -kSecond);
}

TEST(LiveWindowTest, StateTimeIsClippedToTheInterval) {
    LiveWindow w(kSecond);
    w.start(0);
    w.state(7, VcpuState::guest, -500, 300);        // began before the interval
    w.state(7, VcpuState::idle, 300, 2 * kSecond);  // ends after it
    const LiveWindow::Vcpu* v = w.vcpu(7);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->state_ns[static_cast<unsigned>(VcpuState::guest)], 300);
    EXPECT_EQ(v->state_ns[static_cast<unsigned>(VcpuState::idle)], kSecond - 300);
    w.advance(w.end());
    EXPECT_EQ(w.vcpu(7), nullptr);  // a new interval starts empty
    w.state(7, VcpuState::idle, 300, 2 * kSecond);
    EXPECT_EQ(w.vcpu(7)->state_ns[static_cast<unsigned>(VcpuState::idle)], kSecond);
}

TEST(LiveWindowTest, AnExitIsCountedWhereItHappensAndItsLatencyWhereItEnds) {
    LiveWindow w(kSecond);
    w.start(0);
    w.exit(1, {1, 0x78}, kSecond - 100);
    EXPECT_EQ(w.vcpu(1)->exit_count, 1u);
    EXPECT_EQ(w.vcpu(1)->exits.at({1, 0x78}).latency.count(), 0u);
    w.advance(w.end());
    w.entry(1, kSecond + 400);
    const LiveWindow::Vcpu* v = w.vcpu(1);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->exit_count, 0u);
    const LatencyHistogram& h = v->exits.at({1, 0x78}).latency;
    EXPECT_EQ(h.count(), 1u);
    EXPECT_EQ(h.max(), 500);
    w.entry(1, kSecond + 900);  // an entry with no exit before it: nothing
    EXPECT_EQ(w.vcpu(1)->exits.at({1, 0x78}).latency.count(), 1u);
}

TEST(LiveWindowTest, GuestThreadsAndCountsPerMachine) {
    LiveWindow w(kSecond);
    w.start(0);
    w.guest_thread(3, 100, "worker", 0, 600);
    w.guest_thread(3, 100, "worker", 700, 900);
    w.guest_thread(3, 101, "idle", 600, 700);
    EXPECT_EQ(w.vcpu(3)->guest_threads.at(100).ns, 800);
    EXPECT_EQ(w.vcpu(3)->guest_threads.at(101).comm, "idle");
    w.event(2);
    w.event(2);
    w.discarded(0, 5);
    ASSERT_EQ(w.machines().size(), 3u);
    EXPECT_EQ(w.machines()[2].events, 2u);
    EXPECT_EQ(w.machines()[0].discarded, 5u);
    w.advance(5 * kSecond);  // across a gap
    EXPECT_EQ(w.begin(), 5 * kSecond);
    EXPECT_EQ(w.machines()[2].events, 0u);
}

}  // namespace
}  // namespace vmtrace::analysis
