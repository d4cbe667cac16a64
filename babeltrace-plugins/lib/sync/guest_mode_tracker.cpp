// SPDX-License-Identifier: MIT
#include "lib/sync/guest_mode_tracker.hpp"

#include <algorithm>

namespace vmtrace::sync {

void GuestModeTracker::on_sched_switch(std::uint32_t cpu, std::int32_t next_tid, std::int64_t time) {
    newest_ = std::max(newest_, time);
    if (cpu >= cpus_.size()) {
        cpus_.resize(cpu + 1);
    }
    cpus_[cpu].running = next_tid;
    cpus_[cpu].open_entry = -1;
    if (next_tid > 0) {
        Thread& thread = threads_[next_tid];
        thread.covered_since = std::min(thread.covered_since, time);
    }
}

void GuestModeTracker::on_kvm_entry(std::uint32_t cpu, std::int64_t time) {
    newest_ = std::max(newest_, time);
    if (cpu < cpus_.size() && cpus_[cpu].running > 0) {
        cpus_[cpu].open_entry = time;
    }
}

void GuestModeTracker::on_kvm_exit(std::uint32_t cpu, std::int64_t time) {
    newest_ = std::max(newest_, time);
    if (cpu >= cpus_.size() || cpus_[cpu].running <= 0 || cpus_[cpu].open_entry < 0) {
        return;
    }
    Thread& thread = threads_[cpus_[cpu].running];
    thread.intervals.emplace(cpus_[cpu].open_entry, time);
    cpus_[cpu].open_entry = -1;
}

void GuestModeTracker::forget_before(std::int64_t time) {
    for (auto& [tid, thread] : threads_) {
        while (!thread.intervals.empty() && thread.intervals.begin()->second < time) {
            thread.pruned_until = std::max(thread.pruned_until, thread.intervals.begin()->second);
            thread.intervals.erase(thread.intervals.begin());
        }
    }
}

void GuestModeTracker::on_vcpu_identified(std::uint32_t cpu, std::uint64_t vm_uid, std::uint32_t vcpu) {
    if (cpu < cpus_.size() && cpus_[cpu].running > 0) {
        vcpu_threads_[{vm_uid, vcpu}] = cpus_[cpu].running;
    }
}

GuestModeTracker::Verdict GuestModeTracker::check(std::uint64_t vm_uid, std::uint32_t vcpu, std::int64_t time,
                                                  std::int64_t tolerance_ns) const {
    const auto id = vcpu_threads_.find({vm_uid, vcpu});
    if (id == vcpu_threads_.end()) {
        return Verdict::unknown;
    }
    const std::int32_t tid = id->second;
    const Thread& thread = threads_.at(tid);
    if (time < thread.covered_since || time > newest_ || time <= thread.pruned_until) {
        return Verdict::unknown;
    }
    for (const Cpu& cpu : cpus_) {
        if (cpu.running == tid && cpu.open_entry >= 0 && time >= cpu.open_entry - tolerance_ns) {
            return Verdict::inside;  // still in guest mode
        }
    }
    // The last interval that starts at or before `time` + tolerance: the
    // intervals are disjoint, so no earlier one ends later.
    auto it = thread.intervals.upper_bound(time + tolerance_ns);
    if (it != thread.intervals.begin() && time - tolerance_ns <= std::prev(it)->second) {
        return Verdict::inside;
    }
    return Verdict::outside;
}

std::size_t GuestModeTracker::retained_intervals() const {
    std::size_t total = 0;
    for (const auto& [tid, thread] : threads_) {
        total += thread.intervals.size();
    }
    return total;
}

}  // namespace vmtrace::sync
