// SPDX-License-Identifier: MIT
#include "placement.hpp"

#include <set>
#include <string>

namespace vmtrace::analysis {

void Placement::arrive(Thread& t, int cpu, std::int64_t now) {
    t.cpu = cpu;
    t.on_cpu_since = now;
}

void Placement::leave(Thread& t, std::int64_t now) {
    if (t.cpu >= 0) {
        t.residency_ns[t.cpu] += now - t.on_cpu_since;
    }
    t.cpu = -1;
}

void Placement::close(Thread& t, std::int64_t end) {
    if (t.cpu >= 0) {
        t.residency_ns[t.cpu] += end - t.on_cpu_since;
        t.on_cpu_since = end;
    }
}

nlohmann::json Placement::residency_json(const Thread& t) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [cpu, ns] : t.residency_ns) {
        out[std::to_string(cpu)] = ns;
    }
    return out;
}

nlohmann::json Placement::vm_table(const std::vector<const Thread*>& threads) {
    std::set<int> pcpu_set;
    for (const Thread* t : threads) {
        for (const auto& [cpu, ns] : t->residency_ns) {
            pcpu_set.insert(cpu);
        }
    }
    const std::vector<int> pcpus(pcpu_set.begin(), pcpu_set.end());
    nlohmann::json residency = nlohmann::json::array();
    for (const Thread* t : threads) {
        nlohmann::json row = nlohmann::json::array();
        for (int cpu : pcpus) {
            const auto found = t->residency_ns.find(cpu);
            row.push_back(found != t->residency_ns.end() ? found->second : 0);
        }
        residency.push_back(row);
    }
    return {{"pcpus", pcpus}, {"residency_ns", residency}};
}

}  // namespace vmtrace::analysis
