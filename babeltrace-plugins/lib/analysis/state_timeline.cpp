// SPDX-License-Identifier: MIT
#include "state_timeline.hpp"

#include <algorithm>
#include <stdexcept>

namespace vmtrace::analysis {

const char* to_string(VcpuState state) {
    switch (state) {
    case VcpuState::guest:
        return "guest";
    case VcpuState::hypervisor:
        return "hypervisor";
    case VcpuState::preempted:
        return "preempted";
    case VcpuState::idle:
        return "idle";
    case VcpuState::unknown:
        return "unknown";
    }
    return "?";
}

StateTimeline::StateTimeline(std::int64_t begin, unsigned bins, std::int64_t initial_bin_ns)
    : begin_(begin), bin_ns_(initial_bin_ns), time_(bins) {
    if (bins == 0 || bins % 2 != 0 || initial_bin_ns <= 0) {
        throw std::invalid_argument("a timeline needs an even number of bins and a positive width");
    }
}

void StateTimeline::double_width() {
    const std::size_t half = time_.size() / 2;
    for (std::size_t i = 0; i < half; ++i) {
        for (unsigned s = 0; s < kVcpuStateCount; ++s) {
            time_[i][s] = time_[2 * i][s] + time_[2 * i + 1][s];
        }
    }
    std::fill(time_.begin() + static_cast<std::ptrdiff_t>(half), time_.end(), std::array<std::int64_t, 5>{});
    bin_ns_ *= 2;
}

void StateTimeline::widen_to(std::int64_t bin_ns) {
    while (bin_ns_ < bin_ns) {
        double_width();
    }
}

void StateTimeline::add(VcpuState state, std::int64_t start, std::int64_t end) {
    start = std::max(start, begin_);
    if (end <= start) {
        return;
    }
    while (end - begin_ > bin_ns_ * static_cast<std::int64_t>(time_.size())) {
        double_width();
    }
    const auto s = static_cast<unsigned>(state);
    std::int64_t t = start;
    while (t < end) {
        const std::int64_t bin = (t - begin_) / bin_ns_;
        const std::int64_t bin_end = begin_ + (bin + 1) * bin_ns_;
        const std::int64_t until = std::min(end, bin_end);
        time_[static_cast<std::size_t>(bin)][s] += until - t;
        t = until;
    }
}

}  // namespace vmtrace::analysis
