// SPDX-License-Identifier: MIT
// The join's hot path: records per second through Join on a seeded
// synthetic workload (4 host CPUs, 3 VMs, 100 k live 4 KiB host mappings
// and some 2 MiB ones, guest processes with private and shared pages,
// accesses in runs within a page, kvm exits, guest switches and mapping
// churn), bytes per live mapping, and the reverse-index lookup in FlatMap
// against std::unordered_map.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/isolate/flat_map.hpp"
#include "lib/isolate/join.hpp"
#include "lib/isolate/join_replay.hpp"
#include "lib/isolate/scenario_records.hpp"

namespace {

using vmtrace::isolate::Attribution;
using vmtrace::isolate::FlatMap;
using vmtrace::isolate::Join;
using vmtrace::isolate::JoinOptions;
using vmtrace::isolate::Result;
using Record = vmtrace::isolate::bench::Record;
using Op = Record::Op;

constexpr unsigned kCpus = 4;
constexpr unsigned kVms = 3;
constexpr unsigned kVcpus = 2;
constexpr unsigned kProcesses = 20;       // per VM
constexpr std::uint64_t kPrivate = 1000;  // private pages per process
constexpr std::uint64_t kShared = 200;    // library pages every process of a VM maps
constexpr std::uint64_t kSharedGfn = 30'000;
constexpr std::uint64_t kGfns = 33'334;  // 4 KiB host mappings per VM: 100 k in all
constexpr std::uint64_t kHuge = 16;      // 2 MiB host mappings per VM
constexpr std::uint64_t kHugeGfn = 0x100000;
constexpr std::uint64_t kPage = 4096;
constexpr std::int64_t kMemoryBound = 2'500;  // the tracer's sync bound (DESIGN.md: median bracket 2.5 us)
constexpr std::int64_t kGuestBound = 5'000;
constexpr std::int64_t kStep = 10;  // ns between accesses: ~25 M records/s for the machine, 4 CPUs

std::int32_t vm_pid(unsigned v) {
    return static_cast<std::int32_t>(3000 + 100 * v);
}
std::int32_t pid_of(unsigned p) {
    return static_cast<std::int32_t>(1000 + p);
}

const char* comm_of(unsigned p) {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (unsigned i = 0; i < kProcesses; ++i) {
            n.push_back("proc" + std::to_string(i));
        }
        return n;
    }();
    return names[p].c_str();
}

struct Workload {
    std::vector<Record> setup;  // statedump and the live mappings: fed before the clock runs
    std::vector<Record> replay;
    std::size_t accesses = 0;
};

