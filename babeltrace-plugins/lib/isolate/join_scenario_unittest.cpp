// SPDX-License-Identifier: MIT
// The join against the scenario simulator's memory ground truth: every
// simulated event replayed at its true time (a perfect sync: bounds 0),
// every access compared with what the truth says.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lib/isolate/join.hpp"
#include "lib/isolate/scenario_records.hpp"
#include "lib/isolation_report/truth_check.hpp"
#include "lib/scenario/memory_scenario.hpp"
#include "lib/scenario/memory_truth.hpp"

namespace vmtrace::isolate {
namespace {

class JoinAgainstTruth : public ::testing::TestWithParam<std::uint64_t> {};

// The scenario of the truth tests: 3 guests, many zaps, moves, munmaps and
// execve calls, 60 ms.
scenario::ScenarioConfig truth_scenario(std::uint64_t seed) {
    scenario::ScenarioConfig config;
    config.seed = seed;
    config.guests = 3;
    config.duration_ns = 60'000'000;
    config.memory.enabled = true;
    config.memory.mean_remap_ns = 200'000;  // many zaps and moves
    config.memory.mean_munmap_ns = 2'000'000;
    config.memory.mean_exec_ns = 10'000'000;
    return config;
}

// Replays every simulated event into `join` at its true time (a perfect
// sync), checks every access against the truth and returns the join's
// answers; the truth check's counts are left in `check`'s report.
std::vector<std::pair<Access, Result>> replay_against_truth(const scenario::ScenarioConfig& config, Join& join,
                                                            std::uint64_t& mismatched, std::string& report) {
    std::vector<std::string> names;
    for (unsigned g = 0; g < config.guests; ++g) {
        names.push_back("vmtrace-sim-guest" + std::to_string(g));
    }
    const std::string path = std::filesystem::temp_directory_path() / ("vmtrace-jointruth-" + std::to_string(getpid()));
    std::vector<std::pair<Access, Result>> out;
    const auto take = [&](const Access& a, const Result& r) { out.emplace_back(a, r); };
    {
        scenario::MemoryTruth truth(path, 0, names);
        scenario::MemoryScenario sim(config, nullptr, &truth);
        scenario::SimEvent e;
        while (sim.next(e)) {
            if (const auto record = bench::to_record(e, config.guests)) {
                bench::feed(join, *record);
                join.drain(take);
            }
        }
        join.flush();
        join.drain(take);
        truth.finish(sim.guest_names());
    }
    TruthCheck check(path);
    for (const auto& [access, result] : out) {
        check.check(access, result, result.vm >= 0 ? names[static_cast<std::size_t>(result.vm)] : "");
    }
    EXPECT_EQ(check.missing(), 0u);
    std::filesystem::remove(path);
    mismatched = check.mismatched();
    report = check.to_json(0).dump(2);
    return out;
}

std::string contradictions_of(const Join& join) {
    std::string text;
    for (std::size_t k = 0; k < kContradictionCount; ++k) {
        const auto kind = static_cast<Contradiction>(k);
        if (join.contradictions().count(kind) != 0) {
            text += std::string(to_string(kind)) + ": " + join.contradictions().first_example(kind) + "\n";
        }
    }
    return text;
}

TEST_P(JoinAgainstTruth, EveryAccessAsTheTruthSays) {
    const scenario::ScenarioConfig config = truth_scenario(GetParam());
    Join join;
    std::uint64_t mismatched = 0;
    std::string report;
    const auto out = replay_against_truth(config, join, mismatched, report);
    ASSERT_EQ(join.vm_count(), 3);
    EXPECT_EQ(mismatched, 0u) << report;
    EXPECT_GT(out.size(), 10'000u);
    EXPECT_EQ(join.counters().in, out.size());
    EXPECT_EQ(join.counters().out, out.size());
    const std::string contradictions = contradictions_of(join);
    // The simulator emits a few host page installs 1 ns after the access
    // that follows them (planned per window, then released in time order):
    // counted, applied, harmless here.
    const std::uint64_t backwards = join.contradictions().count(Contradiction::time_backwards);
    EXPECT_LE(backwards, 10u) << contradictions;
    EXPECT_EQ(join.contradictions().total() - backwards, 0u) << contradictions;
    // With bounds 0 only a change at the access's very nanosecond is ambiguous.
    const std::uint64_t ambiguous = join.counters().by_attribution[static_cast<std::size_t>(Attribution::ambiguous)];
    EXPECT_LT(ambiguous, out.size() / 100) << report;
    // The guest kernel pages mapped before tracing have no event.
    EXPECT_GT(join.counters().by_attribution[static_cast<std::size_t>(Attribution::before_map)], 0u);
}

// With the host module's mapping statedump (kvm_tdp_mmu_map op 4 at the
// start for the pages mapped before tracing), those pages are decided:
// no access is before-map any more, and each is as the truth says.
TEST_P(JoinAgainstTruth, StatedumpDecidesThePagesMappedBeforeTracing) {
    scenario::ScenarioConfig config = truth_scenario(GetParam());
    config.memory.statedump = true;
    Join join;
    std::uint64_t mismatched = 0;
    std::string report;
    const auto out = replay_against_truth(config, join, mismatched, report);
    EXPECT_EQ(mismatched, 0u) << report;
    EXPECT_GT(out.size(), 10'000u);
    EXPECT_EQ(join.counters().by_attribution[static_cast<std::size_t>(Attribution::before_map)], 0u) << report;
    const std::string contradictions = contradictions_of(join);
    const std::uint64_t backwards = join.contradictions().count(Contradiction::time_backwards);
    EXPECT_EQ(join.contradictions().total() - backwards, 0u) << contradictions;
}

// Any time of `times` (sorted) within `bound` of `t`.
bool near(const std::vector<std::int64_t>& times, std::int64_t t, std::int64_t bound) {
    const auto it = std::lower_bound(times.begin(), times.end(), t - bound);
    return it != times.end() && *it <= t + bound;
}

// With a memory bound B and guest bounds G, the accesses the join marks
// ambiguous are those the events predict: a change of the access's host
// page or of its CPU's thread or mode within B, or, for an access the
// guest's state answered, a guest thread switch on its vCPU or a change of
// the mappers of its GPA page within B + G.  The prediction is computed
// here from the simulated events and the truth, apart from the join.
TEST_P(JoinAgainstTruth, AmbiguousWhereTheEventsPredict) {
    constexpr std::int64_t kMemoryBound = 1'500;
    constexpr std::int64_t kGuestBound = 700;
    scenario::ScenarioConfig config;
    config.seed = GetParam();
    config.guests = 2;
    config.duration_ns = 40'000'000;
    config.memory.enabled = true;
    config.memory.mean_remap_ns = 100'000;
    config.memory.mean_munmap_ns = 1'000'000;
    config.memory.mean_exec_ns = 5'000'000;
    std::vector<std::string> names;
    for (unsigned g = 0; g < config.guests; ++g) {
        names.push_back("vmtrace-sim-guest" + std::to_string(g));
    }
    const std::string path = std::filesystem::temp_directory_path() / ("vmtrace-joinambig-" + std::to_string(getpid()));

    std::map<std::uint64_t, std::vector<std::int64_t>> page_changes;  // host page
    std::map<std::uint32_t, std::vector<std::int64_t>> cpu_changes;
    std::map<std::pair<int, std::uint32_t>, std::vector<std::int64_t>> vcpu_switches;
    std::map<std::pair<int, std::uint64_t>, std::vector<std::int64_t>> gpa_changes;  // guest, GPA page
    std::map<std::pair<int, std::int32_t>, std::map<std::uint64_t, std::uint64_t>>
        mappings;                                                     // guest, pid: GVA -> GPA page
    std::map<std::uint32_t, std::pair<int, std::uint32_t>> in_guest;  // CPU -> guest, vCPU
    struct Seen {
        std::int64_t time;
        std::uint32_t cpu;
        std::uint64_t hpa;
        int guest = -1;  // the guest whose vCPU runs on the CPU
        std::uint32_t vcpu = 0;
    };
    std::vector<Seen> accesses;
    std::vector<Result> results;

    Join join(JoinOptions{.memory_bound_ns = kMemoryBound});
    bool bound = false;
    const auto take = [&](const Access&, const Result& r) { results.push_back(r); };
    {
        scenario::MemoryTruth truth(path, 0, names);
        scenario::MemoryScenario sim(config, nullptr, &truth);
        scenario::SimEvent e;
        while (sim.next(e)) {
            using scenario::EventType;
            const int guest = static_cast<int>(e.machine) - 1;
            if (e.machine == 0 && e.type == EventType::tdp_mmu_map) {
                const std::uint64_t pages = e.level == 2 ? 512 : 1;
                for (std::uint64_t i = 0; i < pages; ++i) {
                    if (e.op != 3) {
                        page_changes[e.addr2 + i].push_back(e.time);
                    }
                    if (e.op != 1) {
                        page_changes[e.addr3 + i].push_back(e.time);
                    }
                }
            } else if (e.machine == 0 && (e.type == EventType::sched_switch || e.type == EventType::kvm_entry ||
                                          e.type == EventType::kvm_exit)) {
                cpu_changes[e.cpu].push_back(e.time);
                if (e.type == EventType::kvm_entry) {
                    in_guest[e.cpu] = {e.guest, e.vcpu_id};
                } else if (e.type == EventType::kvm_exit) {
                    in_guest.erase(e.cpu);
                }
            } else if (guest >= 0 && e.machine <= config.guests && e.type == EventType::sched_switch) {
                vcpu_switches[{guest, e.cpu}].push_back(e.time);
            } else if (guest >= 0 && e.machine <= config.guests && e.type == EventType::guest_mm_map) {
                auto& map = mappings[{guest, e.pid}];
                const auto old = map.find(e.addr / 4096);
                if (old != map.end()) {
                    gpa_changes[{guest, old->second}].push_back(e.time);
                }
                map[e.addr / 4096] = e.addr2 / 4096;
                gpa_changes[{guest, e.addr2 / 4096}].push_back(e.time);
            } else if (guest >= 0 && e.machine <= config.guests && e.type == EventType::guest_mm_unmap) {
                auto& map = mappings[{guest, e.pid}];
                for (auto it = map.begin(); it != map.end();) {
                    if (e.op != 0 || (it->first * 4096 >= e.addr && it->first * 4096 < e.addr2)) {
                        gpa_changes[{guest, it->second}].push_back(e.time);
                        it = map.erase(it);
                    } else {
                        ++it;
                    }
                }
            } else if (e.type == EventType::mem_access) {
                Seen seen{e.time, e.count, e.addr};
                if (const auto g = in_guest.find(e.count); g != in_guest.end()) {
                    seen.guest = g->second.first;
                    seen.vcpu = g->second.second;
                }
                accesses.push_back(seen);
                if (!bound) {
                    for (int vm = 0; vm < join.vm_count(); ++vm) {
                        join.bind_guest(vm, kGuestBound);
                    }
                    bound = true;
                }
            }
            if (const auto record = bench::to_record(e, config.guests)) {
                bench::feed(join, *record);
                join.drain(take);
            }
        }
        join.flush();
        join.drain(take);
        truth.finish(sim.guest_names());
    }
    ASSERT_EQ(results.size(), accesses.size());
    std::vector<scenario::MemoryTruthRecord> truth;
    {
        std::FILE* f = std::fopen(path.c_str(), "rb");
        ASSERT_NE(f, nullptr);
        char header[8 + 8 + 8 + 4];
        ASSERT_EQ(std::fread(header, sizeof header, 1, f), 1u);
        for (unsigned g = 0; g < config.guests; ++g) {
            std::uint16_t length = 0;
            ASSERT_EQ(std::fread(&length, sizeof length, 1, f), 1u);
            ASSERT_EQ(std::fseek(f, length, SEEK_CUR), 0);
        }
        scenario::MemoryTruthRecord r;
        while (std::fread(&r, sizeof r, 1, f) == 1) {
            truth.push_back(r);
        }
        std::fclose(f);
    }
    std::filesystem::remove(path);
    ASSERT_EQ(truth.size(), accesses.size());
    std::uint64_t predicted = 0;
    std::uint64_t joined = 0;
    std::uint64_t both = 0;
    for (std::size_t k = 0; k < accesses.size(); ++k) {
        const Seen& a = accesses[k];
        const auto attribution = static_cast<scenario::TrueAttribution>(truth[k].attribution);
        const std::int32_t truth_vm = truth[k].vm;
        const std::uint64_t gpa = truth[k].gpa;
        using scenario::TrueAttribution;
        const bool guest_answer = a.guest >= 0 && (truth_vm == a.guest || attribution == TrueAttribution::before_map);
        const bool read_gpa = attribution == TrueAttribution::guest || attribution == TrueAttribution::guest_kernel ||
                              attribution == TrueAttribution::shared_other;
        bool p =
            near(page_changes[a.hpa / 4096], a.time, kMemoryBound) || near(cpu_changes[a.cpu], a.time, kMemoryBound);
        if (!p && guest_answer) {
            p = near(vcpu_switches[{a.guest, a.vcpu}], a.time, kMemoryBound + kGuestBound) ||
                (read_gpa && near(gpa_changes[{a.guest, gpa / 4096}], a.time, kMemoryBound + kGuestBound));
        }
        const bool j = results[k].attribution == Attribution::ambiguous;
        predicted += p ? 1 : 0;
        joined += j ? 1 : 0;
        both += p && j ? 1 : 0;
    }
    // Some accesses are ambiguous at these bounds (13 % here), and the join
    // marks exactly those (measured: the same 7369, 7032 and 7030 accesses
    // for the three seeds).
    EXPECT_GT(predicted, accesses.size() / 100);
    EXPECT_EQ(both, predicted) << "joined " << joined;
    EXPECT_EQ(both, joined) << "predicted " << predicted;
}

INSTANTIATE_TEST_SUITE_P(Seeds, JoinAgainstTruth, ::testing::Values(1, 7, 23));

}  // namespace
}  // namespace vmtrace::isolate
