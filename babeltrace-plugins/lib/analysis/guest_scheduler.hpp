// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmtrace::analysis {

// A guest's threads as its scheduler shows them: which runs on each vCPU,
// how long each ran in guest mode on each vCPU (credited by the engine,
// which knows when the vCPU is in guest mode) and how the guest moved
// them between vCPUs.  Returns analysis.json's `guest_threads` and
// `guest_migrations` of a VM.
class GuestScheduler {
public:
    struct Thread {
        std::string comm;
        std::map<std::uint32_t, std::int64_t> guest_ns;  // by vCPU
        std::uint64_t migrations = 0;
    };
    // The thread on a vCPU: tid -1 when not known yet.
    struct Current {
        std::int64_t tid = -1;
        std::string comm;
    };

    // A switch to `next_tid` on `vcpu` at `now`; `keep_history`: remember
    // it, for intervals that are split later (split()).
    void on_switch(std::uint32_t vcpu, std::int64_t next_tid, std::string_view next_comm, std::int64_t now,
                   bool keep_history);
    // (`from` and `to` are CPUs the guest declares: the caller checked)
    void on_migrate(std::int64_t tid, std::string_view comm, std::uint32_t from, std::uint32_t to);

    // nullptr: no switch on `vcpu` seen yet.
    [[nodiscard]] const Current* current(std::uint32_t vcpu) const;
    void credit(std::int64_t tid, std::uint32_t vcpu, std::int64_t ns) { threads_[tid].guest_ns[vcpu] += ns; }

    // Splits guest-mode time [start, end) on `vcpu` at the switches kept
    // since keep_history began (or, with none, gives it to the current
    // thread), credits each piece to its thread and passes it to `piece`
    // (tid -1: a thread not known); false when nothing is known of `vcpu`.
    using Piece = std::function<void(std::int64_t start, std::int64_t end, std::int64_t tid, std::string_view comm)>;
    bool split(std::uint32_t vcpu, std::int64_t start, std::int64_t end, const Piece& piece);
    // Every interval that needed the kept switches was split.
    void clear_history() { history_.clear(); }

    struct Tables {
        nlohmann::json threads;  // busiest first, at most `max_threads`
        std::size_t omitted = 0;
        nlohmann::json matrix;  // migrations (from, to)
        std::uint64_t migrations = 0;
    };
    // `vcpus`: the VM's vCPU count (the matrix covers at least those).
    [[nodiscard]] Tables tables(std::uint32_t vcpus, std::size_t max_threads) const;

private:
    struct Switch {
        std::int64_t time;
        std::int64_t tid;
    };
    std::vector<Current> current_;                                                 // per vCPU
    std::map<std::int64_t, Thread> threads_;                                       // by tid
    std::vector<std::vector<Switch>> history_;                                     // per vCPU, while kept
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> migrations_;  // (from, to)
};

}  // namespace vmtrace::analysis
