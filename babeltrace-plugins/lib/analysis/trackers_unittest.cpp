// SPDX-License-Identifier: MIT
// The trackers the engine dispatches to, each on its own.
#include <gtest/gtest.h>

#include "lib/analysis/coscheduling.hpp"
#include "lib/analysis/exit_reason.hpp"
#include "lib/analysis/exit_tracker.hpp"
#include "lib/analysis/guest_scheduler.hpp"
#include "lib/analysis/host_scheduler.hpp"
#include "lib/analysis/nondet_log.hpp"
#include "lib/analysis/placement.hpp"
#include "lib/analysis/vcpu_states.hpp"
#include "lib/analysis/vm_identity.hpp"

namespace vmtrace::analysis {
namespace {

constexpr std::uint32_t kNpf = 0x400;
constexpr std::uint32_t kIoio = 0x07b;

TEST(ExitTrackerTest, LatencyRunsFromEachExitToTheNextEntry) {
    ExitTracker tracker;
    ExitTracker::Thread& t = tracker.thread(100);
    ExitTracker::on_entry(t, 500);  // an entry before any exit: no latency
    ExitTracker::on_exit(t, kIsaSvm, kNpf, 1000);
    ExitTracker::on_entry(t, 1300);
    ExitTracker::on_entry(t, 1400);  // a second entry: no second latency
    ExitTracker::on_exit(t, kIsaSvm, kNpf, 2000);
    ExitTracker::on_exit(t, kIsaSvm, kIoio, 2100);  // no entry between: the pending exit is the last
    ExitTracker::on_entry(t, 2600);
    EXPECT_EQ(&tracker.thread(100), &t);
    EXPECT_EQ(t.count, 3u);
    const auto tables = ExitTracker::vm_tables({{0, 100, &t}}, 1.0);
    ASSERT_EQ(tables.exits.size(), 4u);  // 2 reasons for the thread (by code), 2 over all
    EXPECT_EQ(tables.exits[0]["reason"], "IOIO");
    EXPECT_EQ(tables.exits[0]["latency_ns"]["max"], 500);
    EXPECT_EQ(tables.exits[1]["reason"], "NPF");
    EXPECT_EQ(tables.exits[1]["count"], 2);
    EXPECT_EQ(tables.exits[1]["latency_ns"]["min"], 300);
    EXPECT_EQ(tables.exits[1]["latency_ns"]["max"], 300);  // the second NPF never re-entered
    EXPECT_EQ(tables.exits[3]["vcpu"], "all");
    EXPECT_EQ(tables.histogram["reasons"].size(), 2u);
}

TEST(VmIdentityTest, AVmKnownByItsProcessTakesItsVmUid) {
    VmIdentity ids;
    const int by_pid = ids.by_pid(42);
    EXPECT_EQ(ids.by_pid(42), by_pid);
    EXPECT_EQ(ids.by_uid(0xabc, 42), by_pid);  // the process's VM takes the vm_uid
    EXPECT_EQ(ids.by_uid(0xabc, -1), by_pid);
    EXPECT_EQ(ids.at(by_pid).vm_uid, 0xabcU);
    EXPECT_NE(ids.by_uid(0xdef, 42), by_pid);  // a second vm_uid is another VM
    EXPECT_EQ(ids.size(), 2);
}

TEST(VmIdentityTest, MergeAndNames) {
    VmIdentity ids;
    const int process = ids.by_pid(42);
    ids.at(process).comm = "qemu-l2";
    const int known = ids.by_uid(0xabc, -1);
    EXPECT_EQ(ids.name(known, ""), "vm-abc");
    EXPECT_TRUE(ids.merge_process(known, process));
    EXPECT_EQ(ids.at(known).qemu_pid, 42);
    EXPECT_EQ(ids.name(known, ""), "qemu-l2");
    EXPECT_EQ(ids.by_pid(42), known);  // the process's own VM retired
    ids.at(known).guest_machine = 1;
    EXPECT_EQ(ids.name(known, "l2"), "l2");
    // a process VM with threads of its own stays a VM
    const int other = ids.by_pid(43);
    ids.at(other).vcpu_tids[0] = 430;
    EXPECT_FALSE(ids.merge_process(ids.by_uid(0xdef, -1), other));
}

TEST(CoschedulingTest, TimeByNumberOfVcpusInGuestMode) {
    Coscheduling c;
    c.start(1, 100);
    c.start(1, 150);  // already counting
    c.change(1, 1, 200);
    c.change(1, 1, 250);
    c.change(1, -1, 400);
    c.change(1, 0, 1000);
    EXPECT_EQ(c.running_ns(1), (std::vector<std::int64_t>{100, 650, 150}));
    EXPECT_TRUE(c.running_ns(0).empty());  // a VM never identified
}

TEST(NondetLogTest, ExitsStandForMissingHandlerEvents) {
    TraceEvent exit;
    exit.kind = EventKind::kvm_exit;
    exit.isa = kIsaSvm;
    exit.exit_reason = kIoio;
    exit.info1 = (0x3f8ULL << 16) | 1;  // in, port 0x3f8
    MachineInfo host;
    EXPECT_TRUE(NondetLog::from_exit(exit, host).has_value());
    host.has_pio = true;  // kvm_x86_pio events log the access instead
    EXPECT_FALSE(NondetLog::from_exit(exit, host).has_value());

    TraceEvent pio;
    pio.kind = EventKind::kvm_pio;
    pio.args[0] = 1;
    pio.args[1] = 0x3f8;
    pio.args[2] = 1;
    pio.args[3] = 1;
    pio.args[4] = 0x41;
    const auto entry = NondetLog::from_handler(pio);
    ASSERT_TRUE(entry.has_value());
    NondetLog log;
    EXPECT_EQ(NondetLog::add(log.thread(100), 2, *entry), "2,pio,kvm,out,0x3f8,1,1,0x41,");
    EXPECT_FALSE(NondetLog::from_handler(exit).has_value());
    const nlohmann::json table = NondetLog::vm_table({&log.thread(100)});
    EXPECT_EQ(table["pio"], 1);
    EXPECT_EQ(table["hypercall"], 0);
}

TEST(VcpuStatesTest, TimeAndIntervalsPerStateAndATimeline) {
    VcpuStates states(4);
    VcpuStates::Thread& t = states.thread(7, 1000);
    EXPECT_EQ(&states.thread(7, 5000), &t);          // the first call decides the start
    EXPECT_FALSE(VcpuStates::close(t, 1000, true));  // nothing to account yet
    VcpuStates::enter(t, VcpuState::guest, 1000);
    EXPECT_TRUE(VcpuStates::close(t, 3000, false));  // a new guest thread: the same interval goes on
    VcpuStates::enter(t, VcpuState::guest, 3000);
    EXPECT_TRUE(VcpuStates::close(t, 4000, true));
    VcpuStates::enter(t, VcpuState::hypervisor, 4000);
    EXPECT_TRUE(VcpuStates::close(t, 6000, true));
    VcpuStates::enter(t, VcpuState::idle, 3500);  // an interval never starts before the last
    EXPECT_EQ(t.since, 4000);
    EXPECT_EQ(VcpuStates::states_json(t)["guest"], 3000);
    EXPECT_EQ(VcpuStates::states_json(t)["hypervisor"], 2000);
    EXPECT_EQ(VcpuStates::intervals_json(t)["guest"], 1);
    EXPECT_EQ(VcpuStates::intervals_json(t)["idle"], 0);
    // 5 us from 1000 in 4 bins of 1 us doubles the bins to 2 us
    const std::int64_t bin_ns = states.common_bin_ns();
    EXPECT_EQ(bin_ns, 2000);
    EXPECT_EQ(states.bins_over(5000, bin_ns), 3u);
    EXPECT_EQ(states.bins_over(100'000, bin_ns), 4u);  // at most the configured width
    EXPECT_EQ(states.bins_over(0, bin_ns), 0u);
    const nlohmann::json table = VcpuStates::timeline_table({{0, 7, &t}}, bin_ns, 3);
    EXPECT_EQ(table["vcpus"][0]["guest"], (std::vector<double>{1.0, 0.5, 0.0}));
    EXPECT_EQ(table["vcpus"][0]["hypervisor"], (std::vector<double>{0.0, 0.5, 0.5}));
}

TEST(PlacementTest, ResidencyPerPhysicalCpu) {
    Placement placement;
    Placement::Thread& a = placement.thread(10);
    Placement::Thread& b = placement.thread(11);
    Placement::arrive(a, 2, 100);
    Placement::leave(a, 300);
    Placement::leave(a, 400);  // not running: nothing more
    Placement::arrive(a, 0, 500);
    Placement::migrated(a);
    Placement::close(a, 800);
    Placement::close(a, 900);  // counted once per time
    Placement::arrive(b, 3, 0);
    Placement::close(b, 50);
    EXPECT_EQ(a.residency_ns, (std::map<int, std::int64_t>{{0, 400}, {2, 200}}));
    EXPECT_EQ(a.migrations, 1u);
    EXPECT_EQ(Placement::residency_json(a)["2"], 200);
    const nlohmann::json table = Placement::vm_table({&a, &b});
    EXPECT_EQ(table["pcpus"], (std::vector<int>{0, 2, 3}));
    EXPECT_EQ(table["residency_ns"][0], (std::vector<std::int64_t>{400, 200, 0}));
    EXPECT_EQ(table["residency_ns"][1], (std::vector<std::int64_t>{0, 0, 50}));
}

TEST(HostSchedulerTest, CurrentThreadAndLastSwitchOfEach) {
    HostScheduler host;
    host.see_cpu(1);
    EXPECT_EQ(host.cpus(), 2u);
    EXPECT_EQ(host.current(0), -1);
    host.on_switch(3, 0, 0, "swapper/3", 50, "qemu-kvm", 1000);
    EXPECT_EQ(host.cpus(), 4u);
    EXPECT_EQ(host.current(3), 50);
    host.on_switch(3, 50, 1, "", 0, "swapper/3", 2000);
    const HostScheduler::Thread* t = host.find(50);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->cpu, -1);
    EXPECT_EQ(t->switched_in, 1000);
    EXPECT_EQ(t->switched_out, 2000);
    EXPECT_EQ(t->out_state, 1);
    EXPECT_EQ(t->comm, "qemu-kvm");  // an empty prev_comm keeps the name
    EXPECT_EQ(host.pid_of(50), -1);
    host.set_process(50, 49);
    EXPECT_EQ(host.pid_of(50), 49);
    EXPECT_EQ(host.find(99), nullptr);
}

TEST(GuestSchedulerTest, SplitsGuestTimeAtTheSwitchesKept) {
    GuestScheduler guest;
    EXPECT_EQ(guest.current(0), nullptr);
    std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::string>> pieces;
    const auto collect = [&](std::int64_t start, std::int64_t end, std::int64_t tid, std::string_view comm) {
        pieces.emplace_back(start, end, tid, std::string(comm));
    };
    EXPECT_FALSE(guest.split(0, 0, 100, collect));  // nothing known of vCPU 0
    guest.on_switch(0, 5, "init", 50, false);
    ASSERT_NE(guest.current(0), nullptr);
    EXPECT_EQ(guest.current(0)->comm, "init");
    // no switch kept: the current thread ran throughout
    EXPECT_TRUE(guest.split(0, 0, 100, collect));
    ASSERT_EQ(pieces.size(), 1u);
    EXPECT_EQ(std::get<2>(pieces[0]), 5);
    pieces.clear();
    guest.on_switch(0, 6, "worker", 200, true);
    guest.on_switch(0, 0, "swapper/0", 300, true);
    EXPECT_TRUE(guest.split(0, 150, 350, collect));
    ASSERT_EQ(pieces.size(), 3u);
    EXPECT_EQ(pieces[0], std::make_tuple(150, 200, 5, std::string("init")));
    EXPECT_EQ(pieces[1], std::make_tuple(200, 300, 6, std::string("worker")));
    EXPECT_EQ(pieces[2], std::make_tuple(300, 350, 0, std::string("swapper/0")));
    guest.clear_history();
    guest.on_migrate(6, "worker", 0, 3);
    guest.on_migrate(6, "worker", 0, 3);
    const GuestScheduler::Tables tables = guest.tables(2, 2);
    EXPECT_EQ(tables.omitted, 1u);  // 3 threads, 2 shown: the busiest
    ASSERT_EQ(tables.threads.size(), 2u);
    EXPECT_EQ(tables.threads[0]["tid"], 5);
    EXPECT_EQ(tables.threads[0]["guest_ns"], 150);
    EXPECT_EQ(tables.threads[1]["tid"], 6);
    EXPECT_EQ(tables.threads[1]["vcpu_migrations"], 2);
    EXPECT_EQ(tables.migrations, 2u);
    ASSERT_EQ(tables.matrix.size(), 4u);  // widened to the CPUs migrations name
    EXPECT_EQ(tables.matrix[0][3], 2);
}

}  // namespace
}  // namespace vmtrace::analysis
