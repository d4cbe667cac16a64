// SPDX-License-Identifier: MIT
#include "scenario_config.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace vmtrace::scenario {
namespace {

constexpr double kMaxGuestOffsetS = 365.0 * 24 * 3600;
constexpr std::int64_t kMaxDurationNs = 864'000'000LL * 1'000'000;

void require(bool condition, std::string_view parameter, std::string_view rule) {
    if (!condition) {
        throw std::invalid_argument(fmt::format("parameter `{}`: {}", parameter, rule));
    }
}

}  // namespace

void ScenarioConfig::validate() const {
    require(guests <= 64, "guests", "at most 64 guests");
    require(vcpus_per_guest >= 1 && vcpus_per_guest <= 64, "vcpus", "between 1 and 64");
    require(host_cpus == 0 || host_cpus > guests * vcpus_per_guest, "host-cpus",
            "must exceed the total number of vCPUs");
    require(duration_ns > 0, "duration-ms", "must be positive");
    require(max_guest_offset_s >= 0 && max_guest_offset_s <= 3600, "max-guest-offset-s", "between 0 and 3600");
    require(max_drift_ppm >= 0 && max_drift_ppm <= 1000, "max-drift-ppm", "between 0 and 1000");
    require(guest_offsets_s.empty() || guest_offsets_s.size() == guests, "guest-offsets-s",
            "needs one value per guest");
    require(guest_drifts_ppm.empty() || guest_drifts_ppm.size() == guests, "guest-drifts-ppm",
            "needs one value per guest");
    for (double drift : guest_drifts_ppm) {
        require(drift > -1000 && drift < 1000, "guest-drifts-ppm", "each between -1000 and 1000");
    }
    // A guest clock's offset must stay representable in ns, with its
    // drift over the run: a year either way is far beyond any real boot.
    for (double offset : guest_offsets_s) {
        require(offset >= -kMaxGuestOffsetS && offset <= kMaxGuestOffsetS, "guest-offsets-s",
                "each between -31536000 and 31536000 (a year)");
    }
    require(duration_ns <= kMaxDurationNs, "duration-ms", "at most 864000000 (10 days)");
    require(sync_period_ns >= 100'000, "sync-period-us", "at least 100 us");
    require(latency_min_ns >= 1'000, "latency-min-ns", "at least 1000 ns");
    require(latency_mean_ns >= 0, "latency-mean-ns", "must not be negative");
    require(latency_max_ns >= latency_min_ns, "latency-max-ns", "must be at least latency-min-ns");
    require(latency_max_ns * 4 < sync_period_ns, "latency-max-ns", "must be below a quarter of the sync period");
    require(mean_guest_run_ns >= 5'000, "mean-guest-run-ns", "at least 5000 ns");
    require(mean_guest_switch_ns >= 10'000, "mean-guest-switch-ns", "at least 10000 ns");
    require(preempt_probability >= 0 && preempt_probability <= 1, "preempt-probability", "between 0 and 1");
    require(migrate_probability >= 0 && migrate_probability <= 1, "migrate-probability", "between 0 and 1");
    require(mean_preempt_ns >= 1'000, "mean-preempt-ns", "at least 1000 ns");
    require(mean_idle_ns >= 1'000, "mean-idle-ns", "at least 1000 ns");
    require(threads_per_vcpu >= 2, "threads-per-vcpu", "at least 2");
    require(packet_events >= 16, "packet-events", "at least 16");
    require(host_receive_delay_ns >= 0, "host-receive-delay-ns", "must not be negative");
    require(guest_clock_step_ns >= 0, "guest-clock-step-ns", "must not be negative");
    require(cnt_corruption_every >= 2, "corrupt-cnt-every", "at least 2");
    if (memory.enabled) {
        require(memory.guest_ram_mb >= 16 && memory.guest_ram_mb <= 65536, "memory-guest-ram-mb",
                "between 16 and 65536");
        require(memory.pages_per_process >= 1 && memory.pages_per_process <= 1u << 20, "memory-pages-per-process",
                "between 1 and 1048576");
        require(memory.shared_pages >= 1 && memory.shared_pages <= 1u << 16, "memory-shared-pages",
                "between 1 and 65536");
        const std::uint64_t ram_pages = std::uint64_t{memory.guest_ram_mb} << 8;
        const unsigned processes =
            memory.processes_per_guest != 0 ? memory.processes_per_guest : vcpus_per_guest * threads_per_vcpu / 2;
        require(processes <= vcpus_per_guest * threads_per_vcpu, "memory-processes", "at most one per guest thread");
        // Private pages of every process twice over (execve and munmap
        // fault them in again), the library and the kernel must fit.
        require(2 * std::uint64_t{processes} * memory.pages_per_process + memory.shared_pages + 4096 <
                    ram_pages * (1.0 - memory.huge_share) + 1,
                "memory-pages-per-process", "too many pages for memory-guest-ram-mb");
        require(memory.accesses_per_us > 0 && memory.accesses_per_us <= 100, "memory-accesses-per-us",
                "above 0 and at most 100");
        require(memory.huge_share >= 0 && memory.huge_share <= 0.5, "memory-huge-share", "between 0 and 0.5");
        require(memory.premapped_kernel_share >= 0 && memory.premapped_kernel_share <= 1,
                "memory-premapped-kernel-share", "between 0 and 1");
        require(memory.mean_remap_ns >= 10'000, "memory-remap-us", "at least 10");
        require(memory.mean_munmap_ns >= 100'000, "memory-munmap-us", "at least 100");
        require(memory.mean_exec_ns >= 100'000, "memory-exec-us", "at least 100");
        require(memory.host_on_behalf_share >= 0 && memory.host_on_behalf_share <= 1, "memory-host-on-behalf-share",
                "between 0 and 1");
        require(memory.cross_process_share >= 0 && memory.cross_process_share <= 0.5, "memory-cross-process-share",
                "between 0 and 0.5");
        require(memory.memsync_period_ns >= 100'000, "memory-sync-period-us", "at least 100");
        require(memory.tracer_drift_ppm > -1000 && memory.tracer_drift_ppm < 1000, "memory-tracer-drift-ppm",
                "between -1000 and 1000");
        require(memory.tracer_offset_s >= 0 && memory.tracer_offset_s <= 3600, "memory-tracer-offset-s",
                "between 0 and 3600");
        require(memory.lost_burst >= 1, "memory-lost-burst", "at least 1");
    }
}

CntCorruption parse_cnt_corruption(std::string_view text) {
    if (text == "none") {
        return CntCorruption::none;
    }
    if (text == "duplicate") {
        return CntCorruption::duplicate;
    }
    if (text == "reorder") {
        return CntCorruption::reorder;
    }

    throw std::invalid_argument(
        fmt::format("parameter `corrupt-cnt`: `{}` is not one of none, duplicate, reorder", text));
}

}  // namespace vmtrace::scenario
