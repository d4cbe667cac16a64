// SPDX-License-Identifier: MIT
#include "lib/isolate/join.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <random>

namespace vmtrace::isolate {
namespace {

constexpr std::int32_t kVmPid = 3000;
constexpr std::int32_t kVcpuThread = 3001;
constexpr std::int64_t kMemoryBound = 100;
constexpr std::int64_t kGuestBound = 50;
constexpr std::uint64_t kPage = 4096;

// One VM (vm_pid 3000, vCPU 0 on host thread 3001) whose guest runs
// processes 200 "app", 201 "other", 202 "third"; host CPU 0 runs the vCPU
// in guest mode, host CPU 1 runs host thread 77 in host mode.  Steps are
// 1000 ns apart, far beyond the bounds, unless a test says otherwise.
class JoinTest : public ::testing::Test {
protected:
    void SetUp() override {
        vm = join.vm_of_pid(kVmPid);
        join.bind_guest(vm, kGuestBound);
        join.host_vcpu_thread(kVmPid, 0, kVcpuThread);
        join.guest_thread(vm, 200, 200, "app");
        join.guest_thread(vm, 201, 201, "other");
        join.guest_thread(vm, 202, 202, "third");
        join.host_sched_switch(tick(), 1, 77);
        run_guest(200);
    }

    std::int64_t tick() { return now += 1000; }

    void run_guest(std::int32_t guest_tid) {
        join.host_kvm_exit(tick(), 0);
        join.guest_sched_switch(tick(), vm, 0, guest_tid, "");
        join.host_sched_switch(tick(), 0, kVcpuThread);
        join.host_kvm_entry(tick(), 0);
        tick();
    }

    void map_host(std::uint64_t gfn, std::uint64_t pfn, std::uint8_t level = 1) {
        join.host_tdp_map(tick(), kVmPid, 0, gfn, pfn, 0, level, 1);
    }

    // The final Result of one access at `time` (now + 1000 when 0).
    Result at(std::uint64_t hpa, std::uint32_t cpu = 0, std::int64_t time = 0) {
        join.access({.time = time == 0 ? tick() : time, .cpu = cpu, .size = 8, .kind = 0, .hpa = hpa, .user = 0});
        now = std::max(now, time);
        join.advance(tick());
        std::vector<Result> out;
        join.drain([&](const Access&, const Result& r) { out.push_back(r); });
        EXPECT_EQ(out.size(), 1u);
        return out.empty() ? Result{} : out.front();
    }

