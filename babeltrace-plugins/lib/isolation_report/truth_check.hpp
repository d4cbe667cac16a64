// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/isolate/attribution.hpp"
#include "lib/scenario/memory_truth.hpp"

namespace vmtrace::isolate {

// Compares the join's answers with the memory ground truth the scenario
// simulator writes (lib/scenario/memory_truth.hpp): the k-th access the
// filter hands out is the k-th record the tracer wrote.  An access the
// join marks ambiguous or before-map is counted apart; every other one
// must match in VM, attribution, process, thread, GPA and GVA.  Also
// measures the error of the synchronised times against the true times.
class TruthCheck {
public:
    // Throws std::runtime_error naming the file when it cannot be read or
    // is not a memory ground truth.
    explicit TruthCheck(const std::string& path);
    ~TruthCheck();
    TruthCheck(const TruthCheck&) = delete;
    TruthCheck& operator=(const TruthCheck&) = delete;

    // `vm_name` is the name of result.vm's guest trace ("" for none).
    void check(const Access& access, const Result& result, const std::string& vm_name);
    // The comparison so far; `bound_ns` is the sync bound the memory
    // trace's times were placed within.
    [[nodiscard]] nlohmann::ordered_json to_json(std::int64_t bound_ns) const;
    [[nodiscard]] std::uint64_t mismatched() const { return mismatched_; }
    // Records of the truth the filter did not hand out (fewer accesses came
    // than the tracer wrote): counted at the end.
    [[nodiscard]] std::uint64_t missing();

private:
    bool next_written(scenario::MemoryTruthRecord& record);

    std::string path_;
    std::FILE* file_ = nullptr;
    std::int64_t host_origin_ns_ = 0;
    std::vector<std::string> names_;
    std::uint64_t compared_ = 0;
    std::uint64_t exact_ = 0;
    std::uint64_t mismatched_ = 0;
    std::uint64_t ambiguous_ = 0;
    std::uint64_t before_map_ = 0;
    std::uint64_t untraced_ = 0;
    std::uint64_t host_untraced_ = 0;
    std::uint64_t before_map_agrees_ = 0;
    std::uint64_t lost_skipped_ = 0;
    std::uint64_t extra_ = 0;                         // accesses beyond the truth's records
    std::map<std::string, std::uint64_t> confusion_;  // "truth -> joined" for mismatches
    std::vector<std::string> examples_;
    std::int64_t max_time_error_ = 0;
    std::vector<std::uint32_t> time_errors_;  // sampled, for percentiles
};

}  // namespace vmtrace::isolate
