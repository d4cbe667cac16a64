// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "trace_event.hpp"

namespace vmtrace::analysis {

// One entry of the log of non-deterministic events.
struct NondetEntry {
    const char* kind;     // pio, mmio, msr, interrupt, hypercall
    const char* source;   // kvm: a handler event; exit: what the exit says
    std::string columns;  // nondet.csv's op,address,size,count,value,args
};

// The log of non-deterministic events (port and MMIO I/O, MSR accesses,
// interrupt injections, hypercalls): the entries KVM's handler events
// make, or, where the host trace lacks a handler event, what the exit
// says; and the counts per vCPU thread and kind, returned as a VM's
// `nondet` table.
class NondetLog {
public:
    using Counts = std::map<std::string, std::uint64_t>;  // by kind

    // A vCPU thread's counts; the reference stays valid.
    Counts& thread(std::int64_t tid) { return threads_[tid]; }

    // The entry of a handler event (kvm_pio ... kvm_hypercall), none for
    // other events.
    static std::optional<NondetEntry> from_handler(const TraceEvent& e);
    // The entry an exit stands for when `host` lacks its handler event.
    static std::optional<NondetEntry> from_exit(const TraceEvent& e, const MachineInfo& host);

    // Counts `entry` for its thread; returns nondet.csv's columns after
    // vm_id.
    static std::string add(Counts& counts, std::uint32_t vcpu, const NondetEntry& entry);

    // A VM's `nondet` table: its vCPU threads' counts summed.
    static nlohmann::json vm_table(const std::vector<const Counts*>& threads);

private:
    std::unordered_map<std::int64_t, Counts> threads_;  // (references to elements stay valid)
};

}  // namespace vmtrace::analysis
