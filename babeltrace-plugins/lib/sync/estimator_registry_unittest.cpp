// SPDX-License-Identifier: MIT
#include "lib/sync/estimator_registry.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace vmtrace::clocksync {
namespace {

TEST(EstimatorRegistry, DefaultIsTheConvexHull) {
    const EstimatorMethod* method = find_estimator_method(kDefaultEstimator);
    ASSERT_NE(method, nullptr);
    EXPECT_EQ(method->create()->method(), "convex-hull");
}

TEST(EstimatorRegistry, EveryMethodCreatesAnEstimatorOfItsName) {
    ASSERT_FALSE(estimator_methods().empty());
    std::set<std::string_view> names;
    for (const EstimatorMethod& method : estimator_methods()) {
        EXPECT_TRUE(names.insert(method.name).second) << method.name << " listed twice";
        EXPECT_FALSE(method.description.empty()) << method.name;
        auto estimator = method.create();
        ASSERT_NE(estimator, nullptr) << method.name;
        EXPECT_EQ(estimator->method(), method.name);
        EXPECT_EQ(find_estimator_method(method.name), &method);
        // A fresh estimator reports itself under its name, with nothing known.
        const EstimatorReport report = estimator->report();
        EXPECT_EQ(report.method, method.name);
        EXPECT_EQ(report.quality, SyncQuality::absent);
        EXPECT_LT(report.accuracy_ns, 0);
        EXPECT_EQ(report.rejected, 0U);
        EXPECT_NE(estimator_method_names().find(std::string(method.name)), std::string::npos);
    }
}

TEST(EstimatorRegistry, UnknownNamesAreNotFound) {
    EXPECT_EQ(find_estimator_method("tsc-offset-typo"), nullptr);
    EXPECT_EQ(find_estimator_method(""), nullptr);
    EXPECT_EQ(find_estimator_method("Convex-Hull"), nullptr);
}

TEST(EstimatorRegistry, TheReportCarriesTheEstimatorsFigures) {
    auto estimator = find_estimator_method("convex-hull")->create();
    // Guest clock = host clock - 1000 ns; one-way delays of 5 and 10 ns.
    for (std::int64_t t = 0; t < 10; ++t) {
        const std::int64_t host = 1'000'000 + t * 100'000;
        estimator->add_guest_to_host(host - 1000 - 5, host);
        estimator->add_host_to_guest(host + 50'000, host + 50'000 - 1000 + 10);
    }
    const EstimatorReport report = estimator->report();
    EXPECT_EQ(report.quality, SyncQuality::accurate);
    EXPECT_GE(report.accuracy_ns, 0);
    EXPECT_LE(report.accuracy_ns, 15);
    EXPECT_EQ(report.transform.apply(0), estimator->transform().apply(0));
    ASSERT_EQ(report.figures.size(), 1U);
    EXPECT_EQ(report.figures[0].name, "hull_sizes");
    EXPECT_GE(report.figures[0].guest_to_host, 2U);
    EXPECT_GE(report.figures[0].host_to_guest, 2U);
}

}  // namespace
}  // namespace vmtrace::clocksync
