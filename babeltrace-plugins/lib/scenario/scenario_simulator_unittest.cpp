// SPDX-License-Identifier: MIT
#include "lib/scenario/scenario_simulator.hpp"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <vector>

namespace vmtrace::scenario {
namespace {

ScenarioConfig small_config(std::uint64_t seed) {
    ScenarioConfig config;
    config.seed = seed;
    config.duration_ns = 500'000'000;
    return config;
}

std::uint64_t digest(ScenarioSimulator& sim, std::uint64_t* count) {
    std::uint64_t hash = 1469598103934665603ULL;
    SimEvent e;
    *count = 0;
    while (sim.next(e)) {
        for (std::uint64_t v :
             {static_cast<std::uint64_t>(e.time), std::uint64_t{e.machine}, std::uint64_t{e.cpu},
              static_cast<std::uint64_t>(e.type), std::uint64_t{e.cnt}, static_cast<std::uint64_t>(e.next_tid)}) {
            hash = (hash ^ v) * 1099511628211ULL;
        }
        ++*count;
    }
    return hash;
}

TEST(ScenarioSimulator, IsDeterministicForASeed) {
    ScenarioSimulator a(small_config(5));
    ScenarioSimulator b(small_config(5));
    ScenarioSimulator c(small_config(6));
    std::uint64_t na = 0;
    std::uint64_t nb = 0;
    std::uint64_t nc = 0;
    const auto ha = digest(a, &na);
    EXPECT_EQ(ha, digest(b, &nb));
    EXPECT_EQ(na, nb);
    EXPECT_GT(na, 10'000u);
    EXPECT_NE(ha, digest(c, &nc));
}

struct Intervals : StateObserver {
    std::map<std::pair<unsigned, unsigned>, std::vector<std::pair<std::int64_t, std::int64_t>>> guest_mode;
    std::map<VcpuState, std::int64_t> totals;
    void on_interval(unsigned guest, unsigned vcpu, VcpuState state, std::int64_t start, std::int64_t end) override {
        ASSERT_LT(start, end);
        totals[state] += end - start;
        if (state == VcpuState::guest) {
            guest_mode[{guest, vcpu}].emplace_back(start, end);
        }
    }
};

TEST(ScenarioSimulator, GuestEventsHappenOnlyInGuestModeAndInTimeOrder) {
    Intervals intervals;
    ScenarioConfig config = small_config(9);
    ScenarioSimulator sim(config, &intervals);
    std::vector<SimEvent> guest_events;
    std::map<EventType, std::uint64_t> counts;
    SimEvent e;
    std::int64_t last = -1;
    while (sim.next(e)) {
        ASSERT_GE(e.time, last);
        last = e.time;
        ++counts[e.type];
        if (e.machine > 0) {
            ASSERT_LT(e.cpu, config.vcpus_per_guest);
            guest_events.push_back(e);
        } else {
            ASSERT_LT(e.cpu, sim.host_cpus());
        }
    }
    for (EventType type : {EventType::sched_switch, EventType::sched_migrate_task, EventType::kvm_entry,
                           EventType::kvm_exit, EventType::vmsync_gh_guest, EventType::vmsync_hg_guest,
                           EventType::vmsync_gh_host, EventType::vmsync_hg_host}) {
        EXPECT_GT(counts[type], 0u) << static_cast<int>(type);
    }
    for (const SimEvent& g : guest_events) {
        const auto& list = intervals.guest_mode[{g.machine - 1, g.cpu}];
        const bool inside = std::any_of(list.begin(), list.end(),
                                        [&](const auto& iv) { return g.time > iv.first && g.time < iv.second; });
        ASSERT_TRUE(inside) << "guest " << g.machine - 1 << " vcpu " << g.cpu << " t=" << g.time;
    }
    // The four states add up to the duration for every vCPU.
    std::int64_t total = 0;
    for (const auto& [state, ns] : intervals.totals) {
        total += ns;
    }
    EXPECT_EQ(total, config.duration_ns * config.guests * config.vcpus_per_guest);
    EXPECT_GT(intervals.totals[VcpuState::preempted], 0);
    EXPECT_GT(intervals.totals[VcpuState::idle], 0);
}

TEST(ScenarioSimulator, EveryHandshakeHasFourHalvesInCausalOrder) {
    ScenarioSimulator sim(small_config(4));
    std::map<std::pair<std::uint64_t, std::uint32_t>, std::map<EventType, std::int64_t>> halves;
    SimEvent e;
    while (sim.next(e)) {
        if (e.type >= EventType::vmsync_gh_guest && e.type <= EventType::vmsync_hg_host) {
            auto& slot = halves[{e.vm_uid, e.cnt}];
            ASSERT_EQ(slot.count(e.type), 0u) << "cnt repeated";
            slot[e.type] = e.time;
        }
    }
    ASSERT_GT(halves.size(), 100u);
    std::size_t complete = 0;
    for (const auto& [key, h] : halves) {
        if (h.size() < 4) {
            continue;  // the run ended mid-handshake
        }
        ++complete;
        EXPECT_LT(h.at(EventType::vmsync_gh_guest), h.at(EventType::vmsync_gh_host));
        EXPECT_LE(h.at(EventType::vmsync_gh_host), h.at(EventType::vmsync_hg_host));
        EXPECT_LT(h.at(EventType::vmsync_hg_host), h.at(EventType::vmsync_hg_guest));
        EXPECT_GE(h.at(EventType::vmsync_gh_host) - h.at(EventType::vmsync_gh_guest), 1'000);
    }
    EXPECT_GE(complete + 8, halves.size());
}

TEST(ScenarioSimulator, CorruptedCntRepeatsOrSwapsNumbers) {
    for (CntCorruption corruption : {CntCorruption::duplicate, CntCorruption::reorder}) {
        ScenarioConfig config = small_config(2);
        config.cnt_corruption = corruption;
        config.cnt_corruption_every = 10;
        ScenarioSimulator sim(config);
        std::map<std::pair<std::uint64_t, std::uint32_t>, int> seen;
        std::map<std::pair<std::uint64_t, unsigned>, std::uint32_t> last_per_vcpu;
        bool backwards = false;
        SimEvent e;
        while (sim.next(e)) {
            if (e.type == EventType::vmsync_gh_guest) {
                ++seen[{e.vm_uid, e.cnt}];
                auto key = std::make_pair(e.vm_uid, e.cpu);
                if (last_per_vcpu.count(key) != 0 && e.cnt < last_per_vcpu[key]) {
                    backwards = true;
                }
                last_per_vcpu[key] = e.cnt;
            }
        }
        const bool repeated = std::any_of(seen.begin(), seen.end(), [](const auto& s) { return s.second > 1; });
        EXPECT_EQ(repeated, corruption == CntCorruption::duplicate);
        EXPECT_EQ(backwards, corruption == CntCorruption::reorder);
    }
}

TEST(ScenarioConfig, RejectsBadValuesNamingTheParameter) {
    ScenarioConfig config;
    config.vcpus_per_guest = 0;
    try {
        config.validate();
        FAIL() << "accepted 0 vCPUs";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("vcpus"), std::string::npos);
    }
    config = ScenarioConfig{};
    config.guest_drifts_ppm = {1.0};
    EXPECT_THROW(config.validate(), std::invalid_argument);
    EXPECT_THROW(parse_cnt_corruption("sometimes"), std::invalid_argument);
}

TEST(MachineClock, StaysMonotonicForNegativeDrift) {
    const MachineClock clock{0, 1'000, -199'999};
    std::int64_t last = clock.value_at(0);
    for (std::int64_t t = 1; t < 100'000; t += 7) {
        const std::int64_t v = clock.value_at(t);
        ASSERT_GE(v, last);
        last = v;
    }
    EXPECT_EQ(clock.value_at(1'000'000'000), 1'000 + 1'000'000'000 - 199'999);
}

}  // namespace
}  // namespace vmtrace::scenario