// reuse: the share of runs that go back to one of the CPU's last 64 pages.
Workload make_synthetic(std::uint64_t seed, std::size_t accesses, double reuse) {
    std::mt19937_64 rng(seed);
    const auto below = [&](std::uint64_t n) { return rng() % n; };
    const auto unit = [&] { return std::uniform_real_distribution<double>(0, 1)(rng); };
    const auto exp_ns = [&](double mean) {
        return static_cast<std::int64_t>(std::exponential_distribution<>(1.0 / mean)(rng)) + 1;
    };
    Workload w;
    std::int64_t t = 1;
    const auto add = [&](std::vector<Record>& to, Record r) {
        r.t = t;
        to.push_back(r);
    };

    // Host pages: a shuffled pool, the tail kept for remaps.
    std::vector<std::uint64_t> pool(kVms * kGfns + 50'000);
    std::iota(pool.begin(), pool.end(), std::uint64_t{0x100000});
    std::shuffle(pool.begin(), pool.end(), rng);
    std::size_t next_free = 0;
    std::vector<std::vector<std::uint64_t>> pfn(kVms, std::vector<std::uint64_t>(kGfns));
    for (unsigned v = 0; v < kVms; ++v) {
        for (unsigned k = 0; k < kVcpus; ++k) {
            add(w.setup,
                {.op = Op::vcpu_thread, .cpu = k, .x = vm_pid(v), .y = vm_pid(v) + 1 + static_cast<std::int32_t>(k)});
        }
        for (std::uint64_t gfn = 0; gfn < kGfns; ++gfn) {
            pfn[v][gfn] = pool[next_free++];
            add(w.setup, {.op = Op::tdp, .a = 0, .b = 1, .c = 1, .x = vm_pid(v), .u = gfn, .v = pfn[v][gfn]});
        }
        for (std::uint64_t h = 0; h < kHuge; ++h) {
            add(w.setup, {.op = Op::tdp,
                          .a = 0,
                          .b = 2,
                          .c = 1,
                          .x = vm_pid(v),
                          .u = kHugeGfn + 512 * h,
                          .v = 0x4000000 + (v * kHuge + h) * 512});
        }
        for (unsigned p = 0; p < kProcesses; ++p) {
            add(w.setup, {.op = Op::guest_thread,
                          .x = static_cast<std::int32_t>(v),
                          .y = pid_of(p),
                          .z = pid_of(p),
                          .comm = comm_of(p)});
            for (std::uint64_t i = 0; i < kPrivate; ++i) {
                add(w.setup, {.op = Op::mm_map,
                              .x = static_cast<std::int32_t>(v),
                              .y = pid_of(p),
                              .z = pid_of(p),
                              .u = 0x400000 + i * kPage,
                              .v = (p * kPrivate + i) * kPage});
            }
            for (std::uint64_t j = 0; j < kShared; ++j) {
                add(w.setup, {.op = Op::mm_map,
                              .x = static_cast<std::int32_t>(v),
                              .y = pid_of(p),
                              .z = pid_of(p),
                              .u = 0x7f0000000000 + j * kPage,
                              .v = (kSharedGfn + j) * kPage});
            }
        }
    }
    // CPU c runs vCPU c / 3 of VM c % 3, in guest mode.
    struct Cpu {
        unsigned vm, vcpu;
        bool guest_mode = true;
        std::int64_t next = 0;  // the next exit (guest mode) or entry (host mode)
    };
    std::vector<Cpu> cpus;
    std::vector<std::vector<unsigned>> running(kVms, std::vector<unsigned>(kVcpus));
    for (unsigned c = 0; c < kCpus; ++c) {
        Cpu cpu{c % kVms, c / kVms};
        ++t;
        add(w.setup, {.op = Op::host_switch, .cpu = c, .x = vm_pid(cpu.vm) + 1 + static_cast<std::int32_t>(cpu.vcpu)});
        const unsigned p = static_cast<unsigned>(below(kProcesses));
        running[cpu.vm][cpu.vcpu] = p;
        add(w.setup, {.op = Op::guest_switch,
                      .cpu = cpu.vcpu,
                      .x = static_cast<std::int32_t>(cpu.vm),
                      .y = pid_of(p),
                      .comm = comm_of(p)});
        add(w.setup, {.op = Op::kvm_entry, .cpu = c});
        cpu.next = 1'000'000 + exp_ns(100'000);
        cpus.push_back(cpu);
    }

    t = 1'000'000;
    std::vector<std::int64_t> next_switch(kVms * kVcpus);
    for (auto& s : next_switch) {
        s = t + exp_ns(500'000);
    }
    std::int64_t next_host_churn = t + exp_ns(20'000);
    std::int64_t next_guest_churn = t + exp_ns(10'000);
    constexpr std::size_t kWorkingSet = 64;
    constexpr std::uint64_t kRaw = std::uint64_t{1} << 62;
    std::vector<std::vector<std::uint64_t>> working_sets(kCpus);
    const auto remember = [&](std::vector<std::uint64_t>& hot, std::uint64_t pick) {
        if (hot.size() < kWorkingSet) {
            hot.push_back(pick);
        } else {
            hot[below(kWorkingSet)] = pick;
        }
    };
    while (w.accesses < accesses) {
        for (unsigned c = 0; c < kCpus; ++c) {
            Cpu& cpu = cpus[c];
            if (t >= cpu.next) {
                add(w.replay, {.op = cpu.guest_mode ? Op::kvm_exit : Op::kvm_entry, .cpu = c});
                working_sets[c].clear();
                cpu.guest_mode = !cpu.guest_mode;
                cpu.next = t + (cpu.guest_mode ? exp_ns(100'000) : exp_ns(2'000));
            }
        }
        for (unsigned s = 0; s < next_switch.size(); ++s) {
            if (t >= next_switch[s]) {
                const unsigned p = static_cast<unsigned>(below(kProcesses));
                running[s / kVcpus][s % kVcpus] = p;
                for (unsigned c = 0; c < kCpus; ++c) {
                    if (cpus[c].vm == s / kVcpus && cpus[c].vcpu == s % kVcpus) {
                        working_sets[c].clear();
                    }
                }
                add(w.replay, {.op = Op::guest_switch,
                               .cpu = s % kVcpus,
                               .x = static_cast<std::int32_t>(s / kVcpus),
                               .y = pid_of(p),
                               .comm = comm_of(p)});
                next_switch[s] = t + exp_ns(500'000);
            }
        }
        if (t >= next_host_churn) {  // the host moves a guest page (compaction, NUMA balancing)
            const unsigned v = static_cast<unsigned>(below(kVms));
            const std::uint64_t gfn = below(kGfns);
            const std::uint64_t moved = pool[next_free];
            pool[next_free] = pfn[v][gfn];
            next_free = next_free + 1 < pool.size() ? next_free + 1 : kVms * kGfns;
            add(w.replay,
                {.op = Op::tdp, .a = 0, .b = 1, .c = 2, .x = vm_pid(v), .u = gfn, .v = moved, .w = pfn[v][gfn]});
            pfn[v][gfn] = moved;
            next_host_churn = t + exp_ns(20'000);
        }
        if (t >= next_guest_churn) {  // a process unmaps a heap page and faults it in again
            const unsigned v = static_cast<unsigned>(below(kVms));
            const unsigned p = static_cast<unsigned>(below(kProcesses));
            const std::uint64_t i = below(kPrivate);
            add(w.replay, {.op = Op::mm_unmap,
                           .a = 0,
                           .x = static_cast<std::int32_t>(v),
                           .z = pid_of(p),
                           .u = 0x400000 + i * kPage,
                           .v = 0x400000 + (i + 1) * kPage});
            add(w.replay, {.op = Op::mm_map,
                           .x = static_cast<std::int32_t>(v),
                           .y = pid_of(p),
                           .z = pid_of(p),
                           .u = 0x400000 + i * kPage,
                           .v = (p * kPrivate + i) * kPage});
            next_guest_churn = t + exp_ns(10'000);
        }

        // A run of accesses within one page on one CPU: a page of the CPU's
        // recent working set, or (1 - reuse) of the time a new one.
        const unsigned c = static_cast<unsigned>(below(kCpus));
        const Cpu& cpu = cpus[c];
        std::uint64_t page = 0;
        const double roll = unit();
        // The working set holds guest frames of the CPU's VM (resolved now:
        // the host may have moved them) or, above kRaw, host pages; it is
        // forgotten when the CPU changes mode or guest thread.
        std::vector<std::uint64_t>& hot = working_sets[c];
        if (unit() < reuse && hot.size() == kWorkingSet) {
            const std::uint64_t pick = hot[below(kWorkingSet)];
            page = pick >= kRaw ? pick - kRaw : pfn[cpu.vm][pick];
        } else if (cpu.guest_mode) {
            const unsigned p = running[cpu.vm][cpu.vcpu];
            std::uint64_t pick = 0;
            if (roll < 0.7) {
                pick = p * kPrivate + below(kPrivate);
            } else if (roll < 0.9) {
                pick = kSharedGfn + below(kShared);
            } else if (roll < 0.96) {
                pick = kProcesses * kPrivate + below(kSharedGfn - kProcesses * kPrivate);  // kernel
            } else if (roll < 0.97) {
                pick = below(kProcesses * kPrivate);  // another process's page (copy_to_user)
            } else {
                pick = kRaw + 0x4000000 + (cpu.vm * kHuge + below(kHuge)) * 512 + below(512);
            }
            page = pick >= kRaw ? pick - kRaw : pfn[cpu.vm][pick];
            remember(hot, pick);
        } else {
            // device emulation into the VM's RAM, or host memory
            const std::uint64_t pick = roll < 0.5 ? below(kGfns) : kRaw + 0x10000 + below(0x10000);
            page = pick >= kRaw ? pick - kRaw : pfn[cpu.vm][pick];
            remember(hot, pick);
        }
        const std::uint64_t run = 1 + below(16);
        for (std::uint64_t k = 0; k < run; ++k) {
            const auto kind = static_cast<std::uint8_t>(below(3));
            add(w.replay, {.op = Op::access, .a = 8, .b = kind, .cpu = c, .u = page * kPage + below(512) * 8});
            ++w.accesses;
            t += kStep;
        }
    }
    return w;
}

const Workload& synthetic(bool locality) {
    static const Workload with = make_synthetic(1, 4'000'000, 0.9);
    static const Workload without = make_synthetic(1, 4'000'000, 0.0);
    return locality ? with : without;
}

// Replays a workload: the setup untimed, the replay timed.  Reports
// records/s (items: memory accesses; the events between them are in the
// time too), bytes per live mapping (the join's heap at the end of the
// run, mallinfo2, over the mappings then live; the containers' own count
// beside it), and the share of each attribution.
void replay(benchmark::State& state, const Workload& w, JoinOptions options, std::int64_t guest_bound) {
    std::uint64_t heap = 0;
    std::uint64_t live = 0;
    std::uint64_t estimate = 0;
    std::array<std::uint64_t, vmtrace::isolate::kAttributionCount> by{};
    for (auto _ : state) {
        state.PauseTiming();
        const std::size_t before = mallinfo2().uordblks;
        auto join = std::make_unique<Join>(options);
        for (const Record& r : w.setup) {
            vmtrace::isolate::bench::feed(*join, r);
        }
        for (int v = 0; v < join->vm_count(); ++v) {
            join->bind_guest(v, guest_bound);
        }
        std::uint64_t sink = 0;
        const auto take = [&sink](const vmtrace::isolate::Access&, const Result& r) {
            sink += static_cast<std::uint64_t>(r.attribution) + r.gpa;
        };
        state.ResumeTiming();
        std::size_t n = 0;
        for (const Record& r : w.replay) {
            vmtrace::isolate::bench::feed(*join, r);
            if ((++n & 255) == 0) {
                join->drain(take);
            }
        }
        join->flush();
        join->drain(take);
        benchmark::DoNotOptimize(sink);
        state.PauseTiming();
        // Measured at the end: a simulation maps its pages on first touch.
        heap = mallinfo2().uordblks - before;
        const auto sizes = join->sizes();
        live = std::max<std::size_t>(sizes.host_mappings + sizes.guest_mappings, 1);
        estimate = sizes.memory_bytes;
        by = join->counters().by_attribution;
        if (join->counters().in != join->counters().out) {
            state.SkipWithError("records in != records out");
        }
        join.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * w.accesses));
    state.counters["live_mappings"] = static_cast<double>(live);
    state.counters["events_per_access"] =
        static_cast<double>(w.setup.size() + w.replay.size() - w.accesses) / static_cast<double>(w.accesses);
    state.counters["bytes_per_live_mapping"] = static_cast<double>(heap) / static_cast<double>(live);
    state.counters["estimate_bytes_per_mapping"] = static_cast<double>(estimate) / static_cast<double>(live);
    const double total = static_cast<double>(std::accumulate(by.begin(), by.end(), std::uint64_t{0}));
    for (std::size_t a = 0; a < by.size(); ++a) {
        state.counters[std::string(to_string(static_cast<Attribution>(a)))] = static_cast<double>(by[a]) / total;
    }
}

// Arg 1: 9 runs in 10 go back to the CPU's working set (caches warm, as
// real code); arg 0: every run picks a new page among the 170 k mapped
// (every lookup a cache miss: the worst case).
void BM_JoinSynthetic(benchmark::State& state) {
    replay(state, synthetic(state.range(0) != 0), JoinOptions{.memory_bound_ns = kMemoryBound}, kGuestBound);
}
BENCHMARK(BM_JoinSynthetic)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

// A recorded simulation (source.vmtrace.scenario's memory side, 3 guests,
// 300 ms) replayed at its true times: the statedumps before the first
// access are the untimed setup.  Its live mappings are those of a
// simulated run (fewer than the synthetic workload's).
const Workload& simulation() {
    static const Workload w = [] {
        vmtrace::scenario::ScenarioConfig config;
        config.seed = 5;
        config.guests = 3;
        config.duration_ns = 300'000'000;
        config.memory.enabled = true;
        config.memory.accesses_per_us = 1.5;
        Workload recorded;
        vmtrace::scenario::MemoryScenario sim(config, nullptr, nullptr);
        vmtrace::scenario::SimEvent e;
        while (sim.next(e)) {
            if (const auto r = vmtrace::isolate::bench::to_record(e, config.guests)) {
                const bool access = r->op == Op::access;
                (recorded.accesses == 0 && !access ? recorded.setup : recorded.replay).push_back(*r);
                recorded.accesses += access ? 1 : 0;
            }
        }
        return recorded;
    }();
    return w;
}

void BM_JoinSimulation(benchmark::State& state) {
    replay(state, simulation(), JoinOptions{.memory_bound_ns = kMemoryBound}, kGuestBound);
}
BENCHMARK(BM_JoinSimulation)->Unit(benchmark::kMillisecond);

// The reverse index alone: 100 k host pages, looked up in runs (as the
// accesses do) with one miss in five.  FlatMap against the standard map.
struct Reverse {
    std::int32_t vm;
    std::uint64_t gfn;
};

template <typename Map>
void BM_ReverseLookup(benchmark::State& state) {
    std::mt19937_64 rng(3);
    Map map;
    std::vector<std::uint64_t> keys(100'000);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        keys[i] = 0x100000 + rng() % 4'000'000;
        if constexpr (std::is_same_v<Map, FlatMap<Reverse>>) {
            *map.try_emplace(keys[i]).first = Reverse{1, i};
        } else {
            map[keys[i]] = Reverse{1, i};
        }
    }
    std::vector<std::uint64_t> stream;
    while (stream.size() < 1'000'000) {
        const std::uint64_t key = rng() % 5 == 0 ? 0x100000 + rng() % 4'000'000 : keys[rng() % keys.size()];
        for (std::uint64_t k = 1 + rng() % 16; k > 0; --k) {
            stream.push_back(key);
        }
    }
    for (auto _ : state) {
        std::uint64_t sum = 0;
        for (const std::uint64_t key : stream) {
            if constexpr (std::is_same_v<Map, FlatMap<Reverse>>) {
                const Reverse* r = map.find(key);
                sum += r != nullptr ? r->gfn : 0;
            } else {
                const auto it = map.find(key);
                sum += it != map.end() ? it->second.gfn : 0;
            }
        }
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK_TEMPLATE(BM_ReverseLookup, FlatMap<Reverse>);
BENCHMARK_TEMPLATE(BM_ReverseLookup, std::unordered_map<std::uint64_t, Reverse>);

}  // namespace

BENCHMARK_MAIN();
