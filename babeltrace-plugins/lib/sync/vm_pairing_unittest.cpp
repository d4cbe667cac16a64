// SPDX-License-Identifier: MIT
#include "lib/sync/vm_pairing.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

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

TEST(VmPairing, KnowsTheHostTimeOfItsFirstMatch) {
    VmPairing pairing = make();
    pairing.add(SyncHalf::gh_host, 3, 5105, 0, "host");  // no partner yet
    EXPECT_FALSE(pairing.first_match_host_time().has_value());
    pairing.add(SyncHalf::hg_guest, 2, 4210, 0, "guest");
    pairing.add(SyncHalf::hg_host, 2, 5200, 0, "host");  // matched: host sent at 5200
    EXPECT_EQ(pairing.first_match_host_time(), 5200);
    pairing.add(SyncHalf::gh_guest, 3, 4100, 0, "guest");  // matched later, received earlier
    EXPECT_EQ(pairing.first_match_host_time(), 5105);
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

// A memsync mark: the host reads its clock (begin), stores the mark, which
// the tracer stamps with its own clock, reads its clock again (end).  The
// tracer's one event is the receipt of the host->tracer message and the
// sending of the tracer->host one.
void add_mark(VmPairing& pairing, std::uint32_t cnt, std::int64_t tracer_time, std::int64_t host_begin,
              std::int64_t host_end, std::uint32_t cpu) {
    pairing.add(SyncHalf::hg_host, cnt, host_begin, cpu, "host");
    pairing.add(SyncHalf::hg_guest, cnt, tracer_time, cpu, "memtracer");
    pairing.add(SyncHalf::gh_guest, cnt, tracer_time, cpu, "memtracer");
    pairing.add(SyncHalf::gh_host, cnt, host_end, cpu, "host");
}

TEST(VmPairing, AMemsyncMarkIsOneMessageEachWayAndBracketsTheTracerTime) {
    VmPairing pairing(0x7ff000, std::make_unique<clocksync::ConvexHullEstimator>(), 64, kMemsyncHandshake);
    // Tracer clock: host = 1.0001 * tracer + 5 ms; the store lands between
    // the host's two clock reads, 200-900 ns after the first.
    auto host_of = [](std::int64_t tracer) { return tracer + tracer / 10'000 + 5'000'000; };
    for (std::uint32_t cnt = 0; cnt < 20; ++cnt) {
        const std::int64_t tracer = 1'000'000 + static_cast<std::int64_t>(cnt) * 1'000'000;
        const std::int64_t truth = host_of(tracer);
        const std::int64_t before = 200 + (cnt * 37) % 700;
        add_mark(pairing, cnt, tracer, truth - before, truth + 1'000 - before, cnt % 4);
    }
    EXPECT_EQ(pairing.guest_to_host_matches(), 20u);
    EXPECT_EQ(pairing.host_to_guest_matches(), 20u);
    EXPECT_EQ(pairing.pending(), 0u);
    EXPECT_EQ(pairing.anomalies().duplicate_cnt, 0u);  // both halves carry the cnt: not a repeat
    EXPECT_EQ(pairing.estimator().quality(), clocksync::SyncQuality::accurate);
    for (std::int64_t tracer : {1'500'000, 10'000'000, 19'700'000}) {
        const std::int64_t error = pairing.estimator().transform().apply(tracer) - host_of(tracer);
        const std::int64_t bound = pairing.estimator().bound_at(tracer);
        EXPECT_GE(bound, 0);
        EXPECT_LE(std::abs(error), bound) << tracer;
        EXPECT_LE(bound, 1'000) << tracer;  // never wider than one bracket
    }
}

TEST(VmPairing, MemsyncAnomaliesNameTheTracerEventAndThePage) {
    VmPairing pairing(0x7ff000, std::make_unique<clocksync::ConvexHullEstimator>(), 64, kMemsyncHandshake);
    EXPECT_EQ(pairing.name(SyncHalf::hg_host), "vmtrace_memsync_begin");
    EXPECT_EQ(pairing.name(SyncHalf::gh_host), "vmtrace_memsync_end");
    EXPECT_EQ(pairing.name(SyncHalf::gh_guest), "vmtrace_mem_sync");
    add_mark(pairing, 3, 100, 1000, 1100, 2);
    pairing.add(SyncHalf::gh_guest, 3, 150, 2, "memtracer");
    EXPECT_EQ(pairing.anomalies().duplicate_cnt, 1u);
    const std::string& first = pairing.anomalies().first;
    EXPECT_NE(first.find("event vmtrace_mem_sync"), std::string::npos) << first;
    EXPECT_NE(first.find("on CPU 2"), std::string::npos) << first;
    EXPECT_NE(first.find("hpa 0x7ff000"), std::string::npos) << first;
    EXPECT_EQ(first.find("vm_uid"), std::string::npos) << first;
}

}  // namespace
}  // namespace vmtrace::sync
