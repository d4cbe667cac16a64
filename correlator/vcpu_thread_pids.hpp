// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace vmtrace::cli {

class Pipeline;

// Finds, in the host traces that pass through an export, the threads that
// run vCPUs and whether the trace gives each one's process id.
//
// Trace Compass's Virtual Machine analysis (Incubator) ties a host thread
// to a VM when it records vmsync_gh_host, and ties the thread's process
// with it; a vCPU thread that has no process id in the trace (no
// lttng_statedump_process_state, no sched_process_fork naming it) counts
// as a process of its own, so the analysis cannot group it with its QEMU
// process (docs/trace-compass.md).  The export warns about such threads.
//
// It is a pass-through filter in the export's own graph, so the traces are
// decoded once: it reads sched_switch (the thread on each CPU), kvm_entry /
// kvm_x86_entry (that thread runs a vCPU), vmsync_gh_host (that thread's
// VM, as the Incubator sees it), lttng_statedump_process_state and
// sched_process_fork (threads whose process id is known).
class VcpuThreadPids {
public:
    struct Thread {
        std::int32_t tid = -1;
        bool has_pid = false;
        std::set<std::uint64_t> vm_uids;  // vmsync_gh_host recorded while it ran
    };
    struct Host {
        std::string name;  // the trace's hostname
        std::vector<Thread> vcpu_threads;
    };

    VcpuThreadPids() = default;
    VcpuThreadPids(const VcpuThreadPids&) = delete;
    VcpuThreadPids& operator=(const VcpuThreadPids&) = delete;

    // Adds the filter named `name` to `pipeline`; this object must outlive
    // the pipeline's run.
    void add_to(Pipeline& pipeline, const std::string& name);

    // Every trace in which a thread ran a vCPU, after the run.
    [[nodiscard]] std::vector<Host> hosts() const;

    // Notes what one message tells (the filter's work, public for it).
    void observe(const bt_message* message);

private:
    struct EventKind {
        enum Kind { other, sched_switch, kvm_entry, gh_host, statedump, fork } kind = other;
        std::uint64_t field = 0;  // the payload member read: next_tid, vm_uid, tid or child_tid
        bool readable = false;    // that member exists and is an integer
    };
    struct TraceState {
        std::string name;
        std::map<std::int64_t, std::int32_t> running;  // CPU -> thread (a map: a damaged cpu_id sizes nothing)
        std::map<std::int32_t, std::set<std::uint64_t>> vcpu_threads;
        std::set<std::int32_t> with_pid;
    };

    const EventKind& kind_of(const bt_event_class* event_class);

    std::map<const bt_event_class*, EventKind> kinds_;
    std::map<const bt_trace*, TraceState> traces_;
};

}  // namespace vmtrace::cli
