// SPDX-License-Identifier: MIT
#include "vcpu_states.hpp"

#include <algorithm>
#include <cmath>

namespace vmtrace::analysis {

VcpuStates::Thread& VcpuStates::thread(std::int64_t tid, std::int64_t begin) {
    return threads_.try_emplace(tid, begin, bins_).first->second;
}

bool VcpuStates::close(Thread& t, std::int64_t now, bool state_ends) {
    if (now <= t.since) {
        return false;
    }
    const auto s = static_cast<unsigned>(t.state);
    t.state_ns[s] += now - t.since;
    if (state_ends) {
        ++t.intervals[s];
    }
    t.timeline.add(t.state, t.since, now);
    return true;
}

void VcpuStates::enter(Thread& t, VcpuState state, std::int64_t now) {
    t.state = state;
    t.since = std::max(t.since, now);
}

nlohmann::json VcpuStates::states_json(const Thread& t) {
    nlohmann::json out;
    for (unsigned s = 0; s < kVcpuStateCount; ++s) {
        out[to_string(static_cast<VcpuState>(s))] = t.state_ns[s];
    }
    return out;
}

nlohmann::json VcpuStates::intervals_json(const Thread& t) {
    nlohmann::json out;
    for (unsigned s = 0; s < kVcpuStateCount; ++s) {
        out[to_string(static_cast<VcpuState>(s))] = t.intervals[s];
    }
    return out;
}

std::int64_t VcpuStates::common_bin_ns() const {
    std::int64_t bin_ns = 1;
    for (const auto& [tid, t] : threads_) {
        bin_ns = std::max(bin_ns, t.timeline.bin_ns());
    }
    return bin_ns;
}

unsigned VcpuStates::bins_over(std::int64_t span_ns, std::int64_t bin_ns) const {
    if (span_ns <= 0) {
        return 0;
    }
    return static_cast<unsigned>(std::min<std::int64_t>(bins_, (span_ns + bin_ns - 1) / bin_ns));
}

nlohmann::json VcpuStates::timeline_table(const std::vector<VcpuTimeline>& vcpus, std::int64_t bin_ns, unsigned bins) {
    nlohmann::json rows = nlohmann::json::array();
    for (const VcpuTimeline& v : vcpus) {
        v.states->timeline.widen_to(bin_ns);
        nlohmann::json row{{"vcpu", v.vcpu}, {"tid", v.tid}};
        for (unsigned s = 0; s < kVcpuStateCount; ++s) {
            nlohmann::json fractions = nlohmann::json::array();
            for (unsigned b = 0; b < bins; ++b) {
                const double f = static_cast<double>(v.states->timeline.time_in(b, static_cast<VcpuState>(s))) /
                                 static_cast<double>(bin_ns);
                fractions.push_back(std::round(f * 1e4) / 1e4);
            }
            row[to_string(static_cast<VcpuState>(s))] = fractions;
        }
        rows.push_back(row);
    }
    return {{"bin_ns", bin_ns}, {"bins", bins}, {"vcpus", rows}};
}

}  // namespace vmtrace::analysis
