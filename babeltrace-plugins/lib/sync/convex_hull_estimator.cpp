// SPDX-License-Identifier: MIT
#include "convex_hull_estimator.hpp"

#include <algorithm>
#include <limits>
#include <optional>

namespace vmtrace::clocksync {
namespace {

using Point = ConvexHullEstimator::Point;

// Slopes are reduced to this fixed denominator before they are combined,
// so that applying a transform never overflows 128 bits even for traces
// of days; 2^-52 of slope error is 0.02 ns over three hours.
constexpr int kSlopeShift = 52;

// While the slope is bounded on one side only, rates that differ by more
// than kMaxRateError / kRateScale (1%: crystals differ by 10-100 ppm) are
// taken for a contradiction rather than a clock.
constexpr Int128 kRateScale = 100;
constexpr Int128 kMaxRateError = 1;

Int128 cross(const Point& o, const Point& a, const Point& b) {
    return static_cast<Int128>(a.x - o.x) * (b.y - o.y) - static_cast<Int128>(a.y - o.y) * (b.x - o.x);
}

// Value of the hull chain at x by linear interpolation, rounded towards
// `round_up` so that the returned interval never shrinks.
std::optional<Int128> chain_at(const std::vector<Point>& hull, std::int64_t x, bool round_up) {
    if (hull.empty() || x < hull.front().x || x > hull.back().x) {
        return std::nullopt;
    }
    auto it =
        std::lower_bound(hull.begin(), hull.end(), x, [](const Point& p, std::int64_t value) { return p.x < value; });
    if (it->x == x) {
        return it->y;
    }
    const Point& right = *it;
    const Point& left = *(it - 1);
    const Int128 num = static_cast<Int128>(x - left.x) * (right.y - left.y);
    const Int128 den = right.x - left.x;
    Int128 q = num / den;
    const Int128 r = num % den;
    if (r != 0 && ((r > 0) == round_up)) {
        q += round_up ? 1 : -1;
    }
    return left.y + q;
}

// floor(num / den) and ceil(num / den) for den > 0.
Int128 floor_div(Int128 num, Int128 den) {
    Int128 q = num / den;
    if (num % den != 0 && num < 0) {
        --q;
    }
    return q;
}
Int128 ceil_div(Int128 num, Int128 den) {
    return -floor_div(-num, den);
}

// Index of the vertex where a line of slope dy/dx touches a convex chain:
// the one minimising (lower hull) or maximising (upper hull) y - slope * x.
std::size_t touch_point(const std::vector<Point>& hull, Int128 dy, Int128 dx, bool lower) {
    std::size_t best = 0;
    Int128 best_value = 0;
    for (std::size_t i = 0; i < hull.size(); ++i) {
        const Int128 value = static_cast<Int128>(hull[i].y) * dx - dy * hull[i].x;
        if (i == 0 || (lower ? value < best_value : value > best_value)) {
            best = i;
            best_value = value;
        }
    }
    return best;
}

}  // namespace

void add_to_hull(std::vector<Point>& hull, Point p, bool lower) {
    // A turn that is not strictly convex in the right direction makes the
    // middle point redundant.
    auto redundant = [lower](const Point& o, const Point& a, const Point& b) {
        const Int128 c = cross(o, a, b);
        return lower ? c <= 0 : c >= 0;
    };
    if (hull.empty() || p.x > hull.back().x) {
        while (hull.size() >= 2 && redundant(hull[hull.size() - 2], hull.back(), p)) {
            hull.pop_back();
        }
        hull.push_back(p);
        return;
    }
    // Out of order or equal x: rebuild from the hull and the new point,
    // which has the same hull as all the points seen.
    std::vector<Point> points = hull;
    points.push_back(p);
    std::sort(points.begin(), points.end(), [lower](const Point& a, const Point& b) {
        if (a.x != b.x) {
            return a.x < b.x;
        }
        return lower ? a.y < b.y : a.y > b.y;
    });
    hull.clear();
    for (const Point& q : points) {
        if (!hull.empty() && hull.back().x == q.x) {
            continue;  // the first of equal x is the binding one
        }
        while (hull.size() >= 2 && redundant(hull[hull.size() - 2], hull.back(), q)) {
            hull.pop_back();
        }
        hull.push_back(q);
    }
}

bool ConvexHullEstimator::add_point(std::vector<Point>& hull, Point p, bool lower) {
    if (!hull.empty() && hull.back().x == p.x && (lower ? p.y >= hull.back().y : p.y <= hull.back().y)) {
        return true;  // no stronger than a point already kept
    }
    const std::vector<Point> saved = hull;  // a few dozen points
    const LinearTransform saved_transform = transform_;
    const SyncQuality saved_quality = quality_;
    add_to_hull(hull, p, lower);
    recompute();
    if (quality_ != SyncQuality::fail) {
        return true;
    }
    hull = saved;
    transform_ = saved_transform;
    quality_ = saved_quality;
    ++rejected_;
    return false;
}

bool ConvexHullEstimator::add_guest_to_host(std::int64_t guest_sent, std::int64_t host_received) {
    ++above_count_;
    return add_point(above_hull_, Point{guest_sent, host_received}, true);
}

bool ConvexHullEstimator::add_host_to_guest(std::int64_t host_sent, std::int64_t guest_received) {
    ++below_count_;
    return add_point(below_hull_, Point{guest_received, host_sent}, false);
}

std::optional<ConvexHullEstimator::Line> ConvexHullEstimator::max_slope_line() const {
    // min over below-vertex b left of above-vertex a of slope(b, a)
    std::optional<Line> best;
    for (const Point& b : below_hull_) {
        for (const Point& a : above_hull_) {
            if (a.x <= b.x) {
                continue;
            }
            const Int128 dy = static_cast<Int128>(a.y) - b.y;
            const Int128 dx = static_cast<Int128>(a.x) - b.x;
            if (!best || dy * best->dx < best->dy * dx) {
                best = Line{b, dy, dx};
            }
        }
    }
    return best;
}

std::optional<ConvexHullEstimator::Line> ConvexHullEstimator::min_slope_line() const {
    // max over above-vertex a left of below-vertex b of slope(a, b)
    std::optional<Line> best;
    for (const Point& a : above_hull_) {
        for (const Point& b : below_hull_) {
            if (b.x <= a.x) {
                continue;
            }
            const Int128 dy = static_cast<Int128>(b.y) - a.y;
            const Int128 dx = static_cast<Int128>(b.x) - a.x;
            if (!best || dy * best->dx > best->dy * dx) {
                best = Line{a, dy, dx};
            }
        }
    }
    return best;
}

bool ConvexHullEstimator::feasible(const Line& line) const {
    // y_line(x) = through.y + (x - through.x) * dy / dx, compared exactly
    auto scaled_line = [&](const Point& p) {
        return static_cast<Int128>(line.through.y) * line.dx + static_cast<Int128>(p.x - line.through.x) * line.dy;
    };
    for (const Point& a : above_hull_) {
        if (scaled_line(a) > static_cast<Int128>(a.y) * line.dx) {
            return false;
        }
    }
    for (const Point& b : below_hull_) {
        if (scaled_line(b) < static_cast<Int128>(b.y) * line.dx) {
            return false;
        }
    }
    return true;
}

void ConvexHullEstimator::set_transform(const LinearTransform& transform, SyncQuality quality) {
    const bool changed = quality != quality_ || transform.x0 != transform_.x0 || transform.y0 != transform_.y0 ||
                         transform.slope_num != transform_.slope_num || transform.slope_den != transform_.slope_den;
    transform_ = transform;
    quality_ = quality;
    if (changed) {
        ++generation_;
    }
}

void ConvexHullEstimator::recompute() {
    extremes_.reset();
    if (above_hull_.empty() && below_hull_.empty()) {
        set_transform(LinearTransform::identity(), SyncQuality::absent);
        return;
    }
    if (above_hull_.empty() || below_hull_.empty()) {
        set_transform(LinearTransform::identity(), SyncQuality::incomplete);
        return;
    }
    const auto hi = max_slope_line();
    const auto lo = min_slope_line();
    if (!hi || !lo) {
        // The slope is bounded on one side at most: take the slope closest
        // to 1 (equal rates) that the bound allows, and the middle of the
        // feasible offsets for it.  Slope 1 alone would refuse consistent
        // messages: a memory tracer's first marks give a host->guest and a
        // guest->host point at the same x, so a second mark bounds the
        // slope on one side only, and a drift of 150 ppm over 10 ms already
        // moves the line by more than the margin the first mark left.
        // A bound that leaves no rate within kMaxRateError of equal rates
        // is a contradiction (a clock running backwards, for one).
        if ((lo && lo->dy * kRateScale > lo->dx * (kRateScale + kMaxRateError)) ||
            (hi && hi->dy * kRateScale < hi->dx * (kRateScale - kMaxRateError))) {
            set_transform(transform_, SyncQuality::fail);
            return;
        }
        Int128 dy = 1;
        Int128 dx = 1;
        if (lo && lo->dy > lo->dx) {
            dy = lo->dy;
            dx = lo->dx;
        } else if (hi && hi->dy < hi->dx) {
            dy = hi->dy;
            dx = hi->dx;
        }
        // Offsets scaled by dx: the line is y * dx = dy * x + offset.
        std::optional<Int128> offset_lo;
        std::optional<Int128> offset_hi;
        for (const Point& b : below_hull_) {
            const Int128 offset = static_cast<Int128>(b.y) * dx - dy * b.x;
            offset_lo = offset_lo ? std::max(*offset_lo, offset) : offset;
        }
        for (const Point& a : above_hull_) {
            const Int128 offset = static_cast<Int128>(a.y) * dx - dy * a.x;
            offset_hi = offset_hi ? std::min(*offset_hi, offset) : offset;
        }
        if (*offset_lo > *offset_hi) {
            set_transform(transform_, SyncQuality::fail);
            return;
        }
        const Point& anchor = above_hull_.front();
        LinearTransform t;
        t.x0 = anchor.x;
        t.y0 = static_cast<std::int64_t>(div_round(dy * anchor.x + div_round(*offset_lo + *offset_hi, 2), dx));
        if (dy != dx) {
            t.slope_num = div_round(dy << (kSlopeShift + 1), dx);
            t.slope_den = static_cast<Int128>(1) << (kSlopeShift + 1);
        }
        set_transform(t, SyncQuality::approximate);
        return;
    }
    if (hi->dy * lo->dx < lo->dy * hi->dx || !feasible(*hi) || !feasible(*lo)) {
        set_transform(transform_, SyncQuality::fail);
        return;
    }
    // Anchor the transform in the middle of the synchronised range so that
    // rounding errors stay symmetric.
    const std::int64_t first_x = std::min(above_hull_.front().x, below_hull_.front().x);
    const std::int64_t last_x = std::max(above_hull_.back().x, below_hull_.back().x);
    LinearTransform t;
    t.x0 = first_x + (last_x - first_x) / 2;
    auto line_at = [&](const Line& line) {
        return line.through.y + div_round(static_cast<Int128>(t.x0 - line.through.x) * line.dy, line.dx);
    };
    t.y0 = static_cast<std::int64_t>(div_round(line_at(*hi) + line_at(*lo), 2));
    const Int128 hi_num = div_round(hi->dy << kSlopeShift, hi->dx);
    const Int128 lo_num = div_round(lo->dy << kSlopeShift, lo->dx);
    t.slope_num = hi_num + lo_num;
    t.slope_den = static_cast<Int128>(2) << kSlopeShift;
    set_transform(t, SyncQuality::accurate);
    compute_extremes(*hi, *lo);
}

void ConvexHullEstimator::compute_extremes(const Line& steepest, const Line& flattest) {
    Extremes e{steepest, flattest};
    e.above_touch_steep = touch_point(above_hull_, steepest.dy, steepest.dx, true);
    e.above_touch_flat = touch_point(above_hull_, flattest.dy, flattest.dx, true);
    e.below_touch_steep = touch_point(below_hull_, steepest.dy, steepest.dx, false);
    e.below_touch_flat = touch_point(below_hull_, flattest.dy, flattest.dx, false);
    extremes_ = e;
}

std::int64_t ConvexHullEstimator::bound_at(std::int64_t guest_time) const {
    if (quality_ != SyncQuality::accurate && quality_ != SyncQuality::approximate) {
        return -1;
    }
    std::optional<Int128> upper = chain_at(above_hull_, guest_time, true);
    std::optional<Int128> lower = chain_at(below_hull_, guest_time, false);
    if (extremes_) {
        const Extremes& e = *extremes_;
        const Int128 x = guest_time;
        // From vertex p, a feasible line reaches x no higher (lower) than
        // the extreme slope allows; along a convex chain the best vertex on
        // each side of x is the touch point, or the vertex nearest to x.
        auto reach = [x](const Point& p, const Line& slope, bool up) {
            const Int128 rise = (x - p.x) * slope.dy;
            return p.y + (up ? ceil_div(rise, slope.dx) : floor_div(rise, slope.dx));
        };
        auto side_vertices = [x](const std::vector<Point>& hull, std::size_t touch_left, std::size_t touch_right) {
            const auto split = static_cast<std::size_t>(
                std::upper_bound(hull.begin(), hull.end(), x, [](Int128 v, const Point& p) { return v < p.x; }) -
                hull.begin());
            std::optional<std::size_t> left;
            std::optional<std::size_t> right;
            if (split > 0) {
                left = std::min(touch_left, split - 1);
            }
            if (split < hull.size()) {
                right = std::max(touch_right, split);
            }
            return std::make_pair(left, right);
        };
        auto take_min = [](std::optional<Int128>& bound, Int128 value) {
            bound = bound ? std::min(*bound, value) : value;
        };
        auto take_max = [](std::optional<Int128>& bound, Int128 value) {
            bound = bound ? std::max(*bound, value) : value;
        };
        const auto [a_left, a_right] = side_vertices(above_hull_, e.above_touch_steep, e.above_touch_flat);
        if (a_left) {
            take_min(upper, reach(above_hull_[*a_left], e.steepest, true));
        }
        if (a_right) {
            take_min(upper, reach(above_hull_[*a_right], e.flattest, true));
        }
        const auto [b_left, b_right] = side_vertices(below_hull_, e.below_touch_flat, e.below_touch_steep);
        if (b_left) {
            take_max(lower, reach(below_hull_[*b_left], e.flattest, false));
        }
        if (b_right) {
            take_max(lower, reach(below_hull_[*b_right], e.steepest, false));
        }
    }
    if (!upper || !lower) {
        return -1;
    }
    const Int128 estimate = transform_.apply(guest_time);
    const Int128 bound = std::max(estimate - *lower, *upper - estimate);
    return bound < 0 ? 0 : static_cast<std::int64_t>(bound);
}

std::int64_t ConvexHullEstimator::max_bound() const {
    if (above_hull_.empty() || below_hull_.empty()) {
        return -1;
    }
    const std::int64_t from = std::max(above_hull_.front().x, below_hull_.front().x);
    const std::int64_t to = std::min(above_hull_.back().x, below_hull_.back().x);
    if (from > to) {
        return -1;
    }
    // The gap between two piecewise-linear chains peaks at a vertex.
    std::int64_t worst = std::max(bound_at(from), bound_at(to));
    for (const auto* hull : {&above_hull_, &below_hull_}) {
        for (const Point& p : *hull) {
            if (p.x >= from && p.x <= to) {
                worst = std::max(worst, bound_at(p.x));
            }
        }
    }
    return worst;
}

EstimatorReport ConvexHullEstimator::report() const {
    EstimatorReport report;
    report.method = method();
    report.quality = quality_;
    report.transform = transform_;
    report.accuracy_ns = max_bound();
    report.rejected = rejected_;
    report.figures.push_back({"hull_sizes", "hull", "points", above_hull_.size(), below_hull_.size()});
    return report;
}

}  // namespace vmtrace::clocksync
