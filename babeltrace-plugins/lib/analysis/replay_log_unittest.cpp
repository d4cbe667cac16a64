// SPDX-License-Identifier: MIT
#include "replay_log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exit_reason.hpp"

namespace vmtrace::analysis {
namespace {

constexpr std::uint32_t kSvmIoio = 0x07b;
constexpr std::uint32_t kSvmMsr = 0x07c;
constexpr std::uint32_t kSvmNpf = 0x400;
constexpr std::uint32_t kSvmRdtsc = 0x06e;
constexpr std::uint32_t kSvmIntr = 0x060;

// A host trace that declares every handler event.
MachineInfo all_declared() {
    MachineInfo host;
    host.host = true;
    host.has_pio = host.has_mmio = host.has_msr = host.has_msr_user = true;
    host.has_inj_virq = host.has_inj_exception = host.has_hypercall = true;
    return host;
}

// The vCPU numbers the logs read (a vCPU thread's, in the engine).
constexpr std::uint32_t kVcpu0 = 0;
constexpr std::uint32_t kVcpu1 = 1;
constexpr std::uint32_t kVcpu2 = 2;

TraceEvent exit_event(std::int64_t time, std::uint32_t reason, std::uint64_t rip, std::uint64_t info1 = 0) {
    TraceEvent e;
    e.kind = EventKind::kvm_exit;
    e.time = time;
    e.isa = kIsaSvm;
    e.exit_reason = reason;
    e.info1 = info1;
    e.rip = rip;
    e.has_rip = true;
    return e;
}

TraceEvent entry_event(std::int64_t time, std::uint64_t rip) {
    TraceEvent e;
    e.kind = EventKind::kvm_entry;
    e.time = time;
    e.rip = rip;
    e.has_rip = true;
    return e;
}

TraceEvent handler(EventKind kind, std::int64_t time, std::initializer_list<std::uint64_t> args) {
    TraceEvent e;
    e.kind = kind;
    e.time = time;
    std::size_t i = 0;
    for (std::uint64_t a : args) {
        e.args[i++] = a;
    }
    return e;
}

// Every line must be a JSON object once its vm member is added.
std::vector<nlohmann::json> parsed(const std::vector<ReplayLine>& lines) {
    std::vector<nlohmann::json> out;
    for (const ReplayLine& line : lines) {
        out.push_back(nlohmann::json::parse("{\"vm\":0," + line.json + "}"));
    }
    return out;
}

// SVM IOIO EXITINFO1: port in bits 31:16, size bits 6:4 (one-hot), bit 0 = in.
std::uint64_t svm_in_port(std::uint32_t port, unsigned size) {
    return (static_cast<std::uint64_t>(port) << 16) | (static_cast<std::uint64_t>(size) << 4) | 1;
}

TEST(ReplayLog, PortReadCompletedAfterUserSpaceCarriesItsValueAndTheExitRip) {
    ReplayLog log(kVcpu1, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmIoio, 0xffffffff81001234, svm_in_port(0x71, 1)), lines);
    log.on_handler(handler(EventKind::kvm_pio, 150, {0, 0x71, 1, 1, 0x59}));
    EXPECT_TRUE(lines.empty());  // final only at the entry
    log.on_entry(entry_event(160, 0xffffffff81001236), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(j[0]["vcpu"], 1);
    EXPECT_EQ(j[0]["kind"], "pio");
    EXPECT_EQ(j[0]["op"], "in");
    EXPECT_EQ(j[0]["port"], "0x71");
    EXPECT_EQ(j[0]["value"], "0x59");
    EXPECT_EQ(j[0]["value_state"], "completed");
    EXPECT_EQ(j[0]["rip"], "0xffffffff81001234");
    EXPECT_EQ(j[0]["exit_ns"], 100);
    EXPECT_EQ(j[0]["time_ns"], 150);
    EXPECT_EQ(j[0]["exit_reason"], "IOIO");
    EXPECT_EQ(log.counts().unknown, 0U);
}

TEST(ReplayLog, MmioReadSentToUserSpaceIsOneEntryWithTheCompletedValue) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmNpf, 0x401000), lines);
    log.on_handler(handler(EventKind::kvm_mmio, 110, {0, 4, 0xfed000f0, 0}));
    log.on_handler(handler(EventKind::kvm_mmio, 190, {1, 4, 0xfed000f0, 0x1234abcd}));
    log.on_entry(entry_event(200, 0x401004), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(j[0]["op"], "read");
    EXPECT_EQ(j[0]["gpa"], "0xfed000f0");
    EXPECT_EQ(j[0]["value"], "0x1234abcd");
    EXPECT_EQ(j[0]["completed_by"], "user-space");
    EXPECT_EQ(j[0]["time_ns"], 190);
    EXPECT_EQ(j[0]["rip"], "0x401000");
}

