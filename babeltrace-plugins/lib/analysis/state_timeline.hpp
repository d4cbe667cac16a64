// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace vmtrace::analysis {

enum class VcpuState : std::uint8_t { guest, hypervisor, preempted, idle, unknown };
inline constexpr unsigned kVcpuStateCount = 5;
const char* to_string(VcpuState state);

// Time per state in fixed bins from `begin`, for drawing: the bins double
// in width whenever an interval ends past the last one, so that memory
// stays at `bins` entries however long the trace.
class StateTimeline {
public:
    StateTimeline(std::int64_t begin, unsigned bins, std::int64_t initial_bin_ns = 1'000);

    void add(VcpuState state, std::int64_t start, std::int64_t end);
    // Widens the bins to `bin_ns` (a power-of-two multiple of the current
    // width) so that timelines of several vCPUs line up.
    void widen_to(std::int64_t bin_ns);

    [[nodiscard]] std::int64_t bin_ns() const { return bin_ns_; }
    [[nodiscard]] unsigned bins() const { return static_cast<unsigned>(time_.size()); }
    [[nodiscard]] std::int64_t time_in(unsigned bin, VcpuState state) const {
        return time_[bin][static_cast<unsigned>(state)];
    }

private:
    void double_width();

    std::int64_t begin_;
    std::int64_t bin_ns_;
    std::vector<std::array<std::int64_t, kVcpuStateCount>> time_;
};

}  // namespace vmtrace::analysis
