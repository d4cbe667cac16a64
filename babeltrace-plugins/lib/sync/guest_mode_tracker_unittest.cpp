// SPDX-License-Identifier: MIT
#include "lib/sync/guest_mode_tracker.hpp"

#include <gtest/gtest.h>

namespace vmtrace::sync {
namespace {

using Verdict = GuestModeTracker::Verdict;

TEST(GuestModeTracker, FollowsAVcpuThreadAcrossCpus) {
    GuestModeTracker tracker;
    tracker.on_sched_switch(0, 501, 100);  // vCPU thread 501 on CPU 0
    tracker.on_kvm_entry(0, 200);
    tracker.on_vcpu_identified(0, 0xabc, 1);
    tracker.on_kvm_exit(0, 300);
    tracker.on_sched_switch(0, 0, 310);
    tracker.on_sched_switch(3, 501, 400);  // migrated to CPU 3
    tracker.on_kvm_entry(3, 420);
    tracker.on_kvm_exit(3, 500);
    tracker.on_kvm_entry(3, 600);

    EXPECT_EQ(tracker.check(0xabc, 1, 250), Verdict::inside);
    EXPECT_EQ(tracker.check(0xabc, 1, 350), Verdict::outside);
    EXPECT_EQ(tracker.check(0xabc, 1, 450), Verdict::inside);
    EXPECT_EQ(tracker.check(0xabc, 1, 550), Verdict::outside);
    EXPECT_EQ(tracker.check(0xabc, 1, 600), Verdict::inside);      // still in guest mode
    EXPECT_EQ(tracker.check(0xabc, 1, 50), Verdict::unknown);      // before the thread was seen
    EXPECT_EQ(tracker.check(0xabc, 1, 10'000), Verdict::unknown);  // after the host trace
    EXPECT_EQ(tracker.check(0xabc, 0, 250), Verdict::unknown);     // unidentified vCPU
    EXPECT_EQ(tracker.check(0xdef, 1, 250), Verdict::unknown);
}

TEST(GuestModeTracker, ATimeWithinItsToleranceOfGuestModeIsInside) {
    GuestModeTracker tracker;
    tracker.on_sched_switch(0, 501, 100);
    tracker.on_kvm_entry(0, 200);
    tracker.on_vcpu_identified(0, 0xabc, 1);
    tracker.on_kvm_exit(0, 300);
    tracker.on_kvm_entry(0, 400);
    tracker.on_kvm_exit(0, 500);
    tracker.on_kvm_entry(0, 1000);

    EXPECT_EQ(tracker.check(0xabc, 1, 320), Verdict::outside);
    EXPECT_EQ(tracker.check(0xabc, 1, 320, 20), Verdict::inside);  // 20 after an exit
    EXPECT_EQ(tracker.check(0xabc, 1, 380, 20), Verdict::inside);  // 20 before an entry
    EXPECT_EQ(tracker.check(0xabc, 1, 350, 20), Verdict::outside);
    EXPECT_EQ(tracker.check(0xabc, 1, 700, 20), Verdict::outside);  // between an exit and a far entry
    EXPECT_EQ(tracker.check(0xabc, 1, 990, 20), Verdict::inside);   // 10 before the open entry
    EXPECT_EQ(tracker.check(0xabc, 1, 970, 20), Verdict::outside);
}

TEST(GuestModeTracker, ForgetsWhatItIsToldToForget) {
    GuestModeTracker tracker;
    tracker.on_sched_switch(0, 7, 0);
    tracker.on_vcpu_identified(0, 1, 0);
    for (std::int64_t t = 10; t < 100'000; t += 100) {
        tracker.on_kvm_entry(0, t);
        tracker.on_kvm_exit(0, t + 50);
    }
    EXPECT_EQ(tracker.retained_intervals(), 1000u);
    tracker.forget_before(98'900);
    EXPECT_EQ(tracker.retained_intervals(), 11u);
    EXPECT_EQ(tracker.check(1, 0, 30), Verdict::unknown);
    EXPECT_EQ(tracker.check(1, 0, 99'930), Verdict::inside);
    EXPECT_EQ(tracker.check(1, 0, 99'890), Verdict::outside);
}

}  // namespace
}  // namespace vmtrace::sync
