// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vmtrace::analysis {

// The host's threads as its scheduler and statedump show them: which runs
// on each physical CPU, each one's process and name, and when it was last
// switched in or out (a vCPU thread's state before its first KVM event).
class HostScheduler {
public:
    struct Thread {
        std::string comm;
        std::int64_t pid = -1;
        int cpu = -1;  // where it runs, -1: not running
        std::int64_t switched_in = -1;
        std::int64_t switched_out = -1;
        std::int64_t out_state = 0;  // prev_state when switched out
    };

    // A CPU some host event names (the number of CPUs analysis.json reports).
    void see_cpu(std::uint32_t cpu);
    void on_switch(std::uint32_t cpu, std::int64_t prev_tid, std::int64_t prev_state, std::string_view prev_comm,
                   std::int64_t next_tid, std::string_view next_comm, std::int64_t now);
    // A thread's process (the statedump, a KVM vCPU thread event).
    void set_process(std::int64_t tid, std::int64_t pid);
    void set_comm(std::int64_t tid, std::string_view comm);

    // nullptr: never seen.
    [[nodiscard]] const Thread* find(std::int64_t tid) const;
    // -1: not known.
    [[nodiscard]] std::int64_t pid_of(std::int64_t tid) const;
    // The thread running on `cpu`, -1: not known yet.
    [[nodiscard]] std::int64_t current(std::uint32_t cpu) const { return current_[cpu]; }
    [[nodiscard]] std::size_t cpus() const { return current_.size(); }

private:
    std::unordered_map<std::int64_t, Thread> threads_;
    std::vector<std::int64_t> current_;  // per physical CPU: tid, -1 unknown
};

}  // namespace vmtrace::analysis
