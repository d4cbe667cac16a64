// SPDX-License-Identifier: MIT
#include "guest_scheduler.hpp"

#include <algorithm>
#include <limits>

namespace vmtrace::analysis {

void GuestScheduler::on_switch(std::uint32_t vcpu, std::int64_t next_tid, std::string_view next_comm, std::int64_t now,
                               bool keep_history) {
    if (vcpu >= current_.size()) {
        current_.resize(vcpu + 1);
    }
    if (keep_history) {
        if (vcpu >= history_.size()) {
            history_.resize(vcpu + 1);
        }
        std::vector<Switch>& history = history_[vcpu];
        if (history.empty() && current_[vcpu].tid >= 0) {
            // who ran before the first switch kept
            history.push_back(Switch{std::numeric_limits<std::int64_t>::min(), current_[vcpu].tid});
        }
        history.push_back(Switch{now, next_tid});
    }
    current_[vcpu] = Current{next_tid, std::string(next_comm)};
    Thread& thread = threads_[next_tid];
    if (thread.comm.empty() || next_tid != 0) {
        thread.comm = next_comm;
    }
}

void GuestScheduler::on_migrate(std::int64_t tid, std::string_view comm, std::uint32_t from, std::uint32_t to) {
    ++migrations_[{from, to}];
    Thread& thread = threads_[tid];
    ++thread.migrations;
    if (thread.comm.empty()) {
        thread.comm = comm;
    }
}

const GuestScheduler::Current* GuestScheduler::current(std::uint32_t vcpu) const {
    if (vcpu >= current_.size() || current_[vcpu].tid < 0) {
        return nullptr;
    }
    return &current_[vcpu];
}

bool GuestScheduler::split(std::uint32_t vcpu, std::int64_t start, std::int64_t end, const Piece& piece) {
    const std::vector<Switch>* history = vcpu < history_.size() ? &history_[vcpu] : nullptr;
    std::vector<Switch> only_current;
    if ((history == nullptr || history->empty()) && current(vcpu) != nullptr) {
        // no switch since: the current thread ran throughout
        only_current.push_back(Switch{std::numeric_limits<std::int64_t>::min(), current_[vcpu].tid});
        history = &only_current;
    }
    if (history == nullptr || history->empty()) {
        return false;
    }
    // the thread current at `start`: the last switch before it
    auto it = std::upper_bound(history->begin(), history->end(), start,
                               [](std::int64_t time, const Switch& s) { return time < s.time; });
    std::int64_t tid = it == history->begin() ? -1 : std::prev(it)->tid;
    std::int64_t from = start;
    auto credit_piece = [&](std::int64_t to) {
        const std::string comm = tid >= 0 ? threads_[tid].comm : std::string();
        if (tid >= 0 && to > from) {
            credit(tid, vcpu, to - from);
        }
        if (to > from) {
            piece(from, to, tid, comm);
        }
    };
    for (; it != history->end() && it->time < end; ++it) {
        credit_piece(it->time);
        from = it->time;
        tid = it->tid;
    }
    credit_piece(end);
    return true;
}

GuestScheduler::Tables GuestScheduler::tables(std::uint32_t vcpus, std::size_t max_threads) const {
    Tables out;
    std::vector<std::pair<std::int64_t, std::int64_t>> order;  // (-guest ns, tid)
    for (const auto& [tid, t] : threads_) {
        std::int64_t total = 0;
        for (const auto& [vcpu, ns] : t.guest_ns) {
            total += ns;
        }
        order.emplace_back(-total, tid);
    }
    std::sort(order.begin(), order.end());
    out.threads = nlohmann::json::array();
    for (std::size_t i = 0; i < order.size() && i < max_threads; ++i) {
        const Thread& t = threads_.at(order[i].second);
        nlohmann::json by_vcpu = nlohmann::json::object();
        for (const auto& [vcpu, ns] : t.guest_ns) {
            by_vcpu[std::to_string(vcpu)] = ns;
        }
        out.threads.push_back({{"tid", order[i].second},
                               {"comm", t.comm},
                               {"guest_ns", -order[i].first},
                               {"vcpu_migrations", t.migrations},
                               {"guest_ns_by_vcpu", by_vcpu}});
    }
    out.omitted = order.size() > max_threads ? order.size() - max_threads : 0;
    std::size_t size = vcpus;
    for (const auto& [cpus, count] : migrations_) {
        size = std::max<std::size_t>({size, cpus.first + 1U, cpus.second + 1U});
    }
    std::vector<std::vector<std::uint64_t>> matrix(size, std::vector<std::uint64_t>(size, 0));
    for (const auto& [cpus, count] : migrations_) {
        matrix[cpus.first][cpus.second] = count;
        out.migrations += count;
    }
    out.matrix = matrix;
    return out;
}

}  // namespace vmtrace::analysis
