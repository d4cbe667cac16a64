// SPDX-License-Identifier: MIT
#include "ground_truth_writer.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vmtrace::scenario {

GroundTruthWriter::GroundTruthWriter(const std::string& path, bool with_intervals)
    : path_(path), with_intervals_(with_intervals) {
    file_ = std::fopen(path.c_str(), "w");
    if (file_ == nullptr) {
        throw std::runtime_error(fmt::format("cannot write ground truth file `{}`: {}", path, std::strerror(errno)));
    }
}

GroundTruthWriter::~GroundTruthWriter() {
    if (file_ != nullptr) {
        std::fclose(file_);
    }
}

void GroundTruthWriter::begin(const ScenarioSimulator& simulator, const TracerIdentity* tracer) {
    const ScenarioConfig& config = simulator.config();
    host_origin_ns_ = simulator.host_clock().ns_from_origin_at(0);
    vcpus_per_guest_ = config.vcpus_per_guest;
    totals_.assign(static_cast<std::size_t>(config.guests) * config.vcpus_per_guest, {});
    counts_.assign(totals_.size(), {});
    exits_.assign(totals_.size(), {});
    vcpu_migrations_.assign(totals_.size(), 0);
    nondet_.assign(config.guests, {});
    guest_thread_ns_.assign(config.guests, {});
    guest_migrations_.assign(
        config.guests, std::vector<std::vector<std::uint64_t>>(config.vcpus_per_guest,
                                                               std::vector<std::uint64_t>(config.vcpus_per_guest, 0)));

    nlohmann::json header;
    header["seed"] = config.seed;
    header["duration_ns"] = config.duration_ns;
    header["host"] = {{"hostname", simulator.host_hostname()},
                      {"cpus", simulator.host_cpus()},
                      {"clock_offset_ns", simulator.host_clock().offset_ns},
                      {"origin_ns", host_origin_ns_}};
    nlohmann::json guests = nlohmann::json::array();
    for (unsigned g = 0; g < simulator.guests().size(); ++g) {
        const GuestIdentity& id = simulator.guests()[g];
        nlohmann::json tids = nlohmann::json::array();
        for (unsigned v = 0; v < config.vcpus_per_guest; ++v) {
            tids.push_back(simulator.vcpu_tid(g, v));
        }
        guests.push_back({{"hostname", id.hostname},
                          {"vm_uid", id.vm_uid},
                          {"vm_uid_hex", fmt::format("{:#x}", id.vm_uid)},
                          {"qemu_pid", id.qemu_pid},
                          {"vcpu_tids", tids},
                          {"offset_s", id.offset_s},
                          {"drift_ppm", id.drift_ppm},
                          {"transform",
                           {{"guest_origin_ns", id.clock.ns_from_origin_at(0)},
                            {"host_origin_ns", host_origin_ns_},
                            {"drift_ppb", id.clock.drift_ppb},
                            // a forward step of the guest clock (bad-input runs only)
                            {"step_at_host_ns", host_origin_ns_ + id.clock.step_at},
                            {"step_ns", id.clock.step_ns}}}});
    }
    header["guests"] = guests;
    if (tracer != nullptr) {
        // The memory tracer's clock reads `tracer_origin_ns + (T - host_origin_ns) * (1e9 + drift_ppb) / 1e9`
        // at host time T, as a guest's does.
        header["tracer"] = {{"hostname", tracer->hostname},
                            {"memsync_page", tracer->memsync_page},
                            {"transform",
                             {{"guest_origin_ns", tracer->clock.ns_from_origin_at(0)},
                              {"host_origin_ns", host_origin_ns_},
                              {"drift_ppb", tracer->clock.drift_ppb},
                              {"step_at_host_ns", host_origin_ns_},
                              {"step_ns", 0}}}};
    }
    header["states"] = {"guest", "hypervisor", "preempted", "idle"};
    std::string text = header.dump();
    text.pop_back();  // reopen the object to stream the intervals into it
    fmt::print(file_, "{},\"intervals\":[", text);
}

