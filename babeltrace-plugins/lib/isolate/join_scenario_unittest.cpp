// SPDX-License-Identifier: MIT
// The join against the scenario simulator's memory ground truth: every
// simulated event replayed at its true time (a perfect sync: bounds 0),
// every access compared with what the truth says.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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

TEST_P(JoinAgainstTruth, EveryAccessAsTheTruthSays) {
    scenario::ScenarioConfig config;
    config.seed = GetParam();
    config.guests = 3;
    config.duration_ns = 60'000'000;
    config.memory.enabled = true;
    config.memory.mean_remap_ns = 200'000;  // many zaps and moves
    config.memory.mean_munmap_ns = 2'000'000;
    config.memory.mean_exec_ns = 10'000'000;
    std::vector<std::string> names;
    for (unsigned g = 0; g < config.guests; ++g) {
        names.push_back("vmtrace-sim-guest" + std::to_string(g));
    }
    const std::string path = std::filesystem::temp_directory_path() / ("vmtrace-jointruth-" + std::to_string(getpid()));

    Join join;
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
    ASSERT_EQ(join.vm_count(), 3);
    TruthCheck check(path);
    for (const auto& [access, result] : out) {
        check.check(access, result, result.vm >= 0 ? names[static_cast<std::size_t>(result.vm)] : "");
    }
    EXPECT_EQ(check.missing(), 0u);
    std::filesystem::remove(path);
    const auto report = check.to_json(0);
    EXPECT_EQ(check.mismatched(), 0u) << report.dump(2);
    EXPECT_GT(out.size(), 10'000u);
    EXPECT_EQ(join.counters().in, out.size());
    EXPECT_EQ(join.counters().out, out.size());
    std::string contradictions;
    for (std::size_t k = 0; k < kContradictionCount; ++k) {
        const auto kind = static_cast<Contradiction>(k);
        if (join.contradictions().count(kind) != 0) {
            contradictions += std::string(to_string(kind)) + ": " + join.contradictions().first_example(kind) + "\n";
        }
    }
    // The simulator emits a few host page installs 1 ns after the access
    // that follows them (planned per window, then released in time order):
    // counted, applied, harmless here.
    const std::uint64_t backwards = join.contradictions().count(Contradiction::time_backwards);
    EXPECT_LE(backwards, 10u) << contradictions;
    EXPECT_EQ(join.contradictions().total() - backwards, 0u) << contradictions;
    // With bounds 0 only a change at the access's very nanosecond is ambiguous.
    const std::uint64_t ambiguous = join.counters().by_attribution[static_cast<std::size_t>(Attribution::ambiguous)];
    EXPECT_LT(ambiguous, out.size() / 100) << report.dump(2);
}

INSTANTIATE_TEST_SUITE_P(Seeds, JoinAgainstTruth, ::testing::Values(1, 7, 23));

}  // namespace
}  // namespace vmtrace::isolate
