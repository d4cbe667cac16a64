// SPDX-License-Identifier: MIT
#include "lib/analysis/analysis_engine.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lib/analysis/exit_reason.hpp"

namespace vmtrace::analysis {
namespace {

using Row = std::map<std::string, std::string>;
using nlohmann::json;

constexpr std::uint32_t kNpf = 0x400;
constexpr std::uint32_t kHlt = 0x078;
constexpr std::uint32_t kIoio = 0x07b;
constexpr std::uint32_t kMsr = 0x07c;
constexpr std::uint32_t kVmmcall = 0x081;

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> out;
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, ',')) {
        out.push_back(field);
    }
    if (!line.empty() && line.back() == ',') {
        out.emplace_back();
    }
    return out;
}

// A CSV file's rows by column name (no field of these tests is quoted).
std::vector<Row> read_csv(const std::filesystem::path& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << path;
    std::string line;
    std::getline(in, line);
    const auto header = split(line);
    std::vector<Row> rows;
    while (std::getline(in, line)) {
        const auto fields = split(line);
        EXPECT_EQ(fields.size(), header.size()) << path << ": " << line;
        Row row;
        for (std::size_t i = 0; i < header.size() && i < fields.size(); ++i) {
            row[header[i]] = fields[i];
        }
        rows.push_back(row);
    }
    return rows;
}

TraceEvent sched_switch(std::int64_t time, std::uint32_t cpu, std::int64_t prev, std::int64_t prev_state,
                        std::int64_t next, unsigned machine = 0, std::string_view next_comm = "") {
    TraceEvent e;
    e.time = time;
    e.cpu = cpu;
    e.machine = machine;
    e.kind = EventKind::sched_switch;
    e.prev_tid = prev;
    e.prev_state = prev_state;
    e.next_tid = next;
    e.next_comm = next_comm;
    return e;
}

TraceEvent kvm(EventKind kind, std::int64_t time, std::uint32_t cpu, std::uint32_t vcpu) {
    TraceEvent e;
    e.time = time;
    e.cpu = cpu;
    e.kind = kind;
    e.vcpu_id = vcpu;
    return e;
}

TraceEvent entry(std::int64_t time, std::uint32_t cpu, std::uint32_t vcpu = 0) {
    return kvm(EventKind::kvm_entry, time, cpu, vcpu);
}

TraceEvent exit_event(std::int64_t time, std::uint32_t cpu, std::uint32_t reason, std::uint64_t info1 = 0,
                      std::uint32_t vcpu = 0, std::uint32_t isa = kIsaSvm) {
    TraceEvent e = kvm(EventKind::kvm_exit, time, cpu, vcpu);
    e.isa = isa;
    e.exit_reason = reason;
    e.info1 = info1;
    return e;
}

TraceEvent handler(EventKind kind, std::int64_t time, std::uint32_t cpu, std::array<std::uint64_t, 5> args) {
    TraceEvent e = kvm(kind, time, cpu, 0);
    std::copy(args.begin(), args.end(), e.args);
    return e;
}

TraceEvent vmsync(std::int64_t time, std::uint32_t cpu, std::uint64_t vm_uid, std::uint32_t vcpu) {
    TraceEvent e = kvm(EventKind::vmsync_host, time, cpu, vcpu);
    e.vm_uid = vm_uid;
    return e;
}

TraceEvent vcpu_thread(std::int64_t time, std::int64_t pid, std::uint32_t vcpu, std::int64_t tid,
                       std::string_view comm = "") {
    TraceEvent e = kvm(EventKind::vcpu_thread, time, 0, vcpu);
    e.pid = pid;
    e.tid = tid;
    e.comm = comm;
    return e;
}

class AnalysisEngineTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = std::filesystem::temp_directory_path() /
               ("vmtrace-analysis-" + std::to_string(::getpid()) + "-" + info->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override {
        if (!HasFailure()) {
            std::filesystem::remove_all(dir_);
        }
    }

    AnalysisOptions options(const std::string& sub = "") const {
        AnalysisOptions o;
        o.output_dir = (dir_ / sub).string();
        std::filesystem::create_directories(o.output_dir);
        return o;
    }

    static MachineInfo host_info(bool handlers = true) {
        MachineInfo m;
        m.hostname = "l1";
        m.host = true;
        m.has_pio = m.has_mmio = m.has_msr = m.has_inj_virq = m.has_hypercall = handlers;
        return m;
    }

    json analysis(const std::string& sub = "") const {
        std::ifstream in(dir_ / sub / "analysis.json");
        return json::parse(in);
    }
    std::vector<Row> csv(const std::string& name, const std::string& sub = "") const {
        return read_csv(dir_ / sub / name);
    }

    std::filesystem::path dir_;
};

const json& vcpu_of(const json& vm, std::int64_t tid) {
    for (const auto& v : vm["vcpus"]) {
        if (v["tid"] == tid) {
            return v;
        }
    }
    throw std::runtime_error("no vCPU thread " + std::to_string(tid));
}

const json& exit_entry(const json& vm, const std::string& reason, const json& vcpu) {
    for (const auto& e : vm["exits"]) {
        if (e["reason"] == reason && e["vcpu"] == vcpu) {
            return e;
        }
    }
    throw std::runtime_error("no exit " + reason);
}

std::vector<Row> rows_of(const std::vector<Row>& rows, const std::string& column, const std::string& value) {
    std::vector<Row> out;
    for (const Row& r : rows) {
        if (r.at(column) == value) {
            out.push_back(r);
        }
    }
    return out;
}

