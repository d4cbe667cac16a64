// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

namespace vmtrace::scenario {

// The event kinds the simulator emits; each maps to one schema event of
// docs/events.json.
enum class EventType : std::uint8_t {
    sched_switch,
    sched_migrate_task,
    kvm_entry,
    kvm_exit,
    vmsync_gh_guest,
    vmsync_hg_guest,
    vmsync_gh_host,
    vmsync_hg_host,
    kvm_pio,
    kvm_mmio,
    kvm_msr,
    kvm_inj_virq,
    kvm_hypercall,
    // The memory side (memory_scenario.hpp)
    vm_statedump_vm,
    vm_statedump_vcpu,
    process_statedump,
    process_fork,
    tdp_mmu_map,
    guest_mm_map,
    guest_mm_unmap,
    memsync_begin,
    memsync_end,
    mem_access,
    mem_lost,
    mem_sync,
};
inline constexpr unsigned kEventTypeCount = 25;

// One simulated event.  Only the fields of its type are meaningful; the
// strings point into the simulator's thread tables and stay valid for the
// simulator's lifetime.
struct SimEvent {
    std::int64_t time = 0;  // true time: ns since the start of the simulation
    unsigned machine = 0;   // 0: host, 1..N: guest N-1
    unsigned cpu = 0;       // physical CPU on the host, vCPU in a guest
    int guest = -1;         // host events about a vCPU (kvm_*, its thread's migration): its guest
    EventType type = EventType::sched_switch;

    // sched_switch (prev_*, next_*); sched_migrate_task uses prev_* as its
    // comm, tid and prio.
    const char* prev_comm = "";
    std::int32_t prev_tid = 0;
    std::int32_t prev_prio = 0;
    std::int64_t prev_state = 0;
    const char* next_comm = "";
    std::int32_t next_tid = 0;
    std::int32_t next_prio = 0;
    std::int32_t orig_cpu = 0;
    std::int32_t dest_cpu = 0;

    // kvm_x86_entry / kvm_x86_exit / vmsync_*_host; the vCPU of a host
    // sched_migrate_task of a vCPU thread
    std::uint32_t vcpu_id = 0;
    std::uint64_t rip = 0;  // rip on entry, guest_rip on exit
    std::uint32_t exit_reason = 0;
    std::uint32_t isa = 0;
    std::uint64_t info1 = 0;
    std::uint64_t info2 = 0;
    std::uint32_t intr_info = 0;
    std::uint32_t error_code = 0;

    // vmsync_*
    std::uint32_t cnt = 0;
    std::uint64_t vm_uid = 0;

    // kvm_x86_pio / _mmio / _msr / _inj_virq / _hypercall: the fields of
    // docs/events.json in order (pio: rw port size count val; mmio: type
    // len gpa val; msr: write index data exception; inj_virq: vector soft
    // reinjected; hypercall: nr a0 a1 a2 a3).
    std::uint64_t args[5] = {};

    // The memory side.  vm_statedump_vm: pid = vm_pid, tid = owner pid,
    // count = vCPUs, comm; vm_statedump_vcpu: pid = vm_pid, count = vCPU,
    // tid; process_statedump: tid, pid, comm; process_fork: parent
    // (prev_comm, prev_tid, pid) and child (comm, tid, child_pid);
    // tdp_mmu_map: pid = vm_pid, addr = gfn, addr2 = pfn, addr3 = old pfn,
    // level, op; guest_mm_map: pid, tid, addr = gva, addr2 = gpa, op =
    // access bits; guest_mm_unmap: pid, tid, addr = start, addr2 = end, op
    // = reason; memsync_*: cnt, addr = page; mem_access: count = CPU,
    // addr = hpa, addr2 = va, level = size, op = kind; mem_lost: addr =
    // count; mem_sync: cnt, addr = page, count = CPU.
    std::int32_t pid = 0;
    std::int32_t tid = 0;
    std::int32_t child_pid = 0;
    const char* comm = "";
    std::uint64_t addr = 0;
    std::uint64_t addr2 = 0;
    std::uint64_t addr3 = 0;
    std::uint32_t count = 0;
    std::uint8_t level = 0;
    std::uint8_t op = 0;
};

// SVM exit codes the simulator produces (AMD APM vol. 2, appendix C).
namespace svm_exit {
inline constexpr std::uint32_t intr = 0x060;
inline constexpr std::uint32_t cpuid = 0x072;
inline constexpr std::uint32_t hlt = 0x078;
inline constexpr std::uint32_t ioio = 0x07b;
inline constexpr std::uint32_t msr = 0x07c;
inline constexpr std::uint32_t vmmcall = 0x081;
inline constexpr std::uint32_t npf = 0x400;
}  // namespace svm_exit

inline constexpr std::uint32_t kIsaSvm = 2;

// The hypercall number of the vmsync handshake (kmod/).
inline constexpr std::uint64_t kVmsyncHypercall = 0x564d5359;

}  // namespace vmtrace::scenario
