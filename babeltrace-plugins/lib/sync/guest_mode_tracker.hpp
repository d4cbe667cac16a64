// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vmtrace::sync {

// Follows the host trace to know, for each vCPU of each VM, the host
// intervals in which it was in guest mode (kvm entry -> kvm exit on the
// vCPU's thread).  The sync filter asks it whether a guest event, once on
// the host time base, falls inside one of them: the consistency check.
//
// Threads are found without help from the tracer: the thread running on a
// CPU is the last sched_switch's next_tid there, and a vCPU thread is tied
// to its VM by the vmsync events it records.  Each CPU's events must come
// in time order, but CPUs may be fed in any interleaving (the sync filter
// reads each CPU's stream ahead on its own).  The caller forgets intervals
// it no longer needs with forget_before(), so memory does not grow with
// the trace.
class GuestModeTracker {
public:
    enum class Verdict { inside, outside, unknown };

    GuestModeTracker() = default;

    void on_sched_switch(std::uint32_t cpu, std::int32_t next_tid, std::int64_t time);
    void on_kvm_entry(std::uint32_t cpu, std::int64_t time);
    void on_kvm_exit(std::uint32_t cpu, std::int64_t time);
    // The thread now running on `cpu` is vCPU `vcpu` of VM `vm_uid`.
    void on_vcpu_identified(std::uint32_t cpu, std::uint64_t vm_uid, std::uint32_t vcpu);

    // Was vCPU `vcpu` of `vm_uid` in guest mode at host time `time`?
    // unknown when the host trace does not cover that time for it.
    // `tolerance_ns`: how far the time may be off (the clock transform's
    // bound): an event that near a guest-mode interval is inside.
    [[nodiscard]] Verdict check(std::uint64_t vm_uid, std::uint32_t vcpu, std::int64_t time,
                                std::int64_t tolerance_ns = 0) const;

    // Drops the intervals that ended before `time`; later checks before
    // that time answer unknown.
    void forget_before(std::int64_t time);

    [[nodiscard]] std::size_t retained_intervals() const;

private:
    struct Thread {
        std::int64_t covered_since = INT64_MAX;          // first switch-in: entries are seen from there on
        std::int64_t pruned_until = -1;                  // intervals ending here or before are forgotten
        std::map<std::int64_t, std::int64_t> intervals;  // entry -> exit
    };
    struct Cpu {
        std::int32_t running = -1;  // tid, -1: unknown
        std::int64_t open_entry = -1;
    };

    std::int64_t newest_ = INT64_MIN;
    std::vector<Cpu> cpus_;
    std::unordered_map<std::int32_t, Thread> threads_;
    std::map<std::pair<std::uint64_t, std::uint32_t>, std::int32_t> vcpu_threads_;
};

}  // namespace vmtrace::sync
