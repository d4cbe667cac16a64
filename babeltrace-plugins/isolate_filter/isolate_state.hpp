// SPDX-License-Identifier: MIT
// The state of filter.vmtrace.isolate, shared by its parts:
// isolate_input.cpp reads the synchronised traces and feeds the join,
// isolate_output.cpp writes the per-VM and host traces,
// isolate_filter.cpp is the babeltrace2 component and its report.
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bt2/progress_line.hpp"
#include "bt2/shared_object.hpp"
#include "lib/isolate/join.hpp"
#include "lib/isolation_report/isolation_report.hpp"
#include "lib/isolation_report/truth_check.hpp"

namespace vmtrace::plugin::isolatefilter {

struct IsolateConfig {
    std::string report_dir;              // isolation.json and summary.txt, when given
    std::string truth_path;              // the scenario's memory ground truth, when given
    std::int64_t default_bound_ns = -1;  // for traces without vmtrace_sync_bound_ns; -1: refuse them
    // Bounds that replace a trace's vmtrace_sync_bound_ns, by trace name:
    // the largest error the sync filter applied to that trace's events, known
    // after a first pass (vmtrace isolate --tight-bounds).
    std::map<std::string, std::int64_t> sync_bounds;
    std::int64_t bin_ns = 100'000'000;
    std::uint64_t packet_events = 4096;
    // How far the read-ahead may go to tie guests to VMs; it stops as soon as
    // every guest is tied (a guest may boot minutes into the host's trace).
    std::int64_t scout_ns = 86'400'000'000'000;
    bool quiet = false;
    bool progress = false;
};

enum class Role { unknown, host, guest, tracer };

// What an input event is to the join.
enum class Kind : std::uint8_t {
    other,
    sched_switch,
    kvm_entry,
    kvm_exit,
    tdp_mmu_map,
    vcpu_thread,  // kvm_vm_statedump_vcpu, kvm_vm_vcpu_thread
    statedump_vm,
    vmsync_host,
    process_state,
    process_fork,
    mm_map,
    mm_unmap,
    mem_access,
    mem_lost,
};

// Payload member indexes of an event class, found by name.
struct EventInfo {
    Kind kind = Kind::other;
    std::array<std::uint64_t, 7> member{};
    bool has_va = false;    // vmtrace_mem_access: the tracer recorded the optional va
    bool has_comm = false;  // kvm_vm_vcpu_thread: member 3 is the VM's comm
};

struct Machine {
    const bt_trace* trace = nullptr;
    const bt_clock_class* clock_class = nullptr;
    std::string name;
    Role role = Role::unknown;
    std::uint64_t vm_uid = 0;          // guests: from vmtrace_vm_uid
    int vm = -1;                       // guests: the join's VM, once tied by a vmsync host event
    std::int64_t bound_ns = -1;        // guests and tracer: vmtrace_sync_bound_ns
    bool synchronised = false;         // on the host's time base (vmtrace_time_base)
    std::uint64_t unbound_events = 0;  // guest events before the guest was tied to its VM
    bool declares_tdp = false;
    std::uint64_t mm_events = 0;  // guest_mm_map events of a guest
    std::uint32_t open_streams = 0;
};

// One output trace: vm-NAME or host.
struct OutputTrace {
    std::string name;
    bt2::TraceRef trace;
    struct Stream {
        bt2::StreamRef stream;
        bt2::PacketRef packet;
        std::uint64_t in_packet = 0;
    };
    std::map<std::uint32_t, Stream> streams;  // by CPU
    std::uint64_t events = 0;
};

struct IsolateComponent {
    IsolateConfig config;
};

struct IsolateIterator {
    bt_self_message_iterator* self = nullptr;
    IsolateComponent* component = nullptr;
    bt2::MessageIteratorRef upstream;
    bt2::MessageIteratorRef scout;
    std::string upstream_name;

    std::vector<std::unique_ptr<Machine>> machines;
    std::unordered_map<const bt_trace*, Machine*> machine_by_trace;
    std::unordered_map<const bt_event_class*, EventInfo> event_info;
    std::unordered_map<const bt_stream*, std::int32_t> stream_cpu;
    Machine* host = nullptr;
    Machine* tracer = nullptr;

    // Tying guests to VMs: vmsync_*_host on a CPU names the vm_uid of the
    // vCPU thread running there; kvm_vm_* events name that thread's VM.
    std::unordered_map<std::int32_t, std::int32_t> host_tid_on_cpu;
    std::unordered_map<std::int32_t, std::int32_t> vm_pid_of_tid;
    std::unordered_map<std::uint64_t, std::int32_t> vm_pid_of_uid;
    std::unordered_map<std::int32_t, std::string> vm_comm;

    std::unique_ptr<isolate::Join> join;
    isolate::IsolationReport report;
    std::unique_ptr<isolate::TruthCheck> truth;
    std::vector<std::string> vm_names;  // by the join's VM index

    // Output
    bt2::TraceClassRef trace_class;
    bt2::ClockClassRef clock_class;
    bt2::StreamClassRef stream_class;
    bt2::EventClassRef event_class;
    std::int64_t clock_offset_ns = 0;
    std::uint64_t last_value = 0;
    std::vector<std::unique_ptr<OutputTrace>> vm_outputs;  // by VM index
    std::unique_ptr<OutputTrace> host_output;
    std::deque<bt2::MessageRef> pending;

    // (user tag, va) of each access held by the join, in input order
    // (va 0: none).
    std::deque<std::pair<std::uint64_t, std::uint64_t>> va_in_flight;
    std::uint64_t records_in = 0;
    std::uint64_t records_out = 0;
    std::unique_ptr<ProgressLine> progress;
    bool started = false;
    bool input_ended = false;
    bool finished = false;
};

// isolate_input.cpp
// `name` made fit for a directory name (vm-NAME): no '/', no control
// characters or spaces, never "", "." or "..".
std::string safe_name(std::string name);
void scout(IsolateIterator& it);
void consume(IsolateIterator& it, const bt_message* message);
void check_inputs(IsolateIterator& it);

// isolate_output.cpp
void write_access(IsolateIterator& it, const isolate::Access& access, const isolate::Result& result);
void close_outputs(IsolateIterator& it);

}  // namespace vmtrace::plugin::isolatefilter
