// SPDX-License-Identifier: MIT
#include "live_window.hpp"

#include <algorithm>
#include <stdexcept>

namespace vmtrace::analysis {

LiveWindow::LiveWindow(std::int64_t period_ns) : period_(period_ns) {
    if (period_ns <= 0) {
        throw std::invalid_argument("LiveWindow: the period must be positive");
    }
}

void LiveWindow::start(std::int64_t time) {
    // floor division: times before the origin are negative
    const std::int64_t q = time / period_ - (time % period_ < 0 ? 1 : 0);
    begin_ = q * period_;
}

void LiveWindow::state(std::int64_t tid, VcpuState state, std::int64_t from, std::int64_t to) {
    from = std::max(from, begin_);
    to = std::min(to, end());
    if (to > from) {
        vcpus_[tid].state_ns[static_cast<unsigned>(state)] += to - from;
    }
}

void LiveWindow::guest_thread(std::int64_t tid, std::int64_t guest_tid, std::string_view comm, std::int64_t from,
                              std::int64_t to) {
    from = std::max(from, begin_);
    to = std::min(to, end());
    if (to <= from) {
        return;
    }
    GuestThread& g = vcpus_[tid].guest_threads[guest_tid];
    if (g.comm != comm) {
        g.comm = comm;
    }
    g.ns += to - from;
}

void LiveWindow::exit(std::int64_t tid, ExitKey key, std::int64_t now) {
    Vcpu& v = vcpus_[tid];
    ++v.exits[key].count;
    ++v.exit_count;
    pending_[tid] = Pending{key, now};
}

void LiveWindow::entry(std::int64_t tid, std::int64_t now) {
    const auto found = pending_.find(tid);
    if (found == pending_.end() || found->second.time < 0) {
        return;
    }
    vcpus_[tid].exits[found->second.key].latency.add(now - found->second.time);
    found->second.time = -1;
}

void LiveWindow::event(unsigned machine) {
    if (machine >= machines_.size()) {
        machines_.resize(machine + 1);
    }
    ++machines_[machine].events;
}

void LiveWindow::discarded(unsigned machine, std::uint64_t count) {
    if (machine >= machines_.size()) {
        machines_.resize(machine + 1);
    }
    machines_[machine].discarded += count;
}

const LiveWindow::Vcpu* LiveWindow::vcpu(std::int64_t tid) const {
    const auto found = vcpus_.find(tid);
    return found != vcpus_.end() ? &found->second : nullptr;
}

void LiveWindow::advance(std::int64_t next_begin) {
    vcpus_.clear();
    std::fill(machines_.begin(), machines_.end(), Machine{});
    begin_ = std::max(next_begin, end());
}

}  // namespace vmtrace::analysis
