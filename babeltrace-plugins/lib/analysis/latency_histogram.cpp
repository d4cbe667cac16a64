// SPDX-License-Identifier: MIT
#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace vmtrace::analysis {

namespace {
constexpr unsigned kSubBits = 6;  // log2(kSubBuckets)
}

unsigned LatencyHistogram::index_of(std::int64_t value) {
    const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(value, 0));
    if (v < kSubBuckets) {
        return static_cast<unsigned>(v);
    }
    const unsigned exponent = 63 - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    const unsigned shift = exponent - kSubBits;
    const auto sub = static_cast<unsigned>((v >> shift) & (kSubBuckets - 1));
    return kSubBuckets + shift * kSubBuckets + sub;
}

std::int64_t LatencyHistogram::lower_bound(unsigned index) {
    if (index < kSubBuckets) {
        return index;
    }
    const unsigned shift = (index - kSubBuckets) / kSubBuckets;
    const unsigned sub = (index - kSubBuckets) % kSubBuckets;
    return static_cast<std::int64_t>((static_cast<std::uint64_t>(kSubBuckets + sub)) << shift);
}

void LatencyHistogram::add(std::int64_t value) {
    value = std::max<std::int64_t>(value, 0);
    const unsigned index = index_of(value);
    if (index >= buckets_.size()) {
        buckets_.resize(index + 1, 0);
    }
    ++buckets_[index];
    min_ = count_ == 0 ? value : std::min(min_, value);
    max_ = count_ == 0 ? value : std::max(max_, value);
    ++count_;
    sum_ += value;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
    if (other.count_ == 0) {
        return;
    }
    if (other.buckets_.size() > buckets_.size()) {
        buckets_.resize(other.buckets_.size(), 0);
    }
    for (std::size_t i = 0; i < other.buckets_.size(); ++i) {
        buckets_[i] += other.buckets_[i];
    }
    min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
    max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
    count_ += other.count_;
    sum_ += other.sum_;
}

double LatencyHistogram::mean() const {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
}

std::int64_t LatencyHistogram::percentile(double q) const {
    if (count_ == 0) {
        return 0;
    }
    // the rank of the sample, 1-based, as the nearest-rank method defines it
    const auto rank =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) {
            // the middle of the bucket, never outside what was seen (its
            // width, not the next bucket's bound: past the last bucket,
            // the one of INT64_MAX, that bound does not fit an int64_t)
            const auto low = static_cast<std::uint64_t>(lower_bound(i));
            const std::uint64_t width = i < kSubBuckets ? 1 : std::uint64_t{1} << ((i - kSubBuckets) / kSubBuckets);
            return std::clamp(static_cast<std::int64_t>(low + (width - 1) / 2), min_, max_);
        }
    }
    return max_;
}

std::vector<std::uint64_t> LatencyHistogram::log2_buckets() const {
    std::vector<std::uint64_t> out;
    for (unsigned i = 0; i < buckets_.size(); ++i) {
        if (buckets_[i] == 0) {
            continue;
        }
        const auto low = static_cast<std::uint64_t>(lower_bound(i));
        const unsigned b = low == 0 ? 0 : 1 + (63 - static_cast<unsigned>(std::countl_zero(low)));
        if (b >= out.size()) {
            out.resize(b + 1, 0);
        }
        out[b] += buckets_[i];
    }
    return out;
}

}  // namespace vmtrace::analysis