// (a) one vCPU thread through every state
TEST_F(AnalysisEngineTest, StatesIntervalsExitsAndLatencies) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(vcpu_thread(1100, 50, 0, 100, "qemu-system-x86"));
    engine.on_event(entry(2000, 0));
    engine.on_event(exit_event(5000, 0, kNpf));
    engine.on_event(entry(5300, 0));
    engine.on_event(exit_event(8000, 0, kNpf));
    engine.on_event(sched_switch(8100, 0, 100, 0, 0));  // runnable: preempted
    engine.on_event(sched_switch(9000, 1, 0, 0, 100));  // back, on CPU 1
    engine.on_event(entry(9500, 1));
    engine.on_event(exit_event(10000, 1, kHlt));
    engine.on_event(sched_switch(10200, 1, 100, 1, 0));  // blocked: idle
    engine.on_event(sched_switch(12000, 1, 0, 0, 100));
    engine.on_event(entry(12100, 1));
    engine.on_host_time(13000);
    engine.finish();

    const json a = analysis();
    EXPECT_EQ(a["begin_ns"], 1000);
    EXPECT_EQ(a["end_ns"], 13000);
    EXPECT_EQ(a["events"]["host"], 13);
    EXPECT_EQ(a["events"]["unattributed"], 0);
    EXPECT_EQ(a["events"]["reordered"], 0);
    EXPECT_TRUE(a["warnings"].empty()) << a["warnings"];
    ASSERT_EQ(a["vms"].size(), 1u);
    const json& vm = a["vms"][0];
    EXPECT_EQ(vm["qemu_pid"], 50);
    EXPECT_EQ(vm["qemu_comm"], "qemu-system-x86");
    EXPECT_EQ(vm["name"], "qemu-system-x86");
    ASSERT_EQ(vm["vcpus"].size(), 1u);
    const json& v = vm["vcpus"][0];
    EXPECT_EQ(v["vcpu"], 0);
    EXPECT_EQ(v["tid"], 100);
    EXPECT_EQ(v["states_ns"],
              json({{"guest", 7100}, {"hypervisor", 2200}, {"preempted", 900}, {"idle", 1800}, {"unknown", 0}}));
    EXPECT_EQ(v["intervals"], json({{"guest", 4}, {"hypervisor", 6}, {"preempted", 1}, {"idle", 1}, {"unknown", 0}}));
    EXPECT_EQ(v["exits"], 3);
    EXPECT_EQ(v["pcpu_residency_ns"], json({{"0", 7100}, {"1", 2200}}));
    EXPECT_EQ(vm["placement"]["pcpus"], json({0, 1}));

    for (const json& who : {json(0), json("all")}) {
        const json& npf = exit_entry(vm, "NPF", who);
        EXPECT_EQ(npf["count"], 2);
        EXPECT_EQ(npf["isa"], "svm");
        EXPECT_EQ(npf["code"], kNpf);
        EXPECT_EQ(npf["latency_ns"]["min"], 300);
        EXPECT_EQ(npf["latency_ns"]["max"], 1500);  // 8000 to 9500, preempted in between
        EXPECT_EQ(npf["latency_ns"]["mean"], 900.0);
        const json& hlt = exit_entry(vm, "HLT", who);
        EXPECT_EQ(hlt["count"], 1);
        EXPECT_EQ(hlt["latency_ns"]["min"], 2100);
        EXPECT_EQ(hlt["latency_ns"]["max"], 2100);
        EXPECT_EQ(hlt["latency_ns"]["p50"], 2100);
    }
    // 300 in [256, 512), 1500 in [1024, 2048), 2100 in [2048, 4096)
    const json& hist = vm["exit_histogram"];
    ASSERT_EQ(hist["bounds_ns"].size(), 13u);
    EXPECT_EQ(hist["bounds_ns"][9], 256);
    EXPECT_EQ(hist["reasons"]["NPF"], json({0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0}));
    EXPECT_EQ(hist["reasons"]["HLT"], json({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));

    const json& tl = vm["timeline"];
    EXPECT_EQ(tl["bin_ns"], 1000);
    EXPECT_EQ(tl["bins"], 12);
    EXPECT_EQ(tl["vcpus"][0]["guest"][1], 1.0);      // [2000, 3000)
    EXPECT_EQ(tl["vcpus"][0]["preempted"][7], 0.9);  // [8100, 9000)
    EXPECT_EQ(tl["vcpus"][0]["idle"][10], 1.0);

    const auto rows = csv("vcpu_states.csv");
    const std::vector<std::tuple<std::string, int, int>> expected = {
        {"hypervisor", 1000, 2000},   {"guest", 2000, 5000},     {"hypervisor", 5000, 5300},   {"guest", 5300, 8000},
        {"hypervisor", 8000, 8100},   {"preempted", 8100, 9000}, {"hypervisor", 9000, 9500},   {"guest", 9500, 10000},
        {"hypervisor", 10000, 10200}, {"idle", 10200, 12000},    {"hypervisor", 12000, 12100}, {"guest", 12100, 13000},
    };
    ASSERT_EQ(rows.size(), expected.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& [state, start, end] = expected[i];
        EXPECT_EQ(rows[i].at("vm_id"), "0") << i;
        EXPECT_EQ(rows[i].at("vcpu"), "0") << i;
        EXPECT_EQ(rows[i].at("tid"), "100") << i;
        EXPECT_EQ(rows[i].at("state"), state) << i;
        EXPECT_EQ(rows[i].at("start_ns"), std::to_string(start)) << i;
        EXPECT_EQ(rows[i].at("end_ns"), std::to_string(end)) << i;
        EXPECT_EQ(rows[i].at("duration_ns"), std::to_string(end - start)) << i;
        EXPECT_EQ(rows[i].at("guest_tid"), "") << i;
        // on a physical CPU in guest mode and in the hypervisor only
        const bool on_cpu = state == "guest" || state == "hypervisor";
        EXPECT_EQ(rows[i].at("pcpu").empty(), !on_cpu) << i;
    }

    const auto exits = csv("exits.csv");
    ASSERT_EQ(exits.size(), 4u);  // NPF and HLT, for vCPU 0 and for all
    const auto vms = csv("vms.csv");
    ASSERT_EQ(vms.size(), 1u);
    EXPECT_EQ(vms[0].at("qemu_pid"), "50");
    EXPECT_EQ(vms[0].at("vcpus"), "1");
}

