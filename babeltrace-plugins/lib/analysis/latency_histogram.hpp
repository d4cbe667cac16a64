// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <vector>

namespace vmtrace::analysis {

// Log-linear histogram of non-negative durations (HdrHistogram's idea):
// values below 64 have a bucket each, larger ones 64 buckets per power of
// two, so that a percentile is within 1/64 of the exact value while memory
// stays constant.  Count, min, max and sum are exact.
class LatencyHistogram {
public:
    static constexpr unsigned kSubBuckets = 64;

    void add(std::int64_t value);
    void merge(const LatencyHistogram& other);

    [[nodiscard]] std::uint64_t count() const { return count_; }
    [[nodiscard]] std::int64_t min() const { return min_; }
    [[nodiscard]] std::int64_t max() const { return max_; }
    [[nodiscard]] double mean() const;
    // The value below which `q` (0..1] of the samples lie; 0 when empty.
    [[nodiscard]] std::int64_t percentile(double q) const;
    // Counts per power-of-two bucket: [0,1), [1,2), [2,4), [4,8), ...;
    // as many buckets as the largest value needs.
    [[nodiscard]] std::vector<std::uint64_t> log2_buckets() const;

    // Bucket index of `value` and the smallest value of bucket `index`.
    static unsigned index_of(std::int64_t value);
    static std::int64_t lower_bound(unsigned index);

private:
    std::vector<std::uint64_t> buckets_;  // grown on demand
    std::uint64_t count_ = 0;
    std::int64_t min_ = 0;
    std::int64_t max_ = 0;
    __int128 sum_ = 0;
};

}  // namespace vmtrace::analysis
