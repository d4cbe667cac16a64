// SPDX-License-Identifier: MIT
#include "lib/sync/vm_pairing.hpp"

#include <gtest/gtest.h>

#include "lib/sync/convex_hull_estimator.hpp"

namespace vmtrace::sync {
namespace {

VmPairing make() {
    return VmPairing(0xabc, std::make_unique<clocksync::ConvexHullEstimator>(), 8);
}

TEST(VmPairing, MatchesHalvesInEitherArrivalOrder) {
    VmPairing pairing = make();
    pairing.add(SyncHalf::gh_host, 0, 1105, 0, "host");  // host half first
    pairing.add(SyncHalf::gh_guest, 0, 100, 0, "guest");
    pairing.add(SyncHalf::hg_guest, 0, 210, 0, "guest");  // guest half first
    pairing.add(SyncHalf::hg_host, 0, 1200, 0, "host");
    EXPECT_EQ(pairing.guest_to_host_matches(), 1u);
    EXPECT_EQ(pairing.host_to_guest_matches(), 1u);
    EXPECT_EQ(pairing.pending(), 0u);
    EXPECT_EQ(pairing.estimator().quality(), clocksync::SyncQuality::approximate);
    const std::int64_t offset = pairing.estimator().transform().apply(150) - 150;
    EXPECT_GE(offset, 990);
    EXPECT_LE(offset, 1005);
    EXPECT_EQ(pairing.anomalies().duplicate_cnt + pairing.anomalies().out_of_order_cnt, 0u);
}

TEST(VmPairing, ReportsARepeatedCnt) {
    VmPairing pairing = make();
    pairing.add(SyncHalf::gh_guest, 4, 100, 1, "guest0");
    pairing.add(SyncHalf::gh_host, 4, 1105, 1, "host");
    pairing.add(SyncHalf::gh_guest, 4, 300, 1, "guest0");
    EXPECT_EQ(pairing.anomalies().duplicate_cnt, 1u);
    EXPECT_NE(pairing.anomalies().first.find("guest0"), std::string::npos);
    EXPECT_NE(pairing.anomalies().first.find("vmsync_gh_guest"), std::string::npos);
    EXPECT_NE(pairing.anomalies().first.find("cnt 4"), std::string::npos);
}

TEST(VmPairing, OrderIsCheckedPerVcpuOnly) {
    VmPairing pairing = make();
    // vCPUs interleave: 2 on vCPU 1 before 1 on vCPU 0 is normal.
    pairing.check_order(SyncHalf::gh_guest, 2, 100, 1, "g");
    pairing.check_order(SyncHalf::gh_guest, 1, 101, 0, "g");
    EXPECT_EQ(pairing.anomalies().out_of_order_cnt, 0u);
    pairing.check_order(SyncHalf::gh_guest, 0, 102, 1, "g");  // back from 2 on vCPU 1
    EXPECT_EQ(pairing.anomalies().out_of_order_cnt, 1u);
}

TEST(VmPairing, BoundsTheHalvesWaitingForAPartner) {
    VmPairing pairing = make();  // at most 8 pending per side
    for (std::uint32_t cnt = 0; cnt < 20; ++cnt) {
        pairing.add(SyncHalf::gh_host, cnt, 1000 + cnt, 0, "host");
    }
    EXPECT_EQ(pairing.pending(), 8u);
    EXPECT_EQ(pairing.anomalies().unmatched, 12u);
    EXPECT_EQ(pairing.host_events(), 20u);
    EXPECT_EQ(pairing.estimator().quality(), clocksync::SyncQuality::absent);
    EXPECT_EQ(pairing.quality(), clocksync::SyncQuality::incomplete);
}

TEST(VmPairing, RepeatedCntPairsWithinTheSameVcpuFirstThenFirstComeFirstServed) {
    // Two handshakes carry cnt 7; the host halves are read in the opposite
    // order to the guest halves.  With the vCPUs known (lanes 1 and 0) the
    // lane decides; with one lane for both, arrival order does.
    for (const bool distinct_lanes : {true, false}) {
        VmPairing pairing = make();
        const std::uint32_t late_lane = distinct_lanes ? 1 : 0;
        if (distinct_lanes) {
            pairing.add(SyncHalf::hg_host, 7, 21200, late_lane, "host");
            pairing.add(SyncHalf::hg_host, 7, 1200, 0, "host");
        } else {
            pairing.add(SyncHalf::hg_host, 7, 1200, 0, "host");
            pairing.add(SyncHalf::hg_host, 7, 21200, late_lane, "host");
        }
        pairing.add(SyncHalf::hg_guest, 7, 210, 0, "guest");
        pairing.add(SyncHalf::hg_guest, 7, 20210, late_lane, "guest");
        pairing.add(SyncHalf::gh_guest, 7, 100, 0, "guest");
        pairing.add(SyncHalf::gh_host, 7, 1105, 0, "host");
        EXPECT_EQ(pairing.host_to_guest_matches(), 2u) << distinct_lanes;
        EXPECT_EQ(pairing.anomalies().rejected, 0u) << distinct_lanes;
        EXPECT_GT(pairing.anomalies().duplicate_cnt, 0u) << distinct_lanes;
    }
}

}  // namespace
}  // namespace vmtrace::sync
