// SPDX-License-Identifier: MIT
#include "lib/sync/estimator_registry.hpp"

#include <array>

#include "lib/sync/convex_hull_estimator.hpp"

namespace vmtrace::clocksync {
namespace {

const std::array<EstimatorMethod, 1> kMethods{{
    {"convex-hull", "bounds of a linear transform from the vmsync handshakes in both directions (Duda's convex hull)",
     [] { return std::unique_ptr<ClockEstimator>(std::make_unique<ConvexHullEstimator>()); }},
}};

}  // namespace

std::span<const EstimatorMethod> estimator_methods() {
    return kMethods;
}

const EstimatorMethod* find_estimator_method(std::string_view name) {
    for (const EstimatorMethod& method : kMethods) {
        if (method.name == name) {
            return &method;
        }
    }
    return nullptr;
}

std::string estimator_method_names() {
    std::string names;
    for (const EstimatorMethod& method : kMethods) {
        names += (names.empty() ? "" : ", ") + std::string(method.name);
    }
    return names;
}

}  // namespace vmtrace::clocksync