// (b) rows written before the thread's identification name its VM
TEST_F(AnalysisEngineTest, EventsBeforeIdentificationAreAttributedAfterwards) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info(false));
    engine.on_event(sched_switch(1000, 1, 0, 0, 200));
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(vmsync(1050, 1, 0x111, 0));  // thread 200 known at once: VM 0
    engine.on_event(entry(1100, 0, 1));          // thread 100: not yet
    engine.on_event(entry(1150, 1, 0));
    engine.on_event(exit_event(1200, 0, kIoio, (std::uint64_t{0x70} << 16) | 0x10, 1));
    engine.on_event(handler(EventKind::kvm_msr, 1250, 0, {1, 0x6e0, 0x1234, 0, 0}));
    engine.on_event(entry(1300, 0, 1));
    engine.on_event(vmsync(1400, 0, 0x222, 1));  // thread 100 is VM 1's vCPU 1
    engine.on_event(exit_event(1500, 0, kNpf, 0, 1));
    engine.on_host_time(2000);
    engine.finish();

    const json a = analysis();
    ASSERT_EQ(a["vms"].size(), 2u);
    EXPECT_EQ(a["vms"][0]["id"], 0);
    EXPECT_EQ(a["vms"][0]["vm_uid"], "0x111");
    EXPECT_EQ(a["vms"][1]["id"], 1);
    EXPECT_EQ(a["vms"][1]["vm_uid"], "0x222");
    const json& v = vcpu_of(a["vms"][1], 100);
    EXPECT_EQ(v["vcpu"], 1);
    EXPECT_EQ(v["states_ns"],
              json({{"guest", 300}, {"hypervisor", 700}, {"preempted", 0}, {"idle", 0}, {"unknown", 0}}));
    EXPECT_EQ(a["vms"][1]["nondet"]["pio"], 1);
    EXPECT_EQ(a["vms"][1]["nondet"]["msr"], 1);
    EXPECT_TRUE(a["warnings"].empty()) << a["warnings"];

    const auto states = csv("vcpu_states.csv");
    const auto of100 = rows_of(states, "tid", "100");
    ASSERT_EQ(of100.size(), 5u);
    for (const Row& r : of100) {
        EXPECT_EQ(r.at("vm_id"), "1") << r.at("start_ns");
        EXPECT_EQ(r.at("vcpu"), "1") << r.at("start_ns");
    }
    EXPECT_EQ(of100[0].at("start_ns"), "1000");
    EXPECT_EQ(of100[0].at("state"), "hypervisor");
    const auto of200 = rows_of(states, "tid", "200");
    ASSERT_EQ(of200.size(), 2u);
    for (const Row& r : of200) {
        EXPECT_EQ(r.at("vm_id"), "0");
    }

    const auto nondet = csv("nondet.csv");
    ASSERT_EQ(nondet.size(), 2u);
    EXPECT_EQ(nondet[0].at("time_ns"), "1200");
    EXPECT_EQ(nondet[0].at("vm_id"), "1");
    EXPECT_EQ(nondet[0].at("vcpu"), "1");
    EXPECT_EQ(nondet[0].at("kind"), "pio");
    EXPECT_EQ(nondet[0].at("source"), "exit");
    EXPECT_EQ(nondet[1].at("time_ns"), "1250");
    EXPECT_EQ(nondet[1].at("vm_id"), "1");
    EXPECT_EQ(nondet[1].at("kind"), "msr");
}

// (c) a VM known by its vm_uid and then by its process is one VM
TEST_F(AnalysisEngineTest, VcpuThreadEventsMergeIntoTheVmKnownByUid) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    engine.on_event(vcpu_thread(900, 50, 1, 0, "qemu-l2a"));  // vCPU 1 has not run: no thread
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(entry(1100, 0));
    engine.on_event(vmsync(1200, 0, 0xabc, 0));
    engine.on_event(exit_event(1300, 0, kNpf));
    engine.on_event(vcpu_thread(1400, 50, 0, 100, "qemu-l2a"));
    engine.on_event(entry(1500, 0));
    engine.on_host_time(2000);
    engine.finish();

    const json a = analysis();
    ASSERT_EQ(a["vms"].size(), 1u) << a["vms"];
    const json& vm = a["vms"][0];
    EXPECT_EQ(vm["vm_uid"], "0xabc");
    EXPECT_EQ(vm["qemu_pid"], 50);
    EXPECT_EQ(vm["qemu_comm"], "qemu-l2a");
    ASSERT_EQ(vm["vcpus"].size(), 1u);
    EXPECT_EQ(vm["vcpus"][0]["tid"], 100);
    EXPECT_EQ(vm["vcpus"][0]["vcpu"], 0);
    EXPECT_TRUE(a["warnings"].empty()) << a["warnings"];
    const auto vms = csv("vms.csv");
    ASSERT_EQ(vms.size(), 1u);
    for (const Row& r : csv("vcpu_states.csv")) {
        EXPECT_EQ(r.at("vm_id"), vm["id"].dump());
    }
}

