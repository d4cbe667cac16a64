// SPDX-License-Identifier: MIT
#include "exit_tracker.hpp"

#include <algorithm>
#include <cmath>

#include "exit_reason.hpp"

namespace vmtrace::analysis {
namespace {

nlohmann::json latency_json(const LatencyHistogram& h) {
    return {{"min", h.min()},
            {"p50", h.percentile(0.50)},
            {"p90", h.percentile(0.90)},
            {"p99", h.percentile(0.99)},
            {"max", h.max()},
            {"mean", std::round(h.mean() * 10.0) / 10.0}};
}

const char* isa_name(std::uint32_t isa) {
    return isa == kIsaSvm ? "svm" : isa == kIsaVmx ? "vmx" : "unknown";
}

}  // namespace

void ExitTracker::on_exit(Thread& t, std::uint32_t isa, std::uint32_t reason, std::int64_t now) {
    ++t.count;
    t.pending = &t.exits[{isa, reason}];
    ++t.pending->count;
    t.exit_time = now;
}

void ExitTracker::on_entry(Thread& t, std::int64_t now) {
    if (t.exit_time >= 0) {
        t.pending->latency.add(now - t.exit_time);
        t.exit_time = -1;
    }
}

ExitTracker::VmTables ExitTracker::vm_tables(const std::vector<VcpuExits>& vcpus, double seconds) {
    nlohmann::json exits = nlohmann::json::array();
    std::map<Key, Stats> by_reason;
    for (const VcpuExits& v : vcpus) {
        for (const auto& [key, stats] : v.exits->exits) {
            exits.push_back({{"reason", exit_reason_name(key.first, key.second)},
                             {"code", key.second},
                             {"isa", isa_name(key.first)},
                             {"vcpu", v.vcpu},
                             {"tid", v.tid},
                             {"count", stats.count},
                             {"rate_per_s", seconds > 0 ? static_cast<double>(stats.count) / seconds : 0.0},
                             {"latency_ns", latency_json(stats.latency)}});
            Stats& all = by_reason[key];
            all.count += stats.count;
            all.latency.merge(stats.latency);
        }
    }
    nlohmann::json histogram_reasons = nlohmann::json::object();
    std::size_t buckets = 0;
    for (const auto& [key, stats] : by_reason) {
        exits.push_back({{"reason", exit_reason_name(key.first, key.second)},
                         {"code", key.second},
                         {"isa", isa_name(key.first)},
                         {"vcpu", "all"},
                         {"count", stats.count},
                         {"rate_per_s", seconds > 0 ? static_cast<double>(stats.count) / seconds : 0.0},
                         {"latency_ns", latency_json(stats.latency)}});
        const auto counts = stats.latency.log2_buckets();
        buckets = std::max(buckets, counts.size());
        histogram_reasons[exit_reason_name(key.first, key.second)] = counts;
    }
    nlohmann::json bounds = nlohmann::json::array();
    for (std::size_t b = 0; b < buckets; ++b) {
        bounds.push_back(b == 0 ? 0 : std::int64_t{1} << (b - 1));
    }
    for (auto& [name, counts] : histogram_reasons.items()) {
        while (counts.size() < buckets) {
            counts.push_back(0);
        }
    }
    return {exits, {{"bounds_ns", bounds}, {"reasons", histogram_reasons}}};
}

}  // namespace vmtrace::analysis
