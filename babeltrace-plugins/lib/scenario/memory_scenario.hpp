// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "machine_clock.hpp"
#include "memory_truth.hpp"
#include "scenario_simulator.hpp"

namespace vmtrace::scenario {

// A scenario with its memory side: the events of ScenarioSimulator, and
// what the memory of the machine does meanwhile.
//
// - Each guest has RAM whose pages the host maps on first touch
//   (kvm_tdp_mmu_map install; 2 MiB host pages for the first
//   `huge_share` of guest RAM), some guest kernel pages mapped before the
//   tracing started (no event: the join calls them before-map; with
//   `statedump`, a kvm_tdp_mmu_map op 4 each at the start), and host
//   zaps (op 3, half of them from reclaim, vm_pid 0) and moves (op 2).
// - Guest threads belong to processes (two threads each by default) that
//   fault their private pages and a shared library in (guest_mm_map),
//   unmap part of their heap (munmap) and call execve (unmap reason 2).
// - A whole-machine memory tracer records every access by host-physical
//   address with its own drifting clock, aligned by memsync marks the host
//   makes every `memsync_period_ns`; bursts of records can be lost.
//
// Memory accesses happen on every host CPU that runs code: guest threads
// and the guest kernel in guest mode, the vCPU thread in host mode (into
// its VM's RAM: device emulation, host-on-behalf; or host memory), other
// host threads (host memory).  The state of a CPU is constant between two
// events of the base simulation, so accesses are planned per such window
// on every CPU, then carried out in time order, so that every access sees
// the mappings of its own time.  The ground truth of each access is what
// a join that reads all the mapping events written must say.
//
// Without `memory.enabled`, next() returns the base simulation's events.
class MemoryScenario {
public:
    MemoryScenario(const ScenarioConfig& config, StateObserver* observer, MemoryTruth* truth);
    ~MemoryScenario();
    MemoryScenario(const MemoryScenario&) = delete;
    MemoryScenario& operator=(const MemoryScenario&) = delete;

    bool next(SimEvent& event);

    [[nodiscard]] const ScenarioSimulator& base() const { return base_; }
    [[nodiscard]] const ScenarioConfig& config() const { return base_.config(); }
    // The memory tracer's machine index (after the guests) and clock.
    [[nodiscard]] unsigned tracer_machine() const { return base_.config().guests + 1; }
    [[nodiscard]] const MachineClock& tracer_clock() const { return tracer_clock_; }
    [[nodiscard]] std::string tracer_hostname() const { return "vmtrace-sim-memtracer"; }
    [[nodiscard]] std::uint64_t memsync_page() const { return kMemsyncPage; }
    // Guest names as the truth aggregates use them.
    [[nodiscard]] std::vector<std::string> guest_names() const;

    static constexpr std::uint64_t kMemsyncPage = 0x7ff0000;

private:
    struct State;
    struct Planned;
    struct Queued {
        std::int64_t time;
        std::uint64_t seq;
        SimEvent event;
        bool has_truth = false;
        MemoryTruthRecord truth{};
        bool operator>(const Queued& other) const { return time != other.time ? time > other.time : seq > other.seq; }
    };

    void push(const SimEvent& event, const MemoryTruthRecord* truth = nullptr);
    void plan_window(std::int64_t from, std::int64_t to);
    void carry_out(const Planned& action);
    void apply_base(const SimEvent& event);
    void emit_statedumps_host();
    bool release(SimEvent& event);

    ScenarioSimulator base_;
    MemoryTruth* truth_;
    std::unique_ptr<State> state_;
    MachineClock tracer_clock_;
    std::priority_queue<Queued, std::vector<Queued>, std::greater<>> queue_;
    std::uint64_t seq_ = 0;
    std::int64_t horizon_ = 0;  // the base events up to here are applied
    std::int64_t floor_ = 0;    // the time of the last action carried out
    bool base_done_ = false;
    std::int64_t last_tracer_value_ = -1;
    std::int64_t tracer_bump_ = 0;
};

}  // namespace vmtrace::scenario