// (c) the other order: the process is known before the vm_uid
TEST_F(AnalysisEngineTest, VmUidNamesTheVmKnownByProcess) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    engine.on_event(vcpu_thread(900, 50, 0, 100));
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(entry(1100, 0));
    engine.on_event(vmsync(1200, 0, 0xabc, 0));
    engine.on_host_time(2000);
    engine.finish();
    const json a = analysis();
    ASSERT_EQ(a["vms"].size(), 1u);
    EXPECT_EQ(a["vms"][0]["vm_uid"], "0xabc");
    EXPECT_EQ(a["vms"][0]["qemu_pid"], 50);
    EXPECT_TRUE(a["warnings"].empty()) << a["warnings"];
}

// (d) a synchronised guest's threads split guest-mode intervals, also
// those held until the vCPU's identification
TEST_F(AnalysisEngineTest, GuestThreadsSplitGuestIntervals) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    MachineInfo guest;
    guest.hostname = "l2";
    guest.vm_uid = 0xabc;
    guest.synchronized = true;
    const unsigned g = engine.add_machine(guest);
    ASSERT_EQ(g, 1u);
    engine.declare_cpu(g, 1);  // the guest has two vCPUs

    engine.on_event(sched_switch(900, 0, 0, 0, 400, g, "worker"));  // guest vCPU 0 runs 400
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));              // host CPU 0 runs vCPU thread 100
    engine.on_event(entry(1100, 0));                                // not identified yet
    engine.on_event(sched_switch(1500, 0, 400, 0, 401, g, "sh"));
    engine.on_event(exit_event(2000, 0, kNpf));
    engine.on_event(vmsync(2100, 0, 0xabc, 0));  // identified: the held rows are replayed
    engine.on_event(entry(2200, 0));
    engine.on_event(sched_switch(2600, 0, 401, 0, 400, g, "worker"));
    engine.on_event(exit_event(3000, 0, kNpf));
    TraceEvent migrate;
    migrate.time = 3100;
    migrate.machine = g;
    migrate.kind = EventKind::sched_migrate_task;
    migrate.tid = 401;
    migrate.comm = "sh";
    migrate.orig_cpu = 0;
    migrate.dest_cpu = 1;
    engine.on_event(migrate);
    engine.on_host_time(4000);
    engine.finish();

    const json a = analysis();
    ASSERT_EQ(a["vms"].size(), 1u);
    const json& vm = a["vms"][0];
    EXPECT_EQ(vm["name"], "l2");
    EXPECT_EQ(vm["guest_trace"], "l2");
    const json& v = vm["vcpus"][0];
    EXPECT_EQ(v["states_ns"]["guest"], 1700);
    EXPECT_EQ(v["intervals"]["guest"], 2);  // a guest thread switch does not end the state
    ASSERT_EQ(vm["guest_threads"].size(), 2u) << vm["guest_threads"];
    EXPECT_EQ(vm["guest_threads"][0], json({{"tid", 401},
                                            {"comm", "sh"},
                                            {"guest_ns", 900},
                                            {"vcpu_migrations", 1},
                                            {"guest_ns_by_vcpu", {{"0", 900}}}}));
    EXPECT_EQ(vm["guest_threads"][1], json({{"tid", 400},
                                            {"comm", "worker"},
                                            {"guest_ns", 800},
                                            {"vcpu_migrations", 0},
                                            {"guest_ns_by_vcpu", {{"0", 800}}}}));
    EXPECT_EQ(vm["guest_migrations"], json({{"count", 1}, {"matrix", {{0, 1}, {0, 0}}}}));

    const auto guest_rows = rows_of(csv("vcpu_states.csv"), "state", "guest");
    const std::vector<std::tuple<int, int, std::string, std::string>> expected = {
        {1100, 1500, "400", "worker"},
        {1500, 2000, "401", "sh"},
        {2200, 2600, "401", "sh"},
        {2600, 3000, "400", "worker"},
    };
    ASSERT_EQ(guest_rows.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto& [start, end, tid, comm] = expected[i];
        EXPECT_EQ(guest_rows[i].at("vm_id"), "0") << i;
        EXPECT_EQ(guest_rows[i].at("start_ns"), std::to_string(start)) << i;
        EXPECT_EQ(guest_rows[i].at("end_ns"), std::to_string(end)) << i;
        EXPECT_EQ(guest_rows[i].at("guest_tid"), tid) << i;
        EXPECT_EQ(guest_rows[i].at("guest_comm"), comm) << i;
    }
    const auto migrations = csv("migrations.csv");
    ASSERT_EQ(migrations.size(), 1u);
    EXPECT_EQ(migrations[0].at("level"), "guest-thread");
    EXPECT_EQ(migrations[0].at("machine"), "l2");
    EXPECT_EQ(migrations[0].at("tid"), "401");
}

// (d) a held guest interval in which the guest switched no thread
TEST_F(AnalysisEngineTest, HeldGuestIntervalWithoutGuestSwitch) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    MachineInfo guest;
    guest.hostname = "l2";
    guest.vm_uid = 0xabc;
    guest.synchronized = true;
    const unsigned g = engine.add_machine(guest);
    engine.on_event(sched_switch(900, 0, 0, 0, 400, g, "worker"));
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(entry(1100, 0));
    engine.on_event(exit_event(2000, 0, kNpf));
    engine.on_event(vmsync(2100, 0, 0xabc, 0));
    engine.on_host_time(3000);
    engine.finish();
    const json a = analysis();
    ASSERT_EQ(a["vms"][0]["guest_threads"].size(), 1u);
    EXPECT_EQ(a["vms"][0]["guest_threads"][0]["tid"], 400);
    EXPECT_EQ(a["vms"][0]["guest_threads"][0]["guest_ns"], 900);
    const auto guest_rows = rows_of(csv("vcpu_states.csv"), "state", "guest");
    ASSERT_EQ(guest_rows.size(), 1u);
    EXPECT_EQ(guest_rows[0].at("guest_tid"), "400");
}

