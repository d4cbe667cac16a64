// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string_view>

namespace vmtrace::analysis {

// Bounds on the values of a trace that size the analyses' memory: a
// damaged byte must never become an allocation.  Linux supports at most
// 8192 CPUs (x86's NR_CPUS ceiling) and KVM 4096 vCPU ids per VM
// (KVM_MAX_VCPU_IDS on x86); a CPU must also be one the trace declares
// (a packet's cpu_id).
inline constexpr std::uint32_t kMaxCpus = 8192;
inline constexpr std::uint32_t kMaxVcpuIds = 4096;

// The events the analyses read (docs/events.json); everything else is
// counted and skipped.
enum class EventKind : std::uint8_t {
    other,
    sched_switch,
    sched_migrate_task,
    kvm_entry,
    kvm_exit,
    kvm_pio,
    kvm_mmio,
    kvm_msr,
    kvm_msr_user,
    kvm_inj_virq,
    kvm_inj_exception,
    kvm_hypercall,
    vmsync_host,    // vmsync_gh_host or vmsync_hg_host
    vcpu_thread,    // kvm_vm_vcpu_thread or kvm_vm_statedump_vcpu
    process_state,  // lttng_statedump_process_state
};

// One decoded event.  Only the members of its kind are set; the strings
// point into the babeltrace2 event and live until the next event.
struct TraceEvent {
    std::int64_t time = 0;  // ns on the host's time base (from its clock's origin)
    unsigned machine = 0;   // index given by the sink, see MachineInfo
    std::uint32_t cpu = 0;  // the stream's cpu_id: physical CPU on the host, vCPU in a guest
    EventKind kind = EventKind::other;
    std::string_view name;  // the event class's, for messages

    // sched_switch
    std::int64_t prev_tid = 0;
    std::int64_t prev_state = 0;
    std::int64_t next_tid = 0;
    std::string_view prev_comm;
    std::string_view next_comm;
    // sched_migrate_task, vcpu_thread, process_state
    std::int64_t tid = 0;
    std::int64_t pid = 0;   // process_state; vm_pid of vcpu_thread
    std::string_view comm;  // vcpu_thread: the VM's process name, when recorded
    std::int64_t orig_cpu = 0;
    std::int64_t dest_cpu = 0;
    // kvm_*, vmsync_host, vcpu_thread
    std::uint32_t vcpu_id = 0;
    std::uint32_t exit_reason = 0;
    std::uint32_t isa = 0;
    std::uint64_t info1 = 0;
    std::uint64_t info2 = 0;
    std::uint64_t intr_info = 0;
    // kvm_entry's rip, kvm_exit's guest_rip (when the trace has them)
    std::uint64_t rip = 0;
    bool has_rip = false;
    // kvm_pio/_mmio/_msr/_msr_user/_inj_virq/_inj_exception/_hypercall:
    // the payload after vcpu_id,
    // in docs/events.json's order
    std::uint64_t args[5] = {};
    // vmsync_host
    std::uint64_t vm_uid = 0;
};

// What the sink knows of each machine (one babeltrace2 trace).
struct MachineInfo {
    std::string_view hostname;
    bool host = false;         // declares KVM or vmsync host events
    std::uint64_t vm_uid = 0;  // a guest synchronised by filter.vmtrace.sync (its env)
    bool synchronized = false;
    // Which of KVM's handler events the host trace declares: where one is
    // missing the log falls back to what the exit event says.
    bool has_pio = false;
    bool has_mmio = false;
    bool has_msr = false;
    bool has_msr_user = false;
    bool has_inj_virq = false;
    bool has_inj_exception = false;
    bool has_hypercall = false;
};

}  // namespace vmtrace::analysis
