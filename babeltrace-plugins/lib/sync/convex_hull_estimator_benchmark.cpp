// SPDX-License-Identifier: MIT
// Cost of one vmsync handshake in the estimator, and of converting a time.
#include <benchmark/benchmark.h>

#include <random>

#include "lib/sync/convex_hull_estimator.hpp"

namespace {

using vmtrace::clocksync::ConvexHullEstimator;

void BM_AddHandshake(benchmark::State& state) {
    std::mt19937_64 rng(1);
    std::exponential_distribution<double> tail(1.0 / 3000.0);
    for (auto _ : state) {
        ConvexHullEstimator estimator;
        for (std::int64_t i = 0; i < state.range(0); ++i) {
            const std::int64_t t = i * 10'000'000;
            estimator.add_guest_to_host(t, t + 1000 + static_cast<std::int64_t>(tail(rng)));
            estimator.add_host_to_guest(t + 5'000'000, t + 5'001'000 + static_cast<std::int64_t>(tail(rng)));
        }
        benchmark::DoNotOptimize(estimator.transform());
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AddHandshake)->Arg(1'000)->Arg(10'000);

void BM_ApplyAndBound(benchmark::State& state) {
    ConvexHullEstimator estimator;
    std::mt19937_64 rng(2);
    std::exponential_distribution<double> tail(1.0 / 3000.0);
    for (std::int64_t i = 0; i < 6000; ++i) {
        const std::int64_t t = i * 10'000'000;
        estimator.add_guest_to_host(t, t + 1000 + static_cast<std::int64_t>(tail(rng)));
        estimator.add_host_to_guest(t + 5'000'000, t + 5'001'000 + static_cast<std::int64_t>(tail(rng)));
    }
    std::int64_t x = 0;
    for (auto _ : state) {
        x = (x + 7'777'777) % 60'000'000'000;
        benchmark::DoNotOptimize(estimator.transform().apply(x));
        benchmark::DoNotOptimize(estimator.bound_at(x));
    }
}
BENCHMARK(BM_ApplyAndBound);

}  // namespace

BENCHMARK_MAIN();