// (e) the non-deterministic event log from KVM's handler events
TEST_F(AnalysisEngineTest, NondetRowsFromHandlerEvents) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info(true));
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(vcpu_thread(1000, 50, 3, 100));
    engine.on_event(entry(1010, 0, 3));
    engine.on_event(exit_event(1100, 0, kIoio, (std::uint64_t{0x3f8} << 16) | 0x10, 3));
    engine.on_event(handler(EventKind::kvm_pio, 1110, 0, {1, 0x3f8, 1, 1, 0x41}));
    engine.on_event(exit_event(1200, 0, kMsr, 1, 3));
    engine.on_event(handler(EventKind::kvm_msr, 1210, 0, {1, 0x6e0, 0x1234, 0, 0}));
    engine.on_event(handler(EventKind::kvm_msr, 1220, 0, {0, 0xc0000080, 0, 1, 0}));
    engine.on_event(exit_event(1300, 0, kNpf, 0, 3));
    engine.on_event(handler(EventKind::kvm_mmio, 1310, 0, {2, 4, 0xfee00000, 0x1, 0}));
    engine.on_event(handler(EventKind::kvm_mmio, 1320, 0, {1, 8, 0xfed00000, 0x2, 0}));
    engine.on_event(handler(EventKind::kvm_mmio, 1330, 0, {0, 8, 0xfed00000, 0, 0}));
    engine.on_event(handler(EventKind::kvm_inj_virq, 1340, 0, {0x20, 0, 0, 0, 0}));
    engine.on_event(handler(EventKind::kvm_inj_virq, 1350, 0, {0x80, 1, 0, 0, 0}));
    engine.on_event(handler(EventKind::kvm_inj_virq, 1360, 0, {0x21, 0, 1, 0, 0}));
    engine.on_event(exit_event(1400, 0, kVmmcall, 0, 3));
    engine.on_event(handler(EventKind::kvm_hypercall, 1410, 0, {0xb, 1, 2, 3, 4}));
    engine.on_host_time(2000);
    engine.finish();

    const std::vector<std::string> expected = {
        "1110,0,3,pio,kvm,out,0x3f8,1,1,0x41,",       "1210,0,3,msr,kvm,wrmsr,0x6e0,,,0x1234,",
        "1220,0,3,msr,kvm,rdmsr,0xc0000080,,,0x0,gp", "1310,0,3,mmio,kvm,write,0xfee00000,4,,0x1,",
        "1320,0,3,mmio,kvm,read,0xfed00000,8,,0x2,",  "1330,0,3,mmio,kvm,read-pending,0xfed00000,8,,0x0,",
        "1340,0,3,interrupt,kvm,inject,0x20,,,,",     "1350,0,3,interrupt,kvm,soft,0x80,,,,",
        "1360,0,3,interrupt,kvm,reinject,0x21,,,,",   "1410,0,3,hypercall,kvm,,0xb,,,0x1,a1=0x2;a2=0x3;a3=0x4",
    };
    std::ifstream in(dir_ / "nondet.csv");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "time_ns,vm_id,vcpu,kind,source,op,address,size,count,value,args");
    std::vector<std::string> lines;
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    EXPECT_EQ(lines, expected);
    csv("nondet.csv");  // every row has every column
    const json a = analysis();
    EXPECT_EQ(a["vms"][0]["nondet"],
              json({{"pio", 1}, {"mmio", 3}, {"msr", 2}, {"interrupt", 3}, {"exception", 0}, {"hypercall", 1}}));

    // nondet.jsonl: the same accesses, one object per line, the VM named;
    // no entry followed the exits, so the injections and the MMIO read
    // sent to user space never completed
    std::ifstream jsonl(dir_ / "nondet.jsonl");
    std::vector<json> entries;
    while (std::getline(jsonl, line)) {
        entries.push_back(json::parse(line));
    }
    ASSERT_EQ(entries.size(), 10u);
    for (const json& e : entries) {
        EXPECT_EQ(e["vm"], 0);
        EXPECT_EQ(e["vcpu"], 3);
    }
    EXPECT_EQ(entries[0]["kind"], "pio");
    EXPECT_EQ(entries[0]["value"], "0x41");
    EXPECT_EQ(a["vms"][0]["replay_log"]["entries"], 10);
    EXPECT_EQ(a["vms"][0]["replay_log"]["incomplete"], 4);
    EXPECT_EQ(a["vms"][0]["replay_log"]["unknown_values"], 0);
}

