// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "latency_histogram.hpp"
#include "state_timeline.hpp"

namespace vmtrace::analysis {

// The analyses of one interval of trace time, for a live view (`vmtrace
// top`, sink.vmtrace.analysis's snapshots): per vCPU thread the time in
// each state, its exits by reason with their latencies, the guest threads
// that ran on it and its migrations; per machine its events and the
// events LTTng discarded.  Intervals are aligned on multiples of the
// period (ns from origin), so that two readers of one trace cut the same
// seconds.  Memory is bounded by the threads and exit reasons seen in one
// interval.
class LiveWindow {
public:
    using ExitKey = std::pair<std::uint32_t, std::uint32_t>;  // (isa, reason)
    struct GuestThread {
        std::string comm;
        std::int64_t ns = 0;
    };
    struct Exits {
        std::uint64_t count = 0;   // exits in the interval
        LatencyHistogram latency;  // of the exits whose entry came in the interval
    };
    struct Vcpu {
        std::array<std::int64_t, kVcpuStateCount> state_ns{};
        std::map<ExitKey, Exits> exits;
        std::unordered_map<std::int64_t, GuestThread> guest_threads;  // by guest tid
        std::uint64_t exit_count = 0;
        std::uint64_t migrations = 0;        // of the vCPU thread between physical CPUs
        std::uint64_t guest_migrations = 0;  // of guest threads onto this vCPU
    };
    struct Machine {
        std::uint64_t events = 0;
        std::uint64_t discarded = 0;  // LTTng's discarded-events counts
    };

    // `period_ns` > 0.
    explicit LiveWindow(std::int64_t period_ns);

    // Starts the first interval at the period's multiple at or before `time`.
    void start(std::int64_t time);
    [[nodiscard]] bool started() const { return begin_ >= 0; }
    [[nodiscard]] std::int64_t begin() const { return begin_; }
    [[nodiscard]] std::int64_t end() const { return begin_ + period_; }
    [[nodiscard]] std::int64_t period() const { return period_; }

    // Time of `state` over [from, to), clipped to the interval.
    void state(std::int64_t tid, VcpuState state, std::int64_t from, std::int64_t to);
    // A guest thread ran on vCPU thread `tid` over [from, to).
    void guest_thread(std::int64_t tid, std::int64_t guest_tid, std::string_view comm, std::int64_t from,
                      std::int64_t to);
    void exit(std::int64_t tid, ExitKey key, std::int64_t now);
    void entry(std::int64_t tid, std::int64_t now);
    void migrated(std::int64_t tid) { ++vcpus_[tid].migrations; }
    void guest_migrated(std::int64_t tid) { ++vcpus_[tid].guest_migrations; }
    void event(unsigned machine);
    void discarded(unsigned machine, std::uint64_t count);

    [[nodiscard]] const Vcpu* vcpu(std::int64_t tid) const;
    [[nodiscard]] const std::vector<Machine>& machines() const { return machines_; }

    // Ends the interval and starts the next one at `next_begin` (the
    // current end, or later across a gap in the trace).
    void advance(std::int64_t next_begin);

private:
    struct Pending {
        ExitKey key;
        std::int64_t time = -1;  // -1: none
    };
    std::int64_t period_;
    std::int64_t begin_ = -1;
    std::unordered_map<std::int64_t, Vcpu> vcpus_;       // this interval's
    std::unordered_map<std::int64_t, Pending> pending_;  // exits not yet followed by an entry, across intervals
    std::vector<Machine> machines_;
};

}  // namespace vmtrace::analysis
