// SPDX-License-Identifier: MIT
// The end of an analysis: the results (analysis.json's content) from what
// the analyses tracked.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "analysis_engine.hpp"

namespace vmtrace::analysis {
namespace {

constexpr std::size_t kMaxGuestThreads = 200;  // per VM in analysis.json, busiest first

// filter.vmtrace.sync's verdict per vm_uid ("0x..."), from its statistics.
std::map<std::string, nlohmann::json> read_sync_stats(const std::string& path, std::vector<std::string>& warnings) {
    std::map<std::string, nlohmann::json> out;
    if (path.empty()) {
        return out;
    }
    std::ifstream in(path);
    if (!in) {
        warnings.push_back(fmt::format("sync statistics `{}` cannot be read: sync quality not reported", path));
        return out;
    }
    try {
        const nlohmann::json stats = nlohmann::json::parse(in);
        for (const auto& m : stats.at("machines")) {
            if (m.contains("vm_uid")) {
                nlohmann::json verdict{{"quality", m.value("quality", "unknown")}};
                verdict["bound_ns"] = m.contains("accuracy_ns") ? m["accuracy_ns"] : nlohmann::json(nullptr);
                if (m.contains("transform")) {
                    verdict["transform"] = m["transform"];  // guest times of the replay log
                }
                out[m["vm_uid"].get<std::string>()] = verdict;
            }
        }
    } catch (const nlohmann::json::exception& e) {
        warnings.push_back(fmt::format("sync statistics `{}` are not valid: {}", path, e.what()));
    }
    return out;
}

// The guest's clock from the sync transform (guest -> host); nothing when
// the statistics do not hold a valid one.
std::optional<clocksync::LinearTransform> guest_clock_of(const nlohmann::json& t, std::vector<std::string>& warnings) {
    try {
        clocksync::LinearTransform transform;
        transform.x0 = t.at("x0_ns").get<std::int64_t>();
        transform.y0 = t.at("y0_ns").get<std::int64_t>();
        const auto num = clocksync::parse_int128(t.at("slope_num").get<std::string>());
        const auto den = clocksync::parse_int128(t.at("slope_den").get<std::string>());
        if (num && den && *num > 0 && *den > 0) {
            transform.slope_num = *num;
            transform.slope_den = *den;
            return transform;
        }
    } catch (const nlohmann::json::exception&) {
    }
    warnings.push_back("a sync transform in the sync statistics is not valid: the replay log has no guest times");
    return std::nullopt;
}

}  // namespace

void AnalysisEngine::build_results() {
    const std::int64_t span = end_ - begin_;
    const double seconds = static_cast<double>(span) / 1e9;
    const auto sync = read_sync_stats(options_.sync_stats_path, warnings_);

    nlohmann::json out;
    out["format"] = "vmtrace-analysis";
    out["version"] = 1;
    out["begin_ns"] = begin_;
    out["end_ns"] = end_;
    nlohmann::json host = nullptr;
    std::uint64_t host_events = 0;
    std::uint64_t guest_events = 0;
    for (const Machine& m : machines_) {
        if (m.info.host && host.is_null()) {
            int cpus = static_cast<int>(host_.cpus());
            host = {{"hostname", m.hostname}, {"cpus", cpus}};
        }
        (m.info.host ? host_events : guest_events) += m.events;
    }
    out["host"] = host;
    out["events"] = {{"host", host_events},           {"guests", guest_events},  {"ignored", other_events_},
                     {"unattributed", unattributed_}, {"reordered", reordered_}, {"discarded", discarded_}};
    out["ended_early"] = ended_early_.empty() ? nlohmann::json(nullptr) : nlohmann::json(ended_early_);

    // Timelines line up on the widest bins of all vCPUs.
    const std::int64_t bin_ns = states_.common_bin_ns();
    const unsigned bins = states_.bins_over(span, bin_ns);

    nlohmann::json vms = nlohmann::json::array();
    for (int v = 0; v < identity_.size(); ++v) {
        const VmIdentity::Vm& vm = identity_.at(v);
        std::vector<const VcpuThread*> threads;
        for (const auto& [tid, t] : vcpus_) {
            if (t->vm == v) {
                threads.push_back(t.get());
            }
        }
        if (threads.empty()) {
            continue;
        }
        std::sort(threads.begin(), threads.end(), [](const VcpuThread* a, const VcpuThread* b) {
            return a->vcpu != b->vcpu ? a->vcpu < b->vcpu : a->tid < b->tid;
        });
        nlohmann::json j;
        j["id"] = v;
        j["name"] = identity_.name(
            v, vm.guest_machine >= 0 ? std::string_view(machines_[static_cast<unsigned>(vm.guest_machine)].hostname)
                                     : std::string_view());
        j["vm_uid"] = vm.vm_uid != 0 ? nlohmann::json(fmt::format("{:#x}", vm.vm_uid)) : nlohmann::json(nullptr);
        j["qemu_pid"] = vm.qemu_pid > 0 ? nlohmann::json(vm.qemu_pid) : nlohmann::json(nullptr);
        j["qemu_comm"] = vm.comm.empty() ? nlohmann::json(nullptr) : nlohmann::json(vm.comm);
        const Machine* guest = vm.guest_machine >= 0 ? &machines_[static_cast<unsigned>(vm.guest_machine)] : nullptr;
        j["guest_trace"] = guest != nullptr ? nlohmann::json(guest->hostname) : nlohmann::json(nullptr);
        const auto verdict = sync.find(fmt::format("{:#x}", vm.vm_uid));
        j["sync"] = verdict != sync.end() && guest != nullptr ? verdict->second : nlohmann::json(nullptr);
        if (verdict != sync.end() && guest != nullptr && verdict->second.contains("transform")) {
            guest_clocks_.emplace(v, guest_clock_of(verdict->second["transform"], warnings_));
        }

        nlohmann::json vcpus = nlohmann::json::array();
        std::vector<const NondetLog::Counts*> nondet;
        std::vector<const ReplayLog*> replay;
        std::vector<ExitTracker::VcpuExits> vcpu_exits;
        std::vector<const Placement::Thread*> places;
        std::vector<VcpuStates::VcpuTimeline> timelines;
        std::uint32_t vcpu_count = 0;
        for (const VcpuThread* t : threads) {
            vcpus.push_back({{"vcpu", t->vcpu},
                             {"tid", t->tid},
                             {"states_ns", VcpuStates::states_json(*t->states)},
                             {"intervals", VcpuStates::intervals_json(*t->states)},
                             {"exits", t->exits->count},
                             {"pcpu_migrations", t->place->migrations},
                             {"pcpu_residency_ns", Placement::residency_json(*t->place)}});
            vcpu_exits.push_back({t->vcpu, t->tid, t->exits});
            nondet.push_back(t->nondet);
            replay.push_back(t->replay.get());
            places.push_back(t->place);
            timelines.push_back({t->vcpu, t->tid, t->states});
            vcpu_count = std::max(vcpu_count, t->vcpu + 1);
        }
        ExitTracker::VmTables exit_tables = ExitTracker::vm_tables(vcpu_exits, seconds);
        j["vcpus"] = vcpus;
        j["exits"] = std::move(exit_tables.exits);
        j["exit_histogram"] = std::move(exit_tables.histogram);

        // A VM without a guest trace: no guest thread, no migration.
        static const GuestScheduler kNoGuest;
        GuestScheduler::Tables guest_tables =
            (guest != nullptr ? guest->scheduler : kNoGuest).tables(vcpu_count, kMaxGuestThreads);
        j["guest_threads"] = std::move(guest_tables.threads);
        if (guest_tables.omitted > 0) {
            j["guest_threads_omitted"] = guest_tables.omitted;
        }
        j["guest_migrations"] = {{"count", guest_tables.migrations}, {"matrix", std::move(guest_tables.matrix)}};
        j["placement"] = Placement::vm_table(places);
        std::vector<std::int64_t> running = cosched_.running_ns(v);
        running.resize(std::max(running.size(), threads.size() + 1), 0);  // 0..all vCPUs at once
        j["coscheduling"] = {{"running_ns", running}};
        j["timeline"] = VcpuStates::timeline_table(timelines, bin_ns, bins);
        j["nondet"] = NondetLog::vm_table(nondet);
        j["replay_log"] = ReplayLog::vm_table(replay);
        vms.push_back(j);
    }
    out["vms"] = vms;

    if (unattributed_ > 0) {
        warnings_.push_back(fmt::format(
            "{} KVM events came before their CPU's first sched_switch: their thread, hence their vCPU, is unknown",
            unattributed_));
    }
    if (reordered_ > 0) {
        warnings_.push_back(
            fmt::format("{} events were older than one before them and were taken at that time", reordered_));
    }
    for (const Machine& m : machines_) {
        if (!m.info.host && m.info.synchronized && m.vm < 0) {
            warnings_.push_back(fmt::format("guest trace `{}` (vm_uid {:#x}) matches no VM of the host trace",
                                            m.hostname, m.info.vm_uid));
        }
    }
    for (int v = 0; v < identity_.size(); ++v) {
        const VmIdentity::Vm& vm = identity_.at(v);
        // (a VM merged into the one its vm_uid names has no threads)
        if (vm.vm_uid == 0 && vm.qemu_pid <= 0 && !vm.vcpu_tids.empty()) {
            warnings_.push_back(
                "some vCPU threads could not be attributed to a VM (no vmsync host events nor kvm_vm events for "
                "them): they are grouped under `unidentified`");
        }
    }
    out["warnings"] = warnings_;
    results_ = std::move(out);
}

}  // namespace vmtrace::analysis