    Join join{JoinOptions{.memory_bound_ns = kMemoryBound}};
    int vm = -1;
    std::int64_t now = 0;
};

TEST_F(JoinTest, GuestAccessFollowsTheWholeChain) {
    map_host(0x10, 0x5000);
    join.guest_mm_map(tick(), vm, 200, 200, 0x7f0000, 0x10 * kPage);
    const Result r = at(0x5000 * kPage + 0x123);
    EXPECT_EQ(r.attribution, Attribution::guest);
    EXPECT_EQ(r.vm, vm);
    EXPECT_EQ(r.gpa, 0x10 * kPage + 0x123);
    EXPECT_EQ(r.gva, 0x7f0000u + 0x123);
    EXPECT_EQ(r.pid, 200);
    EXPECT_EQ(r.tid, 200);
    EXPECT_EQ(r.host_tid, kVcpuThread);
    ASSERT_NE(r.comm, nullptr);
    EXPECT_EQ(*r.comm, "app");
}

TEST_F(JoinTest, HugePages) {
    map_host(0x200, 0x40000, 2);
    join.guest_mm_map(tick(), vm, 200, 200, 0x600000, (0x200 + 5) * kPage);
    Result r = at((0x40000 + 5) * kPage + 8);
    EXPECT_EQ(r.attribution, Attribution::guest);
    EXPECT_EQ(r.gpa, (0x200 + 5) * kPage + 8);
    EXPECT_EQ(r.gva, 0x600000u + 8);

    map_host(std::uint64_t{1} << 18, std::uint64_t{2} << 18, 3);
    r = at(((std::uint64_t{2} << 18) + 77) * kPage);
    EXPECT_EQ(r.attribution, Attribution::guest_kernel);
    EXPECT_EQ(r.gpa, ((std::uint64_t{1} << 18) + 77) * kPage);
}

TEST_F(JoinTest, ZapThenRemapToAnotherPfn) {
    map_host(0x10, 0x5000);
    join.guest_mm_map(tick(), vm, 200, 200, 0x7f0000, 0x10 * kPage);
    EXPECT_EQ(at(0x5000 * kPage).attribution, Attribution::guest);
    join.host_tdp_map(tick(), kVmPid, 0, 0x10, 0x5000, 0, 1, 3);
    EXPECT_EQ(at(0x5000 * kPage).attribution, Attribution::before_map);  // the same CPU, the same page
    EXPECT_EQ(at(0x5000 * kPage, 1).attribution, Attribution::host);
    map_host(0x10, 0x6000);
    EXPECT_EQ(at(0x5000 * kPage, 1).attribution, Attribution::host);
    EXPECT_EQ(at(0x6000 * kPage).attribution, Attribution::guest);
    // op 2, the VM found from the page (vm_pid 0: reclaim in another task)
    join.host_tdp_map(tick(), 0, 0, 0x10, 0x7000, 0x6000, 1, 2);
    EXPECT_EQ(at(0x6000 * kPage, 1).attribution, Attribution::host);
    const Result r = at(0x7000 * kPage);
    EXPECT_EQ(r.attribution, Attribution::guest);
    EXPECT_EQ(r.gva, 0x7f0000u);
    EXPECT_EQ(join.contradictions().total(), 0u);
}

TEST_F(JoinTest, CopyOnWriteAfterFork) {
    map_host(0x10, 0x5000);
    map_host(0x11, 0x5001);
    map_host(0x12, 0x5002);
    join.guest_mm_map(tick(), vm, 200, 200, 0x400000, 0x10 * kPage);
    join.guest_mm_map(tick(), vm, 200, 200, 0x401000, 0x11 * kPage);
    join.guest_fork(tick(), vm, 200, 300, 300, "child");
    run_guest(300);
    Result r = at(0x5001 * kPage);  // inherited
    EXPECT_EQ(r.attribution, Attribution::guest);
    EXPECT_EQ(r.pid, 300);
    EXPECT_EQ(*r.comm, "child");
    EXPECT_EQ(r.gva, 0x401000u);
    join.guest_mm_map(tick(), vm, 300, 300, 0x401000, 0x12 * kPage);  // the child's own copy
    r = at(0x5001 * kPage);
    EXPECT_EQ(r.attribution, Attribution::shared_other);  // now the parent's only
    EXPECT_EQ(r.candidates, 1);
    EXPECT_EQ(at(0x5002 * kPage).gva, 0x401000u);
    EXPECT_EQ(at(0x5000 * kPage).attribution, Attribution::guest);  // still shared
    run_guest(200);
    EXPECT_EQ(at(0x5001 * kPage).attribution, Attribution::guest);
    EXPECT_EQ(at(0x5002 * kPage).attribution, Attribution::shared_other);
}

TEST_F(JoinTest, SharedPageChosenByTheCpuChain) {
    map_host(0x20, 0x8000);
    map_host(0x21, 0x8001);
    for (std::int32_t pid = 200; pid < 203; ++pid) {
        join.guest_mm_map(tick(), vm, pid, pid, 0x1000000 + pid * kPage, 0x20 * kPage);
    }
    for (std::int32_t pid = 200; pid < 203; ++pid) {
        run_guest(pid);
        const Result r = at(0x8000 * kPage + 4);
        EXPECT_EQ(r.attribution, Attribution::guest);
        EXPECT_EQ(r.pid, pid);
        EXPECT_EQ(r.gva, 0x1000000 + pid * kPage + 4);
    }
    join.guest_thread(vm, 400, 400, "stranger");
    run_guest(400);
    Result r = at(0x8000 * kPage);
    EXPECT_EQ(r.attribution, Attribution::shared_other);
    EXPECT_EQ(r.candidates, 3);
    EXPECT_EQ(r.pid, 400);
    EXPECT_EQ(r.gva, 0u);
    r = at(0x8001 * kPage);
    EXPECT_EQ(r.attribution, Attribution::guest_kernel);
    EXPECT_EQ(r.gpa, 0x21 * kPage);
}

TEST_F(JoinTest, HostModeAndUnmappedPages) {
    map_host(0x10, 0x5000);
    Result r = at(0x5000 * kPage + 1, 1);  // host thread 77 in host mode touches the VM's page
    EXPECT_EQ(r.attribution, Attribution::host_on_behalf);
    EXPECT_EQ(r.vm, vm);
    EXPECT_EQ(r.gpa, 0x10 * kPage + 1);
    EXPECT_EQ(r.host_tid, 77);
    EXPECT_EQ(r.pid, -1);

    r = at(0x9999 * kPage, 1);
    EXPECT_EQ(r.attribution, Attribution::host);
    EXPECT_EQ(r.vm, -1);
    EXPECT_EQ(r.host_tid, 77);

    r = at(0x9999 * kPage, 0);  // guest mode, the page's mapping older than the trace
    EXPECT_EQ(r.attribution, Attribution::before_map);
    EXPECT_EQ(r.vm, vm);
    EXPECT_EQ(r.pid, 200);
    EXPECT_EQ(r.gpa, 0u);

    join.host_kvm_exit(tick(), 0);  // the vCPU thread, now in host mode (device emulation)
    r = at(0x5000 * kPage, 0);
    EXPECT_EQ(r.attribution, Attribution::host_on_behalf);
    EXPECT_EQ(r.host_tid, kVcpuThread);

    // guest mode of another VM
    const int other = join.vm_of_pid(4000);
    join.host_vcpu_thread(4000, 0, 4001);
    join.host_sched_switch(tick(), 1, 4001);
    join.host_kvm_entry(tick(), 1);
    r = at(0x5000 * kPage, 1);
    EXPECT_EQ(r.attribution, Attribution::host_on_behalf);
    EXPECT_EQ(r.vm, vm);
    EXPECT_EQ(at(0x9999 * kPage, 1).vm, other);
}

TEST_F(JoinTest, ExecveExitAndMunmap) {
    for (std::uint64_t i = 0; i < 4; ++i) {
        map_host(0x30 + i, 0xa000 + i);
        join.guest_mm_map(tick(), vm, 200, 200, 0x10000 + i * kPage, (0x30 + i) * kPage);
    }
    join.guest_mm_map(tick(), vm, 201, 201, 0x10000, 0x30 * kPage);
    join.guest_mm_unmap(tick(), vm, 200, 0x11000, 0x12800, 0);  // pages 1 and 2 (partly)
    EXPECT_EQ(at(0xa000 * kPage).attribution, Attribution::guest);
    EXPECT_EQ(at(0xa001 * kPage).attribution, Attribution::guest_kernel);
    EXPECT_EQ(at(0xa002 * kPage).attribution, Attribution::guest_kernel);
    EXPECT_EQ(at(0xa003 * kPage).attribution, Attribution::guest);
    join.guest_mm_unmap(tick(), vm, 200, 0, 0, 2);  // execve: the reason alone says all
    EXPECT_EQ(at(0xa003 * kPage).attribution, Attribution::guest_kernel);
    EXPECT_EQ(at(0xa000 * kPage).attribution, Attribution::shared_other);
    join.guest_mm_unmap(tick(), vm, 201, 0, ~std::uint64_t{0}, 1);  // exit
    EXPECT_EQ(at(0xa000 * kPage).attribution, Attribution::guest_kernel);
    EXPECT_EQ(join.sizes().guest_mappings, 0u);
}

// The attribution of an access at T with one change at T + delta (a
// negative delta: the change comes first).
class AmbiguityTest : public JoinTest {
protected:
    Attribution around(std::int64_t delta, const std::function<void(std::int64_t)>& change) {
        const std::int64_t t = tick() + 1000;
        if (delta < 0) {
            change(t + delta);
        }
        join.access({.time = t, .cpu = 0, .size = 4, .kind = 1, .hpa = 0x5000 * kPage, .user = 0});
        if (delta >= 0) {
            change(t + delta);
        }
        now = t + std::max<std::int64_t>(delta, 0) + 10;
        join.advance(tick());
        Attribution a = Attribution::host;
        EXPECT_EQ(join.drain([&](const Access&, const Result& r) { a = r.attribution; }), 1u);
        return a;
    }
};

TEST_F(AmbiguityTest, HostMapChange) {
    const auto move = [&](std::int64_t t) { join.host_tdp_map(t, kVmPid, 0, 0x10, 0x6000, 0x5000, 1, 2); };
    const auto back = [&](std::int64_t t) { join.host_tdp_map(t, kVmPid, 0, 0x10, 0x5000, 0x6000, 1, 2); };
    map_host(0x10, 0x5000);
    EXPECT_EQ(around(kMemoryBound, move), Attribution::ambiguous);
    EXPECT_EQ(around(-kMemoryBound, back), Attribution::ambiguous);
    EXPECT_EQ(around(kMemoryBound + 1, move), Attribution::guest_kernel);
    EXPECT_EQ(around(-kMemoryBound - 1, back), Attribution::guest_kernel);
    EXPECT_EQ(join.contradictions().total(), 0u);
}

// Host changes are checked as soon as the memory bound has passed, not at
// the (longer) release lag: two later changes of the page cannot hide it.
TEST_F(AmbiguityTest, HostChangesPastTheMemoryBoundButBeforeRelease) {
    map_host(0x10, 0x5000);
    const auto move_and_back = [&](std::int64_t t) {
        join.host_tdp_map(t, kVmPid, 0, 0x10, 0x6000, 0x5000, 1, 2);
        join.host_tdp_map(t + 10, kVmPid, 0, 0x10, 0x5000, 0x6000, 1, 2);
    };
    EXPECT_EQ(around(kMemoryBound + 1, move_and_back), Attribution::guest_kernel);
    EXPECT_EQ(around(kMemoryBound - 20, move_and_back), Attribution::ambiguous);
}

TEST_F(AmbiguityTest, GuestMapChangeWithTheGuestBound) {
    map_host(0x10, 0x5000);
    const std::int64_t bound = kMemoryBound + kGuestBound;
    std::uint64_t gva = 0x400000;
    const auto remap = [&](std::int64_t t) { join.guest_mm_map(t, vm, 200, 200, gva += kPage, 0x10 * kPage); };
    EXPECT_EQ(around(bound, remap), Attribution::ambiguous);
    EXPECT_EQ(around(-bound, remap), Attribution::ambiguous);
    EXPECT_EQ(around(bound + 1, remap), Attribution::guest);
    EXPECT_EQ(around(-bound - 1, remap), Attribution::guest);
    const auto unmap = [&](std::int64_t t) { join.guest_mm_unmap(t, vm, 200, 0, ~std::uint64_t{0}, 1); };
    EXPECT_EQ(around(bound, unmap), Attribution::ambiguous);
}

// The statedumps at the session's start: a record of a mapping the live
// events already gave changes nothing, so an access beside it stays decided;
// one of a mapping never seen attributes what was `before-map` or
// `guest-kernel`.
TEST_F(AmbiguityTest, StatedumpRecordsOfKnownMappingsAreNoChange) {
    map_host(0x10, 0x5000);
    join.guest_mm_map(tick(), vm, 200, 200, 0x400000, 0x10 * kPage);
    const auto host_again = [&](std::int64_t t) { join.host_tdp_map(t, kVmPid, 0, 0x10, 0x5000, 0, 1, 4); };
    const auto guest_again = [&](std::int64_t t) { join.guest_mm_map(t, vm, 200, 200, 0x400000, 0x10 * kPage); };
    EXPECT_EQ(around(0, host_again), Attribution::guest);
    EXPECT_EQ(around(0, guest_again), Attribution::guest);
    const auto host_moved = [&](std::int64_t t) { join.host_tdp_map(t, kVmPid, 0, 0x10, 0x6000, 0, 1, 4); };
    EXPECT_EQ(around(kMemoryBound, host_moved), Attribution::ambiguous);
    EXPECT_EQ(join.contradictions().count(Contradiction::install_over_live), 1u);
}

TEST_F(JoinTest, StatedumpRecordsOfMappingsNeverSeen) {
    EXPECT_EQ(at(0x5000 * kPage).attribution, Attribution::before_map);
    join.host_tdp_map(tick(), kVmPid, 0, 0x10, 0x5000, 0, 1, 4);
    EXPECT_EQ(at(0x5000 * kPage).attribution, Attribution::guest_kernel);
    join.guest_mm_map(tick(), vm, 200, 200, 0x400000, 0x10 * kPage);
    const Result r = at(0x5000 * kPage + 4);
    EXPECT_EQ(r.attribution, Attribution::guest);
    EXPECT_EQ(r.gva, 0x400000u + 4);
    EXPECT_EQ(join.contradictions().total(), 0u);
}

TEST_F(AmbiguityTest, KvmEntryAndExit) {
    map_host(0x10, 0x5000);
    const auto exit = [&](std::int64_t t) { join.host_kvm_exit(t, 0); };
    const auto entry = [&](std::int64_t t) { join.host_kvm_entry(t, 0); };
    EXPECT_EQ(around(kMemoryBound, exit), Attribution::ambiguous);
    EXPECT_EQ(around(-kMemoryBound, entry), Attribution::ambiguous);
    EXPECT_EQ(around(kMemoryBound + 1, exit), Attribution::guest_kernel);
    EXPECT_EQ(around(-kMemoryBound - 1, entry), Attribution::guest_kernel);
    EXPECT_EQ(around(-kMemoryBound - 1, exit), Attribution::host_on_behalf);
    entry(tick());
    const auto switch_in = [&](std::int64_t t) { join.host_sched_switch(t, 0, kVcpuThread); };
    EXPECT_EQ(around(-kMemoryBound, switch_in), Attribution::ambiguous);
}

TEST_F(AmbiguityTest, GuestSchedSwitch) {
    map_host(0x10, 0x5000);
    const std::int64_t bound = kMemoryBound + kGuestBound;
    const auto to_other = [&](std::int64_t t) { join.guest_sched_switch(t, vm, 0, 201, ""); };
    EXPECT_EQ(around(bound, to_other), Attribution::ambiguous);
    EXPECT_EQ(around(-bound, to_other), Attribution::ambiguous);
    EXPECT_EQ(around(bound + 1, to_other), Attribution::guest_kernel);
    EXPECT_EQ(around(-bound - 1, to_other), Attribution::guest_kernel);
}

TEST_F(JoinTest, HeldUntilTheBoundHasPassedThenReleasedInOrder) {
    map_host(0x10, 0x5000);
    const std::int64_t t = tick();
    const std::int64_t lag = kMemoryBound + kGuestBound;
    EXPECT_EQ(join.lag(), lag);
    for (std::uint64_t i = 0; i < 5; ++i) {
        join.access({.time = t + static_cast<std::int64_t>(i), .cpu = 0, .size = 1, .kind = 0, .hpa = i, .user = i});
    }
    join.advance(t + lag);
    EXPECT_EQ(join.ready(), 0u);
    EXPECT_EQ(join.held(), 5u);
    join.advance(t + lag + 2);  // the first two windows are complete
    EXPECT_EQ(join.ready(), 2u);
    std::vector<std::uint64_t> order;
    join.drain([&](const Access& a, const Result&) { order.push_back(a.user); });
    join.flush();
    join.drain([&](const Access& a, const Result&) { order.push_back(a.user); });
    EXPECT_EQ(order, (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
}

TEST_F(JoinTest, InEqualsOutPerAttributionAndVm) {
    map_host(0x10, 0x5000);
    join.guest_mm_map(tick(), vm, 200, 200, 0x400000, 0x10 * kPage);
    std::uint64_t seen = 0;
    for (int i = 0; i < 3000; ++i) {
        const std::int64_t t = tick();
        join.access({.time = t,
                     .cpu = static_cast<std::uint32_t>(i % 3),
                     .size = 8,
                     .kind = 0,
                     .hpa = (i % 2 == 0 ? 0x5000 : 0x6000) * kPage,
                     .user = 0});
        if (i % 100 == 0) {
            join.host_kvm_exit(t + 10, 0);  // some ambiguous
            join.host_kvm_entry(t + 20, 0);
        }
        seen += join.drain([](const Access&, const Result&) {});
    }
    join.flush();
    seen += join.drain([](const Access&, const Result&) {});
    const Counters& c = join.counters();
    EXPECT_EQ(c.in, 3000u);
    EXPECT_EQ(c.out, 3000u);
    EXPECT_EQ(seen, 3000u);
    EXPECT_EQ(std::accumulate(c.by_attribution.begin(), c.by_attribution.end(), std::uint64_t{0}), 3000u);
    const auto& mine = c.by_vm[static_cast<std::size_t>(vm)];
    // 0x5000 from every CPU, 0x6000 from CPU 0 in guest mode (before-map)
    EXPECT_EQ(std::accumulate(mine.begin(), mine.end(), std::uint64_t{0}), 2000u);
    EXPECT_EQ(c.by_attribution[static_cast<std::size_t>(Attribution::host)], 1000u);  // 0x6000 from CPUs 1, 2
    EXPECT_GT(c.by_attribution[static_cast<std::size_t>(Attribution::ambiguous)], 0u);
    EXPECT_EQ(join.held() + join.ready(), 0u);
}

TEST_F(JoinTest, ChurnKeepsTheStructuresFlat) {
    const auto round = [&](std::uint64_t r) {
        for (std::uint64_t i = 0; i < 500; ++i) {
            const std::uint64_t pfn = 0x100000 + (r * 500 + i) % 40'000;
            join.host_tdp_map(tick(), kVmPid, 0, 0x1000 + i, pfn, 0, 1, 1);
            join.guest_mm_map(tick(), vm, 200, 200, 0x400000 + i * kPage, (0x1000 + i) * kPage);
            join.access({.time = tick(), .cpu = 0, .size = 8, .kind = 0, .hpa = pfn * kPage, .user = 0});
        }
        for (std::uint64_t i = 0; i < 500; ++i) {
            const std::uint64_t pfn = 0x100000 + (r * 500 + i) % 40'000;
            join.host_tdp_map(tick(), kVmPid, 0, 0x1000 + i, pfn, 0, 1, 3);
        }
        join.guest_mm_unmap(tick(), vm, 200, 0, ~std::uint64_t{0}, 1);
        join.drain([](const Access&, const Result&) {});
    };
    for (std::uint64_t r = 0; r < 10; ++r) {
        round(r);
    }
    const JoinSizes steady = join.sizes();
    for (std::uint64_t r = 10; r < 300; ++r) {
        round(r);
    }
    join.advance(tick());  // the last unmap's marks age out
    join.advance(tick());
    const JoinSizes last = join.sizes();
    EXPECT_EQ(last.host_mappings, 0u);
    EXPECT_EQ(last.guest_mappings, 0u);
    EXPECT_LE(last.host_marks, 16u);  // only the changes of the last few microseconds
    EXPECT_LE(last.guest_marks, 16u);
    EXPECT_LE(last.pending, 2u);
    EXPECT_LE(last.memory_bytes, steady.memory_bytes + steady.memory_bytes / 10);
    EXPECT_EQ(join.counters().by_attribution[static_cast<std::size_t>(Attribution::guest)], 300u * 500u);
}

TEST_F(JoinTest, ContradictionsOfTheInputAreCounted) {
    join.host_tdp_map(tick(), kVmPid, 0, 0x10, 0x5000, 0, 1, 3);  // remove of an unknown mapping
    map_host(0x10, 0x5000);
    map_host(0x10, 0x5000);                                                                  // install over a live one
    join.host_tdp_map(tick(), kVmPid, 0, 0x10, 0x6000, 0x4000, 1, 2);                        // wrong old pfn
    join.access({.time = now - 5000, .cpu = 0, .size = 8, .kind = 0, .hpa = 0, .user = 0});  // back in time
    join.access({.time = now, .cpu = 100'000, .size = 8, .kind = 0, .hpa = 0, .user = 0});   // no such CPU
    join.guest_mm_map(tick(), 7, 200, 200, 0, 0);                                            // no VM 7
    const Contradictions& c = join.contradictions();
    EXPECT_EQ(c.count(Contradiction::remove_unknown), 1u);
    EXPECT_EQ(c.count(Contradiction::install_over_live), 1u);
    EXPECT_EQ(c.count(Contradiction::change_wrong_old), 1u);
    EXPECT_EQ(c.count(Contradiction::time_backwards), 1u);
    EXPECT_EQ(c.count(Contradiction::cpu_out_of_range), 1u);
    EXPECT_EQ(c.count(Contradiction::bad_guest_event), 1u);
    EXPECT_NE(c.first_example(Contradiction::time_backwards).find("ns"), std::string::npos);
    join.flush();
    EXPECT_EQ(join.drain([](const Access&, const Result&) {}), 2u);  // still handed out
    EXPECT_EQ(join.counters().in, join.counters().out);
}

}  // namespace
}  // namespace vmtrace::isolate

namespace vmtrace::isolate {
namespace {

// Random and hostile input (huge indexes, bad levels and ops, frames past
// 52 bits, unknown VMs, time going back) never crashes the join, and every
// access fed comes out.
// Before any event of a VM's guest trace, a page no known process maps is
// not the guest kernel's: nothing says whose it is.
TEST(JoinUntraced, GuestPagesBeforeTheGuestTraceBegins) {
    Join join{JoinOptions{.memory_bound_ns = kMemoryBound}};
    const int vm = join.vm_of_pid(kVmPid);
    join.bind_guest(vm, kGuestBound);
    join.guest_thread(vm, 0, 0, "swapper");  // as the filter does when it ties the guest to its VM
    std::int64_t now = 0;
    join.host_vcpu_thread(kVmPid, 0, kVcpuThread);
    join.host_sched_switch(now += 1000, 0, kVcpuThread);
    join.host_kvm_entry(now += 1000, 0);
    join.host_tdp_map(now += 1000, kVmPid, 0, 0x10, 0x5000, 0, 1, 1);
    std::vector<Result> out;
    auto access = [&] {
        join.access({.time = now += 1000, .cpu = 0, .size = 8, .kind = 0, .hpa = 0x5000 * kPage, .user = 0});
    };
    access();
    join.guest_sched_switch(now += 1000, vm, 0, 300, "late");  // the guest trace begins
    access();
    join.advance(now += 10'000);
    join.drain([&](const Access&, const Result& r) { out.push_back(r); });
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].attribution, Attribution::guest_untraced);
    EXPECT_EQ(out[0].vm, vm);
    EXPECT_EQ(out[0].gpa, 0x10 * kPage);
    EXPECT_EQ(out[1].attribution, Attribution::guest_kernel);
    EXPECT_EQ(to_string(Attribution::guest_untraced), "guest-untraced");
}

// After the guest trace ends the VM runs on, but nothing says which thread:
// even a page the last-named process maps is guest_untraced, naming no one.
TEST_F(JoinTest, GuestPagesAfterTheGuestTraceEnds) {
    map_host(0x10, 0x5000);
    join.guest_mm_map(tick(), vm, 200, 200, 0x7000'0000, 0x10 * kPage);
    const std::uint64_t hpa = 0x5000 * kPage + 8;
    const Result before = at(hpa);
    join.guest_trace_end(vm);
    const Result after = at(hpa);
    join.guest_sched_switch(tick(), vm, 0, 200, "app");  // a guest event again
    const Result again = at(hpa);
    EXPECT_EQ(before.attribution, Attribution::guest);
    EXPECT_EQ(before.pid, 200);
    EXPECT_EQ(before.gva, 0x7000'0000u + 8);
    EXPECT_EQ(after.attribution, Attribution::guest_untraced);
    EXPECT_EQ(after.vm, vm);
    EXPECT_EQ(after.pid, -1);
    EXPECT_EQ(after.gpa, 0x10 * kPage + 8);
    EXPECT_EQ(again.attribution, Attribution::guest);
    join.guest_trace_end(-1);  // no such VM: ignored
    join.guest_trace_end(vm + 7);
}

// After the host trace ends, the tracer may record on (a window left
// open): neither the pages' owners nor what the CPUs run are known, so
// every later access is host_untraced, whatever the join knew last, and
// never ambiguous: it depends on nothing that could change.
TEST_F(JoinTest, EverythingAfterTheHostTraceEnds) {
    map_host(0x10, 0x5000);
    EXPECT_EQ(at(0x5000 * kPage).attribution, Attribution::guest_kernel);  // the VM's page, its vCPU running
    EXPECT_EQ(at(0x9000 * kPage).attribution, Attribution::before_map);    // no VM's page, in guest mode
    join.host_trace_end();
    map_host(0x11, 0x6000);
    std::vector<Result> after = {at(0x6000 * kPage, 0, now + 10)};  // within the bound of that change
    after.push_back(at(0x5000 * kPage));
    after.push_back(at(0x9000 * kPage));
    for (std::size_t i = 0; i < after.size(); ++i) {
        EXPECT_EQ(after[i].attribution, Attribution::host_untraced) << i;
        EXPECT_EQ(after[i].vm, -1) << i;
        EXPECT_EQ(after[i].pid, -1) << i;
        EXPECT_EQ(after[i].host_tid, -1) << i;
    }
    EXPECT_EQ(join.counters().in, 5u);
    EXPECT_EQ(join.counters().out, 5u);
    EXPECT_EQ(join.counters().by_attribution[static_cast<std::size_t>(Attribution::host_untraced)], 3u);
    EXPECT_EQ(to_string(Attribution::host_untraced), "host-untraced");
}

TEST(JoinFuzz, HostileInputInEqualsOut) {
    std::mt19937_64 rng(11);
    const auto pick = [&](std::initializer_list<std::uint64_t> values) {
        return *(values.begin() + static_cast<std::ptrdiff_t>(rng() % values.size()));
    };
    Join join{JoinOptions{.memory_bound_ns = 50, .max_cpus = 64, .max_vcpus = 16}};
    join.bind_guest(join.vm_of_pid(3000), 20);
    std::int64_t t = 0;
    std::uint64_t out = 0;
    for (int i = 0; i < 200'000; ++i) {
        t += static_cast<std::int64_t>(rng() % 20) - (rng() % 1000 == 0 ? 500 : 0);
        const auto cpu = static_cast<std::uint32_t>(pick({0, 1, 2, 63, 64, 0xffffffff}));
        const auto vm = static_cast<int>(rng() % 4) - 1;
        const std::uint64_t frame = pick({rng() % 64, (rng() % 64) << 9, ~std::uint64_t{0}, std::uint64_t{1} << 41});
        switch (rng() % 10) {
        case 0:
            join.host_tdp_map(t, static_cast<std::int32_t>(pick({0, 3000, 3100, 0x7fffffff})),
                              static_cast<std::uint8_t>(rng() % 3), frame, rng() % 128, rng() % 128,
                              static_cast<std::uint8_t>(rng() % 5), static_cast<std::uint8_t>(rng() % 5));
            break;
        case 1:
            join.host_sched_switch(t, cpu, static_cast<std::int32_t>(pick({0, 3001, 3101, 77})));
            break;
        case 2:
            if (rng() % 2 == 0) {
                join.host_kvm_entry(t, cpu);
            } else {
                join.host_kvm_exit(t, cpu);
            }
            break;
        case 3:
            join.host_vcpu_thread(static_cast<std::int32_t>(pick({3000, 3100, 0, 0xfffffffb})),
                                  static_cast<std::uint32_t>(pick({0, 1, 15, 16, 0xffffffff})),
                                  static_cast<std::int32_t>(pick({3001, 3101})));
            break;
        case 4:
            join.guest_sched_switch(t, vm, static_cast<std::uint32_t>(pick({0, 1, 15, 16, 0xffffffff})),
                                    static_cast<std::int32_t>(rng() % 8), rng() % 2 == 0 ? "x" : "");
            break;
        case 5:
            join.guest_mm_map(t, vm, static_cast<std::int32_t>(rng() % 8) - 1, static_cast<std::int32_t>(rng() % 8),
                              (rng() % 64) * 4096, frame * 4096);
            break;
        case 6:
            join.guest_mm_unmap(t, vm, static_cast<std::int32_t>(rng() % 8), rng() % (64 * 4096),
                                pick({0, rng() % (64 * 4096), ~std::uint64_t{0}}),
                                static_cast<std::uint8_t>(rng() % 4));
            break;
        case 7:
            join.guest_fork(t, vm, static_cast<std::int32_t>(rng() % 8), static_cast<std::int32_t>(rng() % 8),
                            static_cast<std::int32_t>(rng() % 8), "child");
            break;
        default:
            join.access({.time = t,
                         .cpu = cpu,
                         .size = 8,
                         .kind = 0,
                         .hpa = pick({rng() % (128 * 4096), ~std::uint64_t{0}}),
                         .user = 0});
            break;
        }
        out += join.drain([](const Access&, const Result&) {});
    }
    join.flush();
    out += join.drain([](const Access&, const Result&) {});
    EXPECT_GT(join.counters().in, 30'000u);
    EXPECT_EQ(join.counters().in, out);
    EXPECT_EQ(join.counters().out, out);
    EXPECT_GT(join.contradictions().count(Contradiction::bad_host_event), 0u);
    EXPECT_GT(join.contradictions().count(Contradiction::time_backwards), 0u);
    EXPECT_GT(join.contradictions().count(Contradiction::cpu_out_of_range), 0u);
    EXPECT_GT(join.contradictions().count(Contradiction::bad_guest_event), 0u);
}

}  // namespace
}  // namespace vmtrace::isolate
