// SPDX-License-Identifier: MIT
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "lib/sync/clock_estimator.hpp"

namespace vmtrace::clocksync {

// The clock estimators the sync filter can use, by the name its
// `estimator` parameter takes (the way trace-cmd keeps a table of its
// time-sync protocols).  A new method (KVM's TSC offset and scaling, the
// memory tracer's handshake) is one more row here and nothing else.
struct EstimatorMethod {
    std::string_view name;
    std::string_view description;
    std::unique_ptr<ClockEstimator> (*create)();
};

inline constexpr std::string_view kDefaultEstimator = "convex-hull";

[[nodiscard]] std::span<const EstimatorMethod> estimator_methods();

// The method named `name`, or nullptr.
[[nodiscard]] const EstimatorMethod* find_estimator_method(std::string_view name);

// "a, b, c": the names, for messages that list the choices.
[[nodiscard]] std::string estimator_method_names();

}  // namespace vmtrace::clocksync