// (e) without handler events the exits say what they can
TEST_F(AnalysisEngineTest, NondetRowsFromExitsWhenHandlersAreMissing) {
    for (const bool msr_handler : {false, true}) {
        const std::string sub = msr_handler ? "msr" : "none";
        AnalysisEngine engine(options(sub));
        MachineInfo host = host_info(false);
        host.has_msr = msr_handler;
        engine.add_machine(host);
        engine.on_event(sched_switch(1000, 0, 0, 0, 100));
        engine.on_event(vcpu_thread(1000, 50, 0, 100));
        engine.on_event(sched_switch(1000, 1, 0, 0, 101));
        engine.on_event(vcpu_thread(1000, 50, 1, 101));
        // SVM on vCPU 0
        engine.on_event(exit_event(1100, 0, kIoio, (std::uint64_t{0x3f8} << 16) | 0x10 | 1));
        engine.on_event(exit_event(1200, 0, kIoio, (std::uint64_t{0xcfc} << 16) | 0x40));
        engine.on_event(exit_event(1300, 0, kMsr, 1));
        engine.on_event(exit_event(1400, 0, kMsr, 0));
        engine.on_event(exit_event(1500, 0, kVmmcall));
        engine.on_event(exit_event(1600, 0, kNpf));  // nothing to log
        engine.on_event(exit_event(1650, 0, kHlt));
        // VMX on vCPU 1
        engine.on_event(exit_event(1700, 1, 30, (std::uint64_t{0x60} << 16) | 1, 1, kIsaVmx));
        engine.on_event(exit_event(1800, 1, 30, (std::uint64_t{0x64} << 16) | 8, 1, kIsaVmx));
        engine.on_event(exit_event(1900, 1, 31, 0, 1, kIsaVmx));
        engine.on_event(exit_event(2000, 1, 32, 0, 1, kIsaVmx));
        engine.on_event(exit_event(2100, 1, 18, 0, 1, kIsaVmx));
        engine.on_event(exit_event(2200, 1, 48, 0, 1, kIsaVmx));
        engine.on_host_time(3000);
        engine.finish();

        std::vector<std::string> expected = {
            "1100,0,0,pio,exit,in,0x3f8,1,,,", "1200,0,0,pio,exit,out,0xcfc,4,,,", "1300,0,0,msr,exit,wrmsr,,,,,",
            "1400,0,0,msr,exit,rdmsr,,,,,",    "1500,0,0,hypercall,exit,,,,,,",    "1700,0,1,pio,exit,out,0x60,2,,,",
            "1800,0,1,pio,exit,in,0x64,1,,,",  "1900,0,1,msr,exit,rdmsr,,,,,",     "2000,0,1,msr,exit,wrmsr,,,,,",
            "2100,0,1,hypercall,exit,,,,,,",
        };
        if (msr_handler) {
            std::erase_if(expected, [](const std::string& row) { return row.find(",msr,") != std::string::npos; });
        }
        std::ifstream in(dir_ / sub / "nondet.csv");
        std::string line;
        std::getline(in, line);
        std::vector<std::string> lines;
        while (std::getline(in, line)) {
            lines.push_back(line);
        }
        EXPECT_EQ(lines, expected) << sub;
        csv("nondet.csv", sub);
        const json a = analysis(sub);
        EXPECT_EQ(a["vms"][0]["nondet"], json({{"pio", 4},
                                               {"mmio", 0},
                                               {"msr", msr_handler ? 0 : 4},
                                               {"interrupt", 0},
                                               {"exception", 0},
                                               {"hypercall", 2}}))
            << sub;
        EXPECT_EQ(exit_entry(a["vms"][0], "IO_INSTRUCTION", 1)["isa"], "vmx");
        EXPECT_EQ(exit_entry(a["vms"][0], "IOIO", 0)["count"], 2);
    }
}

// (f) KVM events on a CPU whose thread is not known
TEST_F(AnalysisEngineTest, KvmEventsWithoutCurrentThreadAreUnattributed) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    engine.on_event(entry(1000, 7));                    // no sched_switch on CPU 7 yet
    engine.on_event(sched_switch(1050, 0, 100, 0, 0));  // CPU 0 idles
    engine.on_event(exit_event(1100, 0, kNpf));         // the idle thread is no vCPU
    engine.on_event(handler(EventKind::kvm_pio, 1150, 3, {1, 0x80, 1, 1, 0}));
    engine.on_event(vmsync(1160, 5, 0xabc, 0));
    engine.on_event(sched_switch(1200, 7, 0, 0, 100));
    engine.on_event(entry(1300, 7));  // now known
    engine.on_host_time(2000);
    engine.finish();

    const json a = analysis();
    EXPECT_EQ(a["events"]["unattributed"], 4);
    EXPECT_EQ(a["host"]["cpus"], 8);
    bool warned = false;
    for (const auto& w : a["warnings"]) {
        warned = warned || w.get<std::string>().find("4 KVM events") != std::string::npos;
    }
    EXPECT_TRUE(warned) << a["warnings"];
    ASSERT_EQ(a["vms"].size(), 1u);
    EXPECT_EQ(a["vms"][0]["name"], "unidentified");
    const json& v = vcpu_of(a["vms"][0], 100);
    EXPECT_EQ(v["states_ns"]["guest"], 700);
    EXPECT_EQ(v["states_ns"]["hypervisor"], 100);
    EXPECT_EQ(v["exits"], 0);
    EXPECT_TRUE(csv("nondet.csv").empty());
}

// (g) events older than the one before them
TEST_F(AnalysisEngineTest, OlderEventsAreCountedAsReordered) {
    AnalysisOptions o = options();
    o.max_reordered_ratio = 0.5;  // 2 of 7: taken at the earlier time, not refused
    AnalysisEngine engine(o);
    engine.add_machine(host_info());
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(vcpu_thread(1000, 50, 0, 100));
    engine.on_event(entry(2000, 0));
    engine.on_event(exit_event(1500, 0, kNpf));  // taken at 2000
    engine.on_event(entry(3000, 0));
    engine.on_event(exit_event(2500, 0, kNpf));  // taken at 3000
    engine.on_event(entry(3500, 0));
    engine.on_host_time(4000);
    engine.finish();

    const json a = analysis();
    EXPECT_EQ(a["events"]["reordered"], 2);
    EXPECT_EQ(a["begin_ns"], 1000);
    EXPECT_EQ(a["end_ns"], 4000);
    bool warned = false;
    for (const auto& w : a["warnings"]) {
        warned = warned || w.get<std::string>().find("2 events were older") != std::string::npos;
    }
    EXPECT_TRUE(warned) << a["warnings"];
    const json& v = vcpu_of(a["vms"][0], 100);
    EXPECT_EQ(v["states_ns"],
              json({{"guest", 500}, {"hypervisor", 2500}, {"preempted", 0}, {"idle", 0}, {"unknown", 0}}));
    const json& npf = exit_entry(a["vms"][0], "NPF", 0);
    EXPECT_EQ(npf["count"], 2);
    EXPECT_EQ(npf["latency_ns"]["min"], 500);
    EXPECT_EQ(npf["latency_ns"]["max"], 1000);
    for (const Row& r : csv("vcpu_states.csv")) {
        EXPECT_LT(std::stoll(r.at("start_ns")), std::stoll(r.at("end_ns")));
    }
}

