// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "latency_histogram.hpp"

namespace vmtrace::analysis {

// The exits of each vCPU thread by (isa, reason): their counts and the
// latency from each exit to the thread's next entry.  Returns them as
// analysis.json's `exits` and `exit_histogram` tables of a VM.
class ExitTracker {
public:
    struct Stats {
        std::uint64_t count = 0;
        LatencyHistogram latency;
    };
    using Key = std::pair<std::uint32_t, std::uint32_t>;  // (isa, reason)
    struct Thread {
        std::map<Key, Stats> exits;
        std::uint64_t count = 0;
        std::int64_t exit_time = -1;  // of the exit not yet followed by an entry
        Stats* pending = nullptr;     // that exit's entry in `exits` (map nodes stay put)
    };

    // A vCPU thread's exits; the reference stays valid.
    Thread& thread(std::int64_t tid) { return threads_[tid]; }

    static void on_exit(Thread& t, std::uint32_t isa, std::uint32_t reason, std::int64_t now);
    static void on_entry(Thread& t, std::int64_t now);

    // One vCPU thread of a VM, in the VM's order (vCPU, then tid).
    struct VcpuExits {
        std::uint32_t vcpu;
        std::int64_t tid;
        const Thread* exits;
    };
    struct VmTables {
        nlohmann::json exits;      // per vCPU thread and reason, then per reason over all
        nlohmann::json histogram;  // latency log2 buckets per reason
    };
    // `seconds`: the analysed time, for the rates.
    static VmTables vm_tables(const std::vector<VcpuExits>& vcpus, double seconds);

private:
    std::unordered_map<std::int64_t, Thread> threads_;  // (references to elements stay valid)
};

}  // namespace vmtrace::analysis
