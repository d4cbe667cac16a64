// SPDX-License-Identifier: MIT
#pragma once

#include <fmt/compile.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "trace_event.hpp"

namespace vmtrace::analysis {

// One line of nondet.jsonl: the JSON object without its leading `{"vm":N,`
// (the VM is only final when the line is written), and when it took effect.
struct ReplayLine {
    std::int64_t time = 0;
    std::string json;  // `"vcpu":...}`: the object's members after vm
};

// The replay log of one vCPU (docs/replay-log.md): every value the
// hypervisor handed the guest and where each asynchronous event landed, in
// the vCPU's own order.  KVM's handler events between an exit and the next
// entry belong to that exit (user space completes an access between the
// two, without an entry), so an exit's entries are final at the entry:
// - an MMIO read KVM sent to user space (kvm_mmio type 0) is merged with
//   its completion (type 1 at the same address);
// - an injection (kvm_inj_virq, kvm_inj_exception) lands at the entry's
//   RIP; one cancelled before the entry and injected again in the same
//   window (reinjected) is logged once;
// - an exit that stands for an access with no handler event says the
//   value is unknown (the host module lacks the event) or missing (it has
//   the event, none came), never 0.
class ReplayLog {
public:
    // A line's kind, as nondet.jsonl names it (kKindNames).
    enum class Kind : std::uint8_t { pio, mmio, msr, interrupt, exception, hypercall, instruction };
    static constexpr std::size_t kKinds = 7;
    static constexpr std::array<const char*, kKinds> kKindNames = {"pio",       "mmio",      "msr",        "interrupt",
                                                                   "exception", "hypercall", "instruction"};

    // Per-VM totals (analysis.json's `replay_log`).
    struct Counts {
        std::array<std::uint64_t, kKinds> kinds{};  // entries by Kind
        std::uint64_t entries = 0;
        std::uint64_t unknown = 0;     // values the host trace cannot give (older module, instruction exits)
        std::uint64_t missing = 0;     // values whose event the trace declares but did not record
        std::uint64_t incomplete = 0;  // accesses never completed (no entry followed)
        std::uint64_t cancelled = 0;   // injections cancelled and injected again before one entry
    };

    // `vcpu`: the vCPU thread's current vCPU number, which the lines take
    // when they are made (its owner outlives the log). `host`: which of
    // KVM's handler events the host trace declares, which decides between
    // unknown and missing values.
    ReplayLog(const std::uint32_t& vcpu, const MachineInfo& host) : vcpu_(vcpu), host_(host) {
        host_.hostname = {};  // the view may dangle
    }

    // A VM's `replay_log` table: its vCPUs' counts summed.
    static nlohmann::json vm_table(const std::vector<const ReplayLog*>& vcpus);
    [[nodiscard]] const Counts& counts() const { return counts_; }

    // The exit's entries, final at the next entry, are appended to `out`.
    void on_exit(const TraceEvent& e, std::vector<ReplayLine>& out);
    void on_handler(const TraceEvent& e);
    void on_entry(const TraceEvent& e, std::vector<ReplayLine>& out);
    // The end of the trace: an exit still open is incomplete.
    void finish(std::vector<ReplayLine>& out);

private:
    struct Exit {
        bool open = false;
        std::int64_t time = 0;
        std::uint32_t isa = 0;
        std::uint32_t reason = 0;
        std::uint64_t info1 = 0;
        std::uint64_t rip = 0;
        bool has_rip = false;
        bool accounted = false;  // a handler event stood for the exit's access
    };
    // A handler event of the open exit, waiting for the entry.
    struct Pending {
        TraceEvent event;
        bool read_completed = false;  // mmio: the user-space completion came
        std::uint64_t value = 0;
        std::int64_t completed = 0;
    };

    void close(const TraceEvent* entry, std::vector<ReplayLine>& out);
    // A line is built in buf_: start() its head, add() members, emit() it
    // with the exit's members.
    void start(Kind kind, std::int64_t time);
    template <typename Format, typename... Args>
    void add(const Format& format, Args&&... args) {
        fmt::format_to(std::back_inserter(buf_), format, std::forward<Args>(args)...);
    }
    // `"value":null` and a value_state that says why; counted.
    void value_unknown(const char* state);
    void emit(Kind kind, std::int64_t time, std::string_view exit, std::vector<ReplayLine>& out);

    const std::uint32_t& vcpu_;
    MachineInfo host_;
    Exit exit_;
    std::vector<Pending> pending_;
    std::uint64_t seq_ = 0;
    Counts counts_;
    fmt::memory_buffer buf_;  // the line being built, reused
};

}  // namespace vmtrace::analysis