// (h) co-scheduling covers the time since the VM's identification
TEST_F(AnalysisEngineTest, CoschedulingSumsToTheTimeSinceIdentification) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(sched_switch(1000, 1, 0, 0, 101));
    engine.on_event(vcpu_thread(1500, 50, 0, 100));  // identification
    engine.on_event(vcpu_thread(1500, 50, 1, 101));
    engine.on_event(entry(2000, 0, 0));
    engine.on_event(entry(2500, 1, 1));
    engine.on_event(exit_event(3000, 0, kNpf, 0, 0));
    engine.on_event(exit_event(3500, 1, kNpf, 0, 1));
    engine.on_host_time(4000);
    engine.finish();

    const json a = analysis();
    ASSERT_EQ(a["vms"].size(), 1u);
    const json& running = a["vms"][0]["coscheduling"]["running_ns"];
    EXPECT_EQ(running, json({1000, 1000, 500}));
    std::int64_t sum = 0;
    for (const auto& ns : running) {
        sum += ns.get<std::int64_t>();
    }
    EXPECT_EQ(sum, 4000 - 1500);
}

// (h) a thread identified while in guest mode, before its VM's other vCPU
TEST_F(AnalysisEngineTest, CoschedulingOfAThreadIdentifiedInGuestMode) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(sched_switch(1000, 1, 0, 0, 101));
    engine.on_event(entry(1100, 0, 0));
    engine.on_event(entry(1200, 1, 1));
    engine.on_event(vmsync(1300, 0, 0xabc, 0));  // identified in guest mode: 1 in guest from here
    engine.on_event(exit_event(1400, 0, kNpf, 0, 0));
    engine.on_event(vmsync(1500, 1, 0xabc, 1));  // 1 more in guest
    engine.on_event(entry(1600, 0, 0));          // 2
    engine.on_event(exit_event(1800, 1, kNpf, 0, 1));
    engine.on_host_time(2000);
    engine.finish();

    const json a = analysis();
    ASSERT_EQ(a["vms"].size(), 1u);
    // 0: [1400, 1500); 1: [1300, 1400) [1500, 1600) [1800, 2000); 2: [1600, 1800)
    EXPECT_EQ(a["vms"][0]["coscheduling"]["running_ns"], json({100, 400, 200}));
}

// (i) more held rows than allowed: a warning, and no row is lost
TEST_F(AnalysisEngineTest, HeldRowsOverflowKeepsEveryRow) {
    AnalysisOptions o = options();
    o.max_held_rows = 3;
    AnalysisEngine engine(o);
    engine.add_machine(host_info(false));
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    std::int64_t t = 1000;
    for (int i = 0; i < 20; ++i) {
        engine.on_event(entry(t += 10, 0));
        engine.on_event(exit_event(t += 10, 0, kIoio, std::uint64_t{0x80} << 16));
    }
    engine.on_event(vmsync(t += 10, 0, 0xabc, 0));
    for (int i = 0; i < 5; ++i) {
        engine.on_event(entry(t += 10, 0));
        engine.on_event(exit_event(t += 10, 0, kIoio, std::uint64_t{0x80} << 16));
    }
    engine.on_host_time(t + 10);
    engine.finish();

    const json a = analysis();
    bool warned = false;
    for (const auto& w : a["warnings"]) {
        warned = warned || w.get<std::string>().find("more than 3 CSV rows") != std::string::npos;
    }
    EXPECT_TRUE(warned) << a["warnings"];
    const json& v = a["vms"][0]["vcpus"][0];
    std::uint64_t intervals = 0;
    for (const auto& [state, n] : v["intervals"].items()) {
        intervals += n.get<std::uint64_t>();
    }
    EXPECT_EQ(intervals, 51u);  // 25 guest, 26 hypervisor

    const auto rows = csv("vcpu_states.csv");
    ASSERT_EQ(rows.size(), intervals);
    std::int64_t expect_start = 1000;
    bool named = false;
    for (const Row& r : rows) {
        // in time order, without gap or overlap
        EXPECT_EQ(std::stoll(r.at("start_ns")), expect_start);
        expect_start = std::stoll(r.at("end_ns"));
        // once rows name the VM, all later ones do
        if (r.at("vm_id") == "0") {
            named = true;
        } else {
            EXPECT_FALSE(named) << r.at("start_ns");
            EXPECT_EQ(r.at("vm_id"), "");
        }
    }
    EXPECT_EQ(expect_start, t + 10);
    EXPECT_TRUE(named);
    EXPECT_EQ(rows.front().at("vm_id"), "");  // written before the identification

    const auto nondet = csv("nondet.csv");
    EXPECT_EQ(nondet.size(), 25u);
    EXPECT_EQ(a["vms"][0]["nondet"]["pio"], 25);
}

// (h) values of a damaged trace that would size memory
TraceEvent guest_migration(std::int64_t time, unsigned machine, std::int64_t from, std::int64_t to) {
    TraceEvent e;
    e.time = time;
    e.machine = machine;
    e.kind = EventKind::sched_migrate_task;
    e.name = "sched_migrate_task";
    e.tid = 401;
    e.comm = "sh";
    e.orig_cpu = from;
    e.dest_cpu = to;
    return e;
}

