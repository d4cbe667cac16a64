// SPDX-License-Identifier: MIT
#include "host_scheduler.hpp"

namespace vmtrace::analysis {

void HostScheduler::see_cpu(std::uint32_t cpu) {
    if (cpu >= current_.size()) {
        current_.resize(cpu + 1, -1);
    }
}

void HostScheduler::on_switch(std::uint32_t cpu, std::int64_t prev_tid, std::int64_t prev_state,
                              std::string_view prev_comm, std::int64_t next_tid, std::string_view next_comm,
                              std::int64_t now) {
    see_cpu(cpu);
    Thread& prev = threads_[prev_tid];
    prev.cpu = -1;
    prev.switched_out = now;
    prev.out_state = prev_state;
    if (prev.comm.empty()) {
        prev.comm = prev_comm;
    }
    Thread& next = threads_[next_tid];
    next.cpu = static_cast<int>(cpu);
    next.switched_in = now;
    next.comm = next_comm;
    current_[cpu] = next_tid;
}

void HostScheduler::set_process(std::int64_t tid, std::int64_t pid) {
    threads_[tid].pid = pid;
}

void HostScheduler::set_comm(std::int64_t tid, std::string_view comm) {
    threads_[tid].comm = comm;
}

const HostScheduler::Thread* HostScheduler::find(std::int64_t tid) const {
    const auto found = threads_.find(tid);
    return found != threads_.end() ? &found->second : nullptr;
}

std::int64_t HostScheduler::pid_of(std::int64_t tid) const {
    const Thread* t = find(tid);
    return t != nullptr ? t->pid : -1;
}

}  // namespace vmtrace::analysis
