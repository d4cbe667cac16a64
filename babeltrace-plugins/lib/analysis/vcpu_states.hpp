// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "state_timeline.hpp"

namespace vmtrace::analysis {

// The state of each vCPU thread over time (guest, hypervisor, preempted,
// idle, unknown): the time and number of intervals per state and a
// timeline of fixed memory.  Returns them as the `states_ns`,
// `intervals` and `timeline` tables of analysis.json.
class VcpuStates {
public:
    struct Thread {
        Thread(std::int64_t begin, unsigned bins) : since(begin), timeline(begin, bins) {}
        VcpuState state = VcpuState::unknown;
        std::int64_t since;  // the current interval's start
        std::array<std::int64_t, kVcpuStateCount> state_ns{};
        std::array<std::uint64_t, kVcpuStateCount> intervals{};
        StateTimeline timeline;
    };

    // `bins`: the timelines' width (an even number >= 2).
    explicit VcpuStates(unsigned bins) : bins_(bins) {}

    // A vCPU thread's states from `begin` on (its first call decides);
    // the reference stays valid.
    Thread& thread(std::int64_t tid, std::int64_t begin);

    // Accounts the current interval up to `now` (`state_ends`: and counts
    // it as one of its state's intervals); false when it is empty.
    static bool close(Thread& t, std::int64_t now, bool state_ends);
    // Enters `state` at `now` (after close()).
    static void enter(Thread& t, VcpuState state, std::int64_t now);

    // analysis.json's per-vCPU `states_ns` and `intervals`.
    static nlohmann::json states_json(const Thread& t);
    static nlohmann::json intervals_json(const Thread& t);

    // The width that lines up every thread's timeline.
    [[nodiscard]] std::int64_t common_bin_ns() const;
    // The number of bins of `bin_ns` that cover `span_ns`, at most the
    // configured width.
    [[nodiscard]] unsigned bins_over(std::int64_t span_ns, std::int64_t bin_ns) const;

    struct VcpuTimeline {
        std::uint32_t vcpu;
        std::int64_t tid;
        Thread* states;
    };
    // analysis.json's `timeline` of a VM: the fraction of each bin per
    // state, the vCPUs' timelines widened to `bin_ns`.
    static nlohmann::json timeline_table(const std::vector<VcpuTimeline>& vcpus, std::int64_t bin_ns, unsigned bins);

private:
    unsigned bins_;
    std::unordered_map<std::int64_t, Thread> threads_;  // (references to elements stay valid)
};

}  // namespace vmtrace::analysis
