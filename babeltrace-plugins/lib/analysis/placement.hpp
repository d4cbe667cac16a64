// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace vmtrace::analysis {

// Where each vCPU thread runs on the host: the physical CPU it is on, how
// long it stayed on each and how often the scheduler moved it.  Returns
// them as analysis.json's `pcpu_residency_ns` per vCPU and `placement`
// per VM.
class Placement {
public:
    struct Thread {
        int cpu = -1;  // the physical CPU it runs on, -1: not running
        std::int64_t on_cpu_since = 0;
        std::map<int, std::int64_t> residency_ns;  // physical CPU -> time
        std::uint64_t migrations = 0;
    };

    // A vCPU thread's placement; the reference stays valid.
    Thread& thread(std::int64_t tid) { return threads_[tid]; }

    // Switched in on `cpu` at `now`.
    static void arrive(Thread& t, int cpu, std::int64_t now);
    // Switched out at `now`.
    static void leave(Thread& t, std::int64_t now);
    // Accounts the time on its CPU up to `end`, where it stays.
    static void close(Thread& t, std::int64_t end);
    static void migrated(Thread& t) { ++t.migrations; }

    static nlohmann::json residency_json(const Thread& t);
    // analysis.json's `placement` of a VM: the physical CPUs any of its
    // vCPU threads ran on and the time of each thread (in `threads`'
    // order) on each of them.
    static nlohmann::json vm_table(const std::vector<const Thread*>& threads);

private:
    std::unordered_map<std::int64_t, Thread> threads_;  // (references to elements stay valid)
};

}  // namespace vmtrace::analysis
