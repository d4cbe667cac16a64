// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "scenario_simulator.hpp"

namespace vmtrace::scenario {

// Streams the simulator's ground truth to a JSON file: the true clock
// transform of every guest, then (optionally) every vCPU state interval as
// it happens, then per-vCPU totals.  Memory stays constant however long
// the run.  Times are host ns from origin.
//
// A guest event whose clock reads G (ns from origin) truly happened at
// host time  host_origin_ns + (G - guest_origin_ns) * 1e9 / (1e9 + drift_ppb).
class GroundTruthWriter final : public StateObserver {
public:
    GroundTruthWriter(const std::string& path, bool with_intervals);
    ~GroundTruthWriter() override;
    GroundTruthWriter(const GroundTruthWriter&) = delete;
    GroundTruthWriter& operator=(const GroundTruthWriter&) = delete;

    // The memory tracer of a scenario with a memory side.
    struct TracerIdentity {
        std::string hostname;
        MachineClock clock;
        std::uint64_t memsync_page;
    };
    // Writes the header; call once, before the simulation runs.
    void begin(const ScenarioSimulator& simulator, const TracerIdentity* tracer = nullptr);
    void on_interval(unsigned guest, unsigned vcpu, VcpuState state, std::int64_t start, std::int64_t end) override;
    void on_guest_thread(unsigned guest, unsigned vcpu, std::int32_t tid, std::int64_t ns) override;
    // Counts what the analyses must find exactly: exits by reason, logged
    // non-deterministic events, migrations.  Call with every event of
    // every machine.
    void on_event(const SimEvent& event);
    // Writes the totals (and the memory side's aggregates, a JSON object,
    // when given) and closes the file; throws on I/O errors.
    void finish(const std::string& memory_json = "");

private:
    std::string path_;
    std::FILE* file_ = nullptr;
    bool with_intervals_;
    bool first_interval_ = true;
    std::int64_t host_origin_ns_ = 0;
    unsigned vcpus_per_guest_ = 0;
    std::vector<std::array<std::int64_t, 4>> totals_;  // per vCPU, per state
    std::vector<std::array<std::uint64_t, 4>> counts_;
    std::vector<std::map<std::uint32_t, std::uint64_t>> exits_;  // per vCPU: reason -> count
    std::vector<std::map<std::pair<std::int32_t, unsigned>, std::int64_t>> guest_thread_ns_;  // per guest
    std::vector<std::uint64_t> vcpu_migrations_;                             // per vCPU: physical CPU changes
    std::vector<std::map<std::string, std::uint64_t>> nondet_;               // per guest: kind -> count
    std::vector<std::vector<std::vector<std::uint64_t>>> guest_migrations_;  // per guest: [from][to]
};

}  // namespace vmtrace::scenario