// The message of what `body` throws, "" when it does not.
template <typename Body>
std::string thrown(Body&& body) {
    try {
        body();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST_F(AnalysisEngineTest, CpuNumbersBeyondLinuxAreRefusedBeforeAnyAllocation) {
    AnalysisEngine engine(options());
    engine.add_machine(host_info());
    MachineInfo guest;
    guest.hostname = "l2";
    guest.synchronized = true;
    const unsigned g = engine.add_machine(guest);
    engine.declare_cpu(g, 0);
    engine.declare_cpu(g, 1);
    // one damaged byte in dest_cpu: once a 24 GB migration matrix
    const std::string message = thrown([&] { engine.on_event(guest_migration(1000, g, 0, 524289)); });
    EXPECT_NE(message.find("trace `l2`: event `sched_migrate_task` at 1000 ns has dest_cpu 524289"), std::string::npos)
        << message;
    EXPECT_NE(message.find("CPUs 0-1"), std::string::npos) << message;
    EXPECT_NE(thrown([&] { engine.on_event(guest_migration(1000, g, -1, 0)); }).find("orig_cpu -1"), std::string::npos);
    EXPECT_NE(thrown([&] { engine.declare_cpu(g, kMaxCpus); }).find("cpu_id 8192"), std::string::npos);
    TraceEvent on_cpu = sched_switch(1000, 1U << 20, 0, 0, 400, g);
    EXPECT_NE(thrown([&] { engine.on_event(on_cpu); }).find("cpu_id 1048576"), std::string::npos);
}

TEST_F(AnalysisEngineTest, CpusATraceNeverDeclaresAreRefusedAtTheEnd) {
    for (const bool declared_later : {false, true}) {
        AnalysisEngine engine(options(declared_later ? "later" : "never"));
        engine.add_machine(host_info());
        MachineInfo guest;
        guest.hostname = "l2";
        guest.synchronized = true;
        const unsigned g = engine.add_machine(guest);
        engine.on_event(sched_switch(900, 0, 0, 0, 400, g));
        engine.on_event(guest_migration(1000, g, 0, 5));  // CPU 5's first packet may start later
        if (declared_later) {
            engine.declare_cpu(g, 5);
            engine.finish();
            EXPECT_EQ(analysis("later")["vms"].size(), 0u);  // finished: CPU 5 was declared after all
        } else {
            const std::string message = thrown([&] { engine.finish(); });
            EXPECT_NE(message.find("trace `l2`: event `sched_migrate_task` at 1000 ns has dest_cpu 5, a CPU none of "
                                   "the trace's packets declares (CPUs 0)"),
                      std::string::npos)
                << message;
        }
    }
}

TEST_F(AnalysisEngineTest, VcpuIdsBeyondKvmOrTheGuestAreRefused) {
    {
        AnalysisEngine engine(options("kvm"));
        engine.add_machine(host_info());
        engine.on_event(sched_switch(1000, 0, 0, 0, 100));
        TraceEvent e = entry(1100, 0, 5000);
        e.name = "kvm_x86_entry";
        const std::string message = thrown([&] { engine.on_event(e); });
        EXPECT_NE(message.find("trace `l1`: event `kvm_x86_entry` at 1100 ns has vcpu_id 5000, beyond KVM's 4096"),
                  std::string::npos)
            << message;
    }
    AnalysisEngine engine(options("guest"));
    engine.add_machine(host_info());
    MachineInfo guest;
    guest.hostname = "l2";
    guest.vm_uid = 0xabc;
    guest.synchronized = true;
    const unsigned g = engine.add_machine(guest);
    engine.on_event(sched_switch(900, 0, 0, 0, 400, g));  // the guest has one vCPU
    engine.on_event(sched_switch(1000, 0, 0, 0, 100));
    engine.on_event(vmsync(1100, 0, 0xabc, 3));
    engine.on_event(entry(1200, 0, 3));
    engine.on_host_time(2000);
    const std::string message = thrown([&] { engine.finish(); });
    EXPECT_NE(message.find("thread 100 runs vCPU 3 of the VM of guest trace `l2`, which declares CPUs 0"),
              std::string::npos)
        << message;
}

TEST_F(AnalysisEngineTest, ManyOlderEventsFailTheAnalysis) {
    for (const bool damaged : {false, true}) {
        AnalysisEngine engine(options(damaged ? "damaged" : "one"));
        engine.add_machine(host_info());
        std::int64_t t = 1000;
        for (int i = 0; i < 1500; ++i) {
            engine.on_event(sched_switch(t += 10, 0, 0, 0, 100 + i % 2));
            if (i == 700) {
                // damaged: a timestamp 267 s ahead, every later event older;
                // else one event 5 ns older than the one before it
                engine.on_event(sched_switch(damaged ? 267'000'000'000 : t - 5, 0, 0, 0, 100));
            }
        }
        if (damaged) {
            const std::string message = thrown([&] { engine.finish(); });
            EXPECT_NE(message.find("trace `l1`: 799 of 1501 events (53.2%) are older than an event before them (its "
                                   "event at 267000000000 ns is"),
                      std::string::npos)
                << message;
        } else {
            engine.finish();
            EXPECT_EQ(analysis("one")["events"]["reordered"], 1);
        }
    }
}

TEST_F(AnalysisEngineTest, RejectsBadOptions) {
    AnalysisOptions o = options();
    o.timeline_bins = 3;
    EXPECT_THROW(AnalysisEngine{o}, std::invalid_argument);
    o = options();
    o.output_dir = (dir_ / "absent").string();
    EXPECT_THROW(AnalysisEngine{o}, std::runtime_error);
}

}  // namespace
}  // namespace vmtrace::analysis