TEST(ReplayLog, MmioReadTheKernelCompletesAndWritesAreLoggedAsSuch) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmNpf, 0x1000), lines);
    log.on_handler(handler(EventKind::kvm_mmio, 110, {1, 4, 0xfee00030, 0x50014}));
    log.on_entry(entry_event(120, 0x1004), lines);
    log.on_exit(exit_event(200, kSvmNpf, 0x2000), lines);
    log.on_handler(handler(EventKind::kvm_mmio, 210, {2, 4, 0xfee000b0, 0}));
    log.on_entry(entry_event(220, 0x2004), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 2U);
    EXPECT_EQ(j[0]["completed_by"], "kernel");
    EXPECT_EQ(j[0]["value"], "0x50014");
    EXPECT_EQ(j[1]["op"], "write");
    EXPECT_EQ(j[1]["value_state"], "written");
    EXPECT_EQ(j[0]["seq"], 0);
    EXPECT_EQ(j[1]["seq"], 1);
}

TEST(ReplayLog, InjectionLandsAtTheEntryRipAndACancelledOneIsLoggedOnce) {
    ReplayLog log(kVcpu2, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmIntr, 0x7f0000001000), lines);
    log.on_handler(handler(EventKind::kvm_inj_virq, 110, {0xec, 0, 0}));
    log.on_handler(handler(EventKind::kvm_inj_virq, 130, {0xec, 0, 1}));  // cancelled, injected again
    log.on_entry(entry_event(140, 0x7f0000001000), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(j[0]["kind"], "interrupt");
    EXPECT_EQ(j[0]["vector"], 0xec);
    EXPECT_EQ(j[0]["delivered_rip"], "0x7f0000001000");
    EXPECT_EQ(j[0]["time_ns"], 140);
    EXPECT_EQ(j[0]["injected_ns"], 130);
    EXPECT_EQ(log.counts().cancelled, 1U);
}

TEST(ReplayLog, ExceptionInjectionCarriesItsErrorCode) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmMsr, 0x1000), lines);
    log.on_handler(handler(EventKind::kvm_msr, 105, {0, 0xdeadbeef, 0, 1}));
    log.on_handler(handler(EventKind::kvm_inj_exception, 110, {13, 1, 0, 0}));
    log.on_entry(entry_event(120, 0x1000), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 2U);
    EXPECT_EQ(j[0]["kind"], "msr");
    EXPECT_EQ(j[0]["value_state"], "faulted");
    EXPECT_TRUE(j[0]["value"].is_null());
    EXPECT_EQ(j[1]["kind"], "exception");
    EXPECT_EQ(j[1]["vector"], 13);
    EXPECT_EQ(j[1]["error_code"], "0x0");
}

TEST(ReplayLog, RdmsrCompletedByUserSpace) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmMsr, 0x1000, 0), lines);
    log.on_handler(handler(EventKind::kvm_msr_user, 150, {0x35, 0x10002, 0}));
    log.on_entry(entry_event(160, 0x1002), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(j[0]["index"], "0x35");
    EXPECT_EQ(j[0]["value"], "0x10002");
    EXPECT_EQ(j[0]["completed_by"], "user-space");
    EXPECT_EQ(log.counts().missing + log.counts().unknown, 0U);
}

TEST(ReplayLog, AnOlderModuleGivesUnknownValuesNotZero) {
    MachineInfo none;  // a host trace without KVM's handler events
    none.host = true;
    ReplayLog log(kVcpu0, none);
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmIoio, 0x1000, svm_in_port(0x3fd, 1)), lines);
    log.on_entry(entry_event(120, 0x1002), lines);
    log.on_exit(exit_event(200, kSvmMsr, 0x2000, 0), lines);
    log.on_entry(entry_event(220, 0x2002), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 2U);
    EXPECT_EQ(j[0]["port"], "0x3fd");
    EXPECT_EQ(j[0]["op"], "in");
    EXPECT_TRUE(j[0]["value"].is_null());
    EXPECT_EQ(j[0]["value_state"], "unknown");
    EXPECT_EQ(j[1]["op"], "rdmsr");
    EXPECT_EQ(j[1]["value_state"], "unknown");
    EXPECT_EQ(log.counts().unknown, 2U);
}

