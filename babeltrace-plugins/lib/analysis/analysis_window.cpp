// SPDX-License-Identifier: MIT
// The engine's snapshots for a live view: one JSON object per interval of
// host time (docs/analysis-output.md, "Snapshots").
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "analysis_engine.hpp"
#include "exit_reason.hpp"

namespace vmtrace::analysis {
namespace {

// Past this many intervals without any event, the view jumps to the
// interval of the next event (one object per skipped second helps no one).
constexpr std::int64_t kMaxEmptyIntervals = 60;

double rounded(double value, double unit) {
    return std::round(value / unit) * unit;
}

}  // namespace

void AnalysisEngine::advance_window(std::int64_t now) {
    if (!window_->started()) {
        window_->start(begin_ >= 0 ? begin_ : now);
    }
    std::int64_t closed = 0;
    while (now >= window_->end()) {
        const std::int64_t end = window_->end();
        close_window(end, false);
        if (++closed >= kMaxEmptyIntervals && now >= window_->end()) {
            const std::int64_t period = window_->period();
            window_->advance(now - ((now % period) + period) % period);
        }
    }
}

void AnalysisEngine::close_window(std::int64_t end, bool final) {
    // The intervals still open count up to the window's end; the rest of
    // them goes to the next window when they close.
    for (auto& [tid, thread] : vcpus_) {
        const VcpuThread& t = *thread;
        window_->state(tid, t.states->state, t.states->since, end);
        if (t.states->state == VcpuState::guest && t.guest_tid >= 0) {
            window_->guest_thread(tid, t.guest_tid, t.guest_comm, t.states->since, end);
        }
    }
    if (options_.on_window) {
        options_.on_window(window_json(end, final));
    }
    window_->advance(end);
}

nlohmann::json AnalysisEngine::window_json(std::int64_t end, bool final) const {
    const std::int64_t begin = std::max(window_->begin(), begin_);
    const std::int64_t span = std::max<std::int64_t>(end - begin, 1);
    const double seconds = static_cast<double>(span) / 1e9;
    nlohmann::json out;
    out["type"] = "interval";
    out["begin_ns"] = window_->begin();
    out["end_ns"] = end;
    out["covered_ns"] = end - begin;  // less than the period for the first and last
    out["final"] = final;
    out["last_event_ns"] = last_event_time_;
    nlohmann::json machines = nlohmann::json::array();
    const auto& counts = window_->machines();
    for (unsigned i = 0; i < machines_.size(); ++i) {
        const Machine& m = machines_[i];
        const LiveWindow::Machine none;
        const LiveWindow::Machine& c = i < counts.size() ? counts[i] : none;
        machines.push_back({{"name", m.hostname},
                            {"role", m.info.host ? "host" : "guest"},
                            {"events", c.events},
                            {"events_per_s", rounded(static_cast<double>(c.events) / seconds, 0.1)},
                            {"discarded", c.discarded},
                            {"events_total", m.events},
                            {"discarded_total", m.discarded}});
    }
    out["machines"] = std::move(machines);

    // VMs in the order of analysis.json; vCPU threads of no known VM last.
    std::map<int, std::vector<const VcpuThread*>> by_vm;
    for (const auto& [tid, t] : vcpus_) {
        by_vm[t->vm].push_back(t.get());
    }
    nlohmann::json vms = nlohmann::json::array();
    for (auto& [vm, threads] : by_vm) {
        std::sort(threads.begin(), threads.end(), [](const VcpuThread* a, const VcpuThread* b) {
            return a->vcpu != b->vcpu ? a->vcpu < b->vcpu : a->tid < b->tid;
        });
        nlohmann::json j;
        if (vm >= 0) {
            const VmIdentity::Vm& v = identity_.at(vm);
            j["name"] = identity_.name(
                vm, v.guest_machine >= 0 ? std::string_view(machines_[static_cast<unsigned>(v.guest_machine)].hostname)
                                         : std::string_view());
            j["vm_uid"] = v.vm_uid != 0 ? nlohmann::json(fmt::format("{:#x}", v.vm_uid)) : nlohmann::json(nullptr);
            j["guest_trace"] = v.guest_machine >= 0
                                   ? nlohmann::json(machines_[static_cast<unsigned>(v.guest_machine)].hostname)
                                   : nlohmann::json(nullptr);
        } else {
            j["name"] = "unidentified";
            j["vm_uid"] = nullptr;
            j["guest_trace"] = nullptr;
        }
        nlohmann::json vcpus = nlohmann::json::array();
        std::uint64_t vm_exits = 0;
        for (const VcpuThread* t : threads) {
            const LiveWindow::Vcpu none;
            const LiveWindow::Vcpu* w = window_->vcpu(t->tid);
            const LiveWindow::Vcpu& v = w != nullptr ? *w : none;
            nlohmann::json states;
            for (unsigned s = 0; s < kVcpuStateCount; ++s) {
                states[to_string(static_cast<VcpuState>(s))] =
                    rounded(100.0 * static_cast<double>(v.state_ns[s]) / static_cast<double>(span), 0.01);
            }
            nlohmann::json exits = nlohmann::json::array();
            for (const auto& [key, e] : v.exits) {
                exits.push_back({{"reason", exit_reason_name(key.first, key.second)},
                                 {"code", key.second},
                                 {"count", e.count},
                                 {"per_s", rounded(static_cast<double>(e.count) / seconds, 0.1)},
                                 {"p50_ns", e.latency.percentile(0.50)},
                                 {"p99_ns", e.latency.percentile(0.99)}});
            }
            std::sort(exits.begin(), exits.end(),
                      [](const nlohmann::json& a, const nlohmann::json& b) { return a["count"] > b["count"]; });
            nlohmann::json top = nullptr;
            std::int64_t top_ns = 0;
            for (const auto& [gtid, g] : v.guest_threads) {
                if (g.ns > top_ns || (g.ns == top_ns && !top.is_null() && gtid < top["tid"].get<std::int64_t>())) {
                    top_ns = g.ns;
                    top = {{"tid", gtid},
                           {"comm", g.comm},
                           {"pct", rounded(100.0 * static_cast<double>(g.ns) / static_cast<double>(span), 0.01)}};
                }
            }
            vm_exits += v.exit_count;
            vcpus.push_back(
                {{"vcpu", t->vcpu},
                 {"tid", t->tid},
                 {"pcpu", t->place->cpu},
                 {"state", to_string(t->states->state)},
                 {"state_pct", std::move(states)},
                 {"exits", v.exit_count},
                 {"exits_per_s", rounded(static_cast<double>(v.exit_count) / seconds, 0.1)},
                 {"exit_reasons", std::move(exits)},
                 {"top_guest_thread", std::move(top)},
                 {"migrations_per_s", rounded(static_cast<double>(v.migrations) / seconds, 0.1)},
                 {"guest_migrations_per_s", rounded(static_cast<double>(v.guest_migrations) / seconds, 0.1)}});
        }
        j["exits_per_s"] = rounded(static_cast<double>(vm_exits) / seconds, 0.1);
        j["vcpus"] = std::move(vcpus);
        vms.push_back(std::move(j));
    }
    out["vms"] = std::move(vms);
    return out;
}

}  // namespace vmtrace::analysis
