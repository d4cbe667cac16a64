// SPDX-License-Identifier: MIT
// The trackers the engine dispatches to, each on its own.
#include <gtest/gtest.h>

#include "lib/analysis/coscheduling.hpp"
#include "lib/analysis/exit_reason.hpp"
#include "lib/analysis/exit_tracker.hpp"
#include "lib/analysis/nondet_log.hpp"
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

}  // namespace
}  // namespace vmtrace::analysis
