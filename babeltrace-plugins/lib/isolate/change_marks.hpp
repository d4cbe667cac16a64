// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "lib/isolate/flat_map.hpp"

namespace vmtrace::isolate {

// The last two times something changed (a page's mapping, a CPU's thread).
//
// The join asks within() once every event up to t + bound is in, but later
// events may be in too (it checks in batches), so the latest change alone
// could hide an earlier one inside the window: the latest change at or
// before t + bound decides.  When both kept changes are later than that,
// the history is too short to tell and the answer is "yes": an access is
// never declared unambiguous on a guess.
struct ChangeTimes {
    static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();
    std::int64_t last = kNever;
    std::int64_t previous = kNever;

    void add(std::int64_t time) {
        if (time != last) {
            previous = last;
            last = time;
        }
    }

    // Was there a change in [t - bound, t + bound]?
    [[nodiscard]] bool within(std::int64_t t, std::int64_t bound) const {
        const std::int64_t low = t - bound;
        const std::int64_t high = t + bound;
        if (last <= high) {
            return last >= low;
        }
        if (previous <= high) {
            return previous >= low;
        }
        return true;
    }
};

// Change times per key, kept only while they can matter: prune() drops the
// marks older than any access still waiting, so memory follows the rate of
// changes, not the trace length.
class ChangeMarks {
public:
    void mark(std::uint64_t key, std::int64_t time) {
        marks_.try_emplace(key).first->add(time);
        newest_ = std::max(newest_, time);
        filter_[bit(key) / 64] |= std::uint64_t{1} << (bit(key) % 64);
    }

    [[nodiscard]] bool within(std::uint64_t key, std::int64_t t, std::int64_t bound) const {
        if (newest_ < t - bound) {  // nothing changed lately
            return false;
        }
        // Most keys asked about have no mark: one bit says so without a probe.
        if ((filter_[bit(key) / 64] & (std::uint64_t{1} << (bit(key) % 64))) == 0) {
            return false;
        }
        const ChangeTimes* times = marks_.find(key);
        return times != nullptr && times->within(t, bound);
    }

    // Is any mark recent enough to matter for an access at t?
    [[nodiscard]] bool any_since(std::int64_t time) const { return newest_ >= time; }

    void prune(std::int64_t before) {
        marks_.erase_if([before](std::uint64_t, const ChangeTimes& times) { return times.last < before; });
        filter_.fill(0);
        marks_.for_each([this](std::uint64_t key, const ChangeTimes&) {
            filter_[bit(key) / 64] |= std::uint64_t{1} << (bit(key) % 64);
        });
    }

    [[nodiscard]] std::size_t size() const { return marks_.size(); }
    [[nodiscard]] std::size_t memory_bytes() const { return marks_.memory_bytes(); }

private:
    static constexpr std::size_t kFilterBits = 16384;
    static std::size_t bit(std::uint64_t key) {
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 50);  // 14 bits
    }

    FlatMap<ChangeTimes> marks_;
    std::array<std::uint64_t, kFilterBits / 64> filter_{};  // a bit per hash of every key in marks_
    std::int64_t newest_ = ChangeTimes::kNever;
};

}  // namespace vmtrace::isolate