void GroundTruthWriter::on_interval(unsigned guest, unsigned vcpu, VcpuState state, std::int64_t start,
                                    std::int64_t end) {
    const std::size_t index = static_cast<std::size_t>(guest) * vcpus_per_guest_ + vcpu;
    totals_[index][static_cast<unsigned>(state)] += end - start;
    ++counts_[index][static_cast<unsigned>(state)];
    if (with_intervals_) {
        fmt::print(file_, "{}[{},{},\"{}\",{},{}]", first_interval_ ? "" : ",", guest, vcpu, to_string(state),
                   host_origin_ns_ + start, host_origin_ns_ + end);
        first_interval_ = false;
    }
}

void GroundTruthWriter::on_guest_thread(unsigned guest, unsigned vcpu, std::int32_t tid, std::int64_t ns) {
    guest_thread_ns_.at(guest)[{tid, vcpu}] += ns;
}

void GroundTruthWriter::on_event(const SimEvent& event) {
    if (event.machine != 0) {
        if (event.type == EventType::sched_migrate_task) {
            ++guest_migrations_.at(event.machine - 1).at(event.orig_cpu).at(event.dest_cpu);
        }
        return;
    }
    if (event.guest < 0) {
        return;
    }
    const auto guest = static_cast<unsigned>(event.guest);
    switch (event.type) {
    case EventType::kvm_exit:
        ++exits_.at(guest * vcpus_per_guest_ + event.vcpu_id)[event.exit_reason];
        return;
    case EventType::sched_migrate_task:
        ++vcpu_migrations_.at(guest * vcpus_per_guest_ + event.vcpu_id);
        return;
    case EventType::kvm_pio:
        ++nondet_[guest]["pio"];
        return;
    case EventType::kvm_mmio:
        ++nondet_[guest]["mmio"];
        return;
    case EventType::kvm_msr:
        ++nondet_[guest]["msr"];
        return;
    case EventType::kvm_inj_virq:
        ++nondet_[guest]["interrupt"];
        return;
    case EventType::kvm_hypercall:
        ++nondet_[guest]["hypercall"];
        return;
    default:
        return;
    }
}

void GroundTruthWriter::finish(const std::string& memory_json) {
    nlohmann::json totals = nlohmann::json::array();
    for (std::size_t i = 0; i < totals_.size(); ++i) {
        nlohmann::json entry{{"guest", i / vcpus_per_guest_}, {"vcpu", i % vcpus_per_guest_}};
        for (unsigned s = 0; s < 4; ++s) {
            const char* name = to_string(static_cast<VcpuState>(s));
            entry[fmt::format("{}_ns", name)] = totals_[i][s];
            entry[fmt::format("{}_intervals", name)] = counts_[i][s];
        }
        nlohmann::json exits = nlohmann::json::object();
        for (const auto& [reason, count] : exits_[i]) {
            exits[fmt::format("{:#x}", reason)] = count;
        }
        entry["exits"] = exits;
        entry["pcpu_migrations"] = vcpu_migrations_[i];
        totals.push_back(entry);
    }
    nlohmann::json guests = nlohmann::json::array();
    for (std::size_t g = 0; g < nondet_.size(); ++g) {
        nlohmann::json threads = nlohmann::json::array();
        for (const auto& [key, ns] : guest_thread_ns_[g]) {
            threads.push_back({{"tid", key.first}, {"vcpu", key.second}, {"guest_ns", ns}});
        }
        guests.push_back({{"guest", g},
                          {"nondet", nondet_[g]},
                          {"guest_migrations", guest_migrations_[g]},
                          {"guest_thread_ns", threads}});
    }
    fmt::print(file_, "],\"totals\":{},\"guest_counts\":{}", totals.dump(), guests.dump());
    if (!memory_json.empty()) {
        fmt::print(file_, ",\"memory\":{}", memory_json);
    }
    fmt::print(file_, "}}\n");
    const bool failed = std::ferror(file_) != 0;
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (failed || closed != 0) {
        throw std::runtime_error(fmt::format("cannot write ground truth file `{}`", path_));
    }
}

}  // namespace vmtrace::scenario
