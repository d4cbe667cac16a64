// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "clock_estimator.hpp"

namespace vmtrace::clocksync {

// Incremental convex-hull estimator of a linear guest->host transform.
//
// Plot every message in the plane x = guest time, y = host time.  A
// guest->host message (sent at x, received at y) lies *above* the true
// line, because the message arrives after it leaves; a host->guest message
// (sent at y, received at x) lies *below* it.  Every line that separates
// the two sets is a feasible transform.  Only the lower convex hull of the
// "above" set and the upper convex hull of the "below" set can constrain a
// line, so those are all we keep: memory grows with the hull size (a few
// dozen points for hours of trace), not with the number of messages.
//
// Among the feasible lines, the ones of extreme slope pass through one
// vertex of each hull (by LP duality the largest feasible slope is the
// smallest slope from a "below" vertex to an "above" vertex on its right).
// The estimate is the line halfway between the two extremes: it is feasible
// whenever they are, because the feasible set is convex.
//
// The error bound at x: the true line lies below the upper set's hull and
// above the lower set's, and its slope lies between the extreme feasible
// slopes, so from any upper-set vertex it can rise at most as steeply as
// the steepest line towards x (a tighter bound than the hull chains alone,
// and defined before the first and after the last message too).
//
// Example: the guest sends at x=100 and the host receives at y=1105; the
// host sends at y=1200 and the guest receives at x=210.  Then every line of
// slope 1 with offset in [990, 1005] separates them, and a second exchange
// bounds the slope as well.
//
// A message that no feasible line can accommodate together with the ones
// kept so far (a clock step, a mis-recorded timestamp) is rejected and
// counted instead of poisoning the estimate: real recordings have such
// outliers.  The caller decides how many rejections are too many.
//
// All geometry is exact in 128-bit integers.
class ConvexHullEstimator final : public ClockEstimator {
public:
    struct Point {
        std::int64_t x;
        std::int64_t y;
        friend bool operator==(const Point&, const Point&) = default;
    };

    [[nodiscard]] std::string_view method() const override { return "convex-hull"; }
    bool add_guest_to_host(std::int64_t guest_sent, std::int64_t host_received) override;
    bool add_host_to_guest(std::int64_t host_sent, std::int64_t guest_received) override;
    [[nodiscard]] SyncQuality quality() const override { return quality_; }
    [[nodiscard]] const LinearTransform& transform() const override { return transform_; }
    [[nodiscard]] std::int64_t bound_at(std::int64_t guest_time) const override;
    [[nodiscard]] std::uint64_t generation() const override { return generation_; }
    [[nodiscard]] EstimatorReport report() const override;

    // Lower hull of the guest->host points, by increasing x.
    [[nodiscard]] const std::vector<Point>& upper_set_hull() const { return above_hull_; }
    // Upper hull of the host->guest points, by increasing x.
    [[nodiscard]] const std::vector<Point>& lower_set_hull() const { return below_hull_; }
    [[nodiscard]] std::uint64_t guest_to_host_count() const { return above_count_; }
    [[nodiscard]] std::uint64_t host_to_guest_count() const { return below_count_; }
    [[nodiscard]] std::uint64_t rejected() const override { return rejected_; }

    // The largest bound over the range covered by both hulls (the accuracy
    // of the final transform); negative when no bound is known.
    [[nodiscard]] std::int64_t max_bound() const;

private:
    struct Line {
        Point through;
        Int128 dy;  // slope = dy / dx, dx > 0
        Int128 dx;
    };

    // For the bound: the extreme feasible slopes, and for each the hull
    // vertex where a line of that slope touches the hull.
    struct Extremes {
        Line steepest;
        Line flattest;
        std::size_t above_touch_steep = 0;
        std::size_t above_touch_flat = 0;
        std::size_t below_touch_steep = 0;
        std::size_t below_touch_flat = 0;
    };
    void compute_extremes(const Line& steepest, const Line& flattest);

    // Adds `p` to `hull`; undoes it and returns false when no line would
    // separate the sets any more.
    bool add_point(std::vector<Point>& hull, Point p, bool lower);
    void recompute();
    [[nodiscard]] std::optional<Line> max_slope_line() const;
    [[nodiscard]] std::optional<Line> min_slope_line() const;
    [[nodiscard]] bool feasible(const Line& line) const;
    void set_transform(const LinearTransform& transform, SyncQuality quality);

    std::vector<Point> above_hull_;  // guest->host messages: line below them
    std::vector<Point> below_hull_;  // host->guest messages: line above them
    std::uint64_t above_count_ = 0;
    std::uint64_t below_count_ = 0;
    std::uint64_t rejected_ = 0;
    SyncQuality quality_ = SyncQuality::absent;
    LinearTransform transform_;
    std::optional<Extremes> extremes_;  // set when accurate
    std::uint64_t generation_ = 0;
};

// Exposed for tests: add `p` to a hull kept sorted by x.  `lower` selects
// the lower hull (line below the points), else the upper hull.
void add_to_hull(std::vector<ConvexHullEstimator::Point>& hull, ConvexHullEstimator::Point p, bool lower);

}  // namespace vmtrace::clocksync