TEST(ReplayLog, ARepStringIoExitWithoutDataIsNoAccess) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmIoio, 0xec231, 0x511001d), lines);  // rep insb, RCX = 0
    log.on_entry(entry_event(120, 0xec233), lines);
    EXPECT_TRUE(lines.empty());
    EXPECT_EQ(log.counts().missing, 0U);
}

TEST(ReplayLog, AUserSpaceRdmsrWithoutItsEventIsMissingWhenTheTraceDeclaresIt) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmMsr, 0x1000, 0), lines);
    log.on_entry(entry_event(120, 0x1002), lines);
    EXPECT_EQ(parsed(lines).at(0)["value_state"], "missing");
    EXPECT_EQ(log.counts().missing, 1U);
}

TEST(ReplayLog, InterceptedInstructionsAreLoggedWithoutAValue) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmRdtsc, 0x1000), lines);
    log.on_entry(entry_event(120, 0x1002), lines);
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(j[0]["kind"], "instruction");
    EXPECT_EQ(j[0]["op"], "rdtsc");
    EXPECT_EQ(j[0]["value_state"], "unknown");
}

TEST(ReplayLog, AccessesNeverCompletedAreCountedAtTheEnd) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmNpf, 0x1000), lines);
    log.on_handler(handler(EventKind::kvm_mmio, 110, {0, 4, 0xfed000f0, 0}));
    log.on_handler(handler(EventKind::kvm_inj_virq, 120, {0x30, 0, 0}));
    log.finish(lines);  // the VM was killed before the completion
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 2U);
    EXPECT_EQ(j[0]["value_state"], "incomplete");
    EXPECT_TRUE(j[0]["value"].is_null());
    EXPECT_EQ(j[1]["value_state"], "incomplete");
    EXPECT_TRUE(j[1]["delivered_rip"].is_null());
    EXPECT_EQ(log.counts().incomplete, 2U);
    lines.clear();
    log.finish(lines);
    EXPECT_TRUE(lines.empty());  // nothing twice
}

TEST(ReplayLog, AnExitWithoutItsEntryClosesThePreviousOne) {
    ReplayLog log(kVcpu0, all_declared());
    std::vector<ReplayLine> lines;
    log.on_exit(exit_event(100, kSvmIoio, 0x1000, svm_in_port(0x71, 1)), lines);
    log.on_handler(handler(EventKind::kvm_pio, 110, {0, 0x71, 1, 1, 7}));
    log.on_exit(exit_event(200, kSvmIoio, 0x2000, svm_in_port(0x71, 1)), lines);  // the entry was lost
    const auto j = parsed(lines);
    ASSERT_EQ(j.size(), 1U);
    EXPECT_EQ(j[0]["value"], "0x7");
}

TEST(ReplayLog, VmTableSumsTheVcpus) {
    ReplayLog a(kVcpu0, all_declared());
    ReplayLog b(kVcpu1, MachineInfo{});
    std::vector<ReplayLine> lines;
    a.on_exit(exit_event(100, kSvmIoio, 0x1000, svm_in_port(0x71, 1)), lines);
    a.on_handler(handler(EventKind::kvm_pio, 110, {0, 0x71, 1, 1, 7}));
    a.on_entry(entry_event(120, 0x1002), lines);
    b.on_exit(exit_event(100, kSvmIoio, 0x1000, svm_in_port(0x71, 1)), lines);
    b.on_entry(entry_event(120, 0x1002), lines);
    const nlohmann::json t = ReplayLog::vm_table({&a, &b});
    EXPECT_EQ(t["entries"], 2);
    EXPECT_EQ(t["by_kind"]["pio"], 2);
    EXPECT_EQ(t["unknown_values"], 1);
    EXPECT_EQ(t["incomplete"], 0);
}

}  // namespace
}  // namespace vmtrace::analysis
