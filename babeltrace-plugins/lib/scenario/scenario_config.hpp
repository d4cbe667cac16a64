// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmtrace::scenario {

// How the simulator corrupts the vmsync handshake, for bad-input tests.
enum class CntCorruption { none, duplicate, reorder };

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
    bool host_sync_events = true;            // host module records vmsync
    bool guest_sync_events = true;           // guest module loaded
    std::int64_t host_receive_delay_ns = 0;  // host records gh_host late
    CntCorruption cnt_corruption = CntCorruption::none;
    // Every guest clock jumps forward by this much halfway through the run
    // (an NTP step, a live migration): no single line fits any more.
    std::int64_t guest_clock_step_ns = 0;
    unsigned cnt_corruption_every = 100;

    [[nodiscard]] unsigned effective_host_cpus() const {
        return host_cpus != 0 ? host_cpus : guests * vcpus_per_guest + 2;
    }

    // Throws std::invalid_argument naming the parameter.
    void validate() const;
};

CntCorruption parse_cnt_corruption(std::string_view text);

}  // namespace vmtrace::scenario
