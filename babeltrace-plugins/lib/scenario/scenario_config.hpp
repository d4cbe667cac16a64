// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmtrace::scenario {

// How the simulator corrupts the vmsync handshake, for bad-input tests.
enum class CntCorruption { none, duplicate, reorder };

// The memory side of a scenario: what the guests touch and how the host
// maps it, and the memory tracer that records it.
struct MemoryConfig {
    bool enabled = false;
    unsigned guest_ram_mb = 256;
    unsigned processes_per_guest = 0;          // 0: one per two guest threads
    unsigned pages_per_process = 256;          // private pages each process faults in over the run
    unsigned shared_pages = 64;                // a library every process maps, at one guest-physical copy
    double accesses_per_us = 0.5;              // per CPU running code, in guest or host mode
    double huge_share = 0.25;                  // guest RAM backed by 2 MiB host pages
    double premapped_kernel_share = 0.5;       // guest kernel pages the host mapped before tracing
    bool statedump = false;                    // the host module's mapping statedump: kvm_tdp_mmu_map op 4
                                               // at the start for the pages mapped before tracing
    std::int64_t mean_remap_ns = 2'000'000;    // host zaps or moves one guest page (per VM)
    std::int64_t mean_munmap_ns = 20'000'000;  // a guest process unmaps part of its heap
    std::int64_t mean_exec_ns = 50'000'000;    // a guest process calls execve
    double host_on_behalf_share = 0.3;         // of a vCPU thread's host-mode accesses: into its VM's RAM
    double cross_process_share = 0.02;         // of guest-mode accesses: another process's page (copy_to_user)
    std::int64_t memsync_period_ns = 10'000'000;
    double tracer_drift_ppm = 30.0;
    double tracer_offset_s = 0.75;
    std::uint64_t lost_every = 0;  // a burst of lost records after this many (0: none)
    unsigned lost_burst = 500;
    // Bad-input knobs: the host module or the guest module not loaded (no
    // mapping events), or the host making no memsync marks.
    bool host_mappings = true;
    bool guest_mappings = true;
    bool memsync = true;
    // Every Nth kvm_tdp_mmu_map is not written (0: all are): the later
    // events of those pages contradict what a reader knows.
    unsigned drop_host_mapping_every = 0;
};

// Everything that determines a simulated recording.  Two runs with equal
// configurations produce identical traces.
struct ScenarioConfig {
    std::uint64_t seed = 1;
    unsigned guests = 2;
    unsigned vcpus_per_guest = 2;
    // Physical CPUs of the host; at least one more than the vCPUs so that a
    // vCPU thread always has somewhere to migrate.
    unsigned host_cpus = 0;  // 0: vCPUs + 2
    std::int64_t duration_ns = 10'000'000'000;

    // Guest clocks: each guest's offset is drawn in [-max, max] seconds and
    // its drift in [-max, max] ppm, unless given explicitly per guest.
    double max_guest_offset_s = 5.0;
    double max_drift_ppm = 200.0;
    std::vector<double> guest_offsets_s;
    std::vector<double> guest_drifts_ppm;

    // vmsync: each vCPU makes a handshake every period; one-way latency is
    // min + an exponential tail of the given mean, capped at max.
    std::int64_t sync_period_ns = 10'000'000;
    std::int64_t latency_min_ns = 1'000;
    std::int64_t latency_mean_ns = 4'000;
    std::int64_t latency_max_ns = 50'000;

    // Workload shape.
    std::int64_t mean_guest_run_ns = 60'000;      // guest mode between exits
    std::int64_t mean_guest_switch_ns = 400'000;  // guest sched_switch interval
    double preempt_probability = 0.05;            // host preemption after an INTR exit
    std::int64_t mean_preempt_ns = 150'000;
    std::int64_t mean_idle_ns = 300'000;  // vCPU blocked after HLT
    double migrate_probability = 0.2;     // vCPU thread moves when it resumes
    unsigned threads_per_vcpu = 3;        // guest threads per vCPU
    unsigned packet_events = 8192;        // events per CTF packet

    // Bad-input knobs, all off by default.
    bool host_sync_events = true;   // host module records vmsync
    bool guest_sync_events = true;  // guest module loaded
    // KVM's handler events (kvm_x86_pio, _mmio, _msr, _inj_virq,
    // _hypercall) recorded: off, a host trace of entries and exits only.
    bool handler_events = true;
    std::int64_t host_receive_delay_ns = 0;  // host records gh_host late
    CntCorruption cnt_corruption = CntCorruption::none;
    // Every guest clock jumps forward by this much halfway through the run
    // (an NTP step, a live migration): no single line fits any more.
    std::int64_t guest_clock_step_ns = 0;
    unsigned cnt_corruption_every = 100;

    // The memory side (off unless `memory` is set): guest RAM that the
    // host maps on first touch, guest processes that fault pages in, and a
    // whole-machine memory tracer with its own clock (memory_scenario.hpp).
    MemoryConfig memory;

    [[nodiscard]] unsigned effective_host_cpus() const {
        return host_cpus != 0 ? host_cpus : guests * vcpus_per_guest + 2;
    }

    // Throws std::invalid_argument naming the parameter.
    void validate() const;
};

CntCorruption parse_cnt_corruption(std::string_view text);

}  // namespace vmtrace::scenario
