// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/isolate/attribution.hpp"

namespace vmtrace::isolate {

// What filter.vmtrace.isolate tells of a run: per VM and per guest
// process the accesses, loads/stores/fetches, the distinct pages touched
// (working set) and its course over time, the most touched pages; the
// accesses no VM owns by reason; the records the tracer lost; records in
// and out (docs/isolation.md, isolation.json).  Memory grows with the
// pages touched and the time bins, not with the number of accesses.
class IsolationReport {
public:
    struct Options {
        std::int64_t bin_ns = 100'000'000;  // working set over time: distinct pages per bin
        std::size_t top_pages = 10;
    };
    explicit IsolationReport(Options options);
    IsolationReport() : IsolationReport(Options{}) {}

    // VM `vm` (the join's index) is called `name` (its output trace: vm-NAME).
    void name_vm(int vm, std::string name, std::int32_t vm_pid);
    void add(const Access& access, const Result& result);
    // Records the tracer could not write: its own vmtrace_mem_lost counts,
    // and LTTng's discarded-events counts (`source` names the trace).
    void add_tracer_lost(std::uint64_t count) { tracer_lost_ += count; }
    // The virtual address the tracer recorded for this access (0: none),
    // which the join never reads: measures the join against it.
    void check_va(const Result& result, std::uint64_t va);
    void add_discarded(std::uint64_t count) { discarded_ += count; }

    // Everything but what the caller adds (records in/out, problems).
    [[nodiscard]] nlohmann::ordered_json to_json() const;
    // The human summary (summary.txt).
    [[nodiscard]] std::string to_text() const;
    [[nodiscard]] std::uint64_t accesses() const { return total_; }

private:
    struct Kinds {
        std::uint64_t loads = 0;
        std::uint64_t stores = 0;
        std::uint64_t fetches = 0;
        void add(std::uint8_t kind) { (kind == 1 ? stores : kind == 2 ? fetches : loads) += 1; }
    };
    struct Process {
        std::string comm;
        std::uint64_t accesses = 0;
        Kinds kinds;
        std::unordered_set<std::uint64_t> pages;  // GVA pages
    };
    // check_va: the join's answers against the tracer's virtual addresses.
    struct VaCheck {
        std::uint64_t with_va = 0;
        std::uint64_t guest = 0;            // attributed to a guest process, user-space va
        std::uint64_t gva_equals_va = 0;    // ... with the tracer's va
        std::uint64_t guest_kernel_va = 0;  // attributed to a guest process, kernel va (the guest
                                            // kernel touching the process's page: gva cannot be va)
        std::string first_differing;
        std::uint64_t user_va = 0;  // va in the lower canonical half: a user-space access
        std::array<std::uint64_t, kAttributionCount> user_va_by_attribution{};
        void add(const Result& result, std::uint64_t va);
    };
    struct Vm {
        std::string name;
        std::int32_t vm_pid = 0;
        std::array<std::uint64_t, kAttributionCount> by_attribution{};
        std::uint64_t accesses = 0;
        Kinds kinds;
        std::unordered_set<std::uint64_t> pages;  // GPA pages
        std::unordered_map<std::uint64_t, std::uint64_t> page_counts;
        std::map<std::int32_t, Process> processes;
        std::int64_t bin = -1;
        std::unordered_set<std::uint64_t> bin_pages;
        std::vector<std::pair<std::int64_t, std::uint64_t>> bins;  // bin start ns, distinct pages
        VaCheck va_check;
    };
    Vm& vm(int index);
    static void close_bin(Vm& vm);

    Options options_;
    std::vector<Vm> vms_;
    std::array<std::uint64_t, kAttributionCount> by_attribution_{};
    std::uint64_t total_ = 0;
    Kinds host_kinds_;
    std::unordered_map<std::int32_t, std::uint64_t> host_threads_;  // host tid -> accesses to host memory
    VaCheck va_check_;                                              // all VMs
    std::uint64_t tracer_lost_ = 0;
    std::uint64_t discarded_ = 0;
};

}  // namespace vmtrace::isolate
