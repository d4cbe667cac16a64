// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "linear_transform.hpp"
#include "sync_quality.hpp"

namespace vmtrace::clocksync {

// A guest->host clock estimator: fed with one-way messages whose send and
// receive times are known on both sides, it yields the transform that maps
// guest time to host time.  Every estimator method (the convex hull over
// vmsync handshakes; later the exact one from KVM's TSC offset and scaling)
// implements this interface so the sync filter stays the same.
//
// A count an estimator keeps per direction (the convex hull's vertices),
// reported under `name` in the statistics and as "<label> G+H <unit>" in
// the summary.
struct EstimatorFigure {
    std::string name;
    std::string label;
    std::string unit;
    std::uint64_t guest_to_host = 0;
    std::uint64_t host_to_guest = 0;
};

// What an estimator tells the report about its work.  Every method fills
// the same struct, so the sync filter reports any method without knowing
// which one it is.
struct EstimatorReport {
    std::string_view method;
    SyncQuality quality = SyncQuality::absent;
    LinearTransform transform;
    // The largest error bound over the range the messages cover: the
    // accuracy of the final transform; negative when no bound is known.
    std::int64_t accuracy_ns = -1;
    std::uint64_t rejected = 0;
    std::vector<EstimatorFigure> figures;
};

// All times are nanoseconds from each clock's origin.
class ClockEstimator {
public:
    virtual ~ClockEstimator() = default;

    [[nodiscard]] virtual std::string_view method() const = 0;

    // A message the guest sent at guest time `guest_sent`, which the host
    // received at host time `host_received`.  False when the estimator
    // rejected it as inconsistent with the messages it kept.
    virtual bool add_guest_to_host(std::int64_t guest_sent, std::int64_t host_received) = 0;

    // A message the host sent at host time `host_sent`, which the guest
    // received at guest time `guest_received`.  False when rejected.
    virtual bool add_host_to_guest(std::int64_t host_sent, std::int64_t guest_received) = 0;

    // Messages rejected so far.
    [[nodiscard]] virtual std::uint64_t rejected() const = 0;

    [[nodiscard]] virtual SyncQuality quality() const = 0;

    // The current best transform; identity while quality() is absent or
    // incomplete.
    [[nodiscard]] virtual const LinearTransform& transform() const = 0;

    // A bound on |transform().apply(x) - true host time of x| given the
    // messages seen so far, in ns; negative when no bound is known.
    [[nodiscard]] virtual std::int64_t bound_at(std::int64_t guest_time) const = 0;

    // Changes whenever transform() changes, so callers can cache results.
    [[nodiscard]] virtual std::uint64_t generation() const = 0;

    [[nodiscard]] virtual EstimatorReport report() const = 0;
};

}  // namespace vmtrace::clocksync
