// SPDX-License-Identifier: MIT
#include "lib/scenario/memory_scenario.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace vmtrace::scenario {
namespace {

ScenarioConfig memory_config(std::uint64_t seed) {
    ScenarioConfig config;
    config.seed = seed;
    config.guests = 3;
    config.duration_ns = 120'000'000;
    config.memory.enabled = true;
    config.memory.mean_remap_ns = 200'000;  // many zaps and moves
    config.memory.mean_munmap_ns = 2'000'000;
    config.memory.mean_exec_ns = 10'000'000;
    return config;
}

std::vector<MemoryTruthRecord> read_truth(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    EXPECT_NE(f, nullptr);
    char magic[8];
    std::uint32_t header[2];
    EXPECT_EQ(std::fread(magic, 1, 8, f), 8u);
    EXPECT_EQ(std::fread(header, sizeof header, 1, f), 1u);
    EXPECT_EQ(header[1], sizeof(MemoryTruthRecord));
    std::int64_t origin = 0;
    EXPECT_EQ(std::fread(&origin, sizeof origin, 1, f), 1u);
    EXPECT_EQ(origin, 42);
    std::uint32_t guests = 0;
    EXPECT_EQ(std::fread(&guests, sizeof guests, 1, f), 1u);
    for (std::uint32_t g = 0; g < guests; ++g) {
        std::uint16_t length = 0;
        EXPECT_EQ(std::fread(&length, sizeof length, 1, f), 1u);
        std::string name(length, '\0');
        EXPECT_EQ(std::fread(name.data(), 1, length, f), length);
        EXPECT_EQ(name, "vmtrace-sim-guest" + std::to_string(g));
    }
    std::vector<MemoryTruthRecord> records;
    MemoryTruthRecord r;
    while (std::fread(&r, sizeof r, 1, f) == 1) {
        records.push_back(r);
    }
    std::fclose(f);
    return records;
}

// A join written the simplest way, replaying the events in the order the
// scenario gives them: the oracle for the truth the scenario writes.
struct ReferenceJoin {
    struct HostPage {
        std::int32_t vm_pid;
        std::uint64_t gfn;
    };
    std::map<std::uint64_t, HostPage> by_pfn;  // 4 KiB host page -> guest page
    std::map<std::pair<std::int32_t, std::uint64_t>, std::pair<std::uint64_t, unsigned>> by_gfn;  // -> pfn, level
    std::map<std::int32_t, int> guest_of_vm_pid;
    std::map<std::int32_t, std::pair<int, unsigned>> vcpu_of_tid;  // host tid -> guest, vCPU
    std::map<unsigned, std::int32_t> host_tid;                     // per CPU
    std::map<unsigned, std::pair<int, unsigned>> in_guest;         // CPU -> guest, vCPU
    std::map<std::pair<int, unsigned>, std::int32_t> guest_tid;    // guest, vCPU -> tid
    std::map<std::pair<int, std::int32_t>, std::int32_t> pid_of;   // guest, tid -> pid
    std::map<std::pair<int, std::uint64_t>, std::map<std::int32_t, std::uint64_t>>
        owners;  // guest, gpa page -> pid -> gva page

    void map_range(std::int32_t vm_pid, std::uint64_t gfn, std::uint64_t pfn, unsigned level, bool add) {
        const std::uint64_t pages = level == 2 ? 512 : level == 3 ? 512 * 512 : 1;
        for (std::uint64_t i = 0; i < pages; ++i) {
            if (add) {
                by_pfn[pfn + i] = HostPage{vm_pid, gfn + i};
            } else {
                by_pfn.erase(pfn + i);
            }
        }
    }

    void feed(const SimEvent& e, unsigned guests) {
        const int guest = static_cast<int>(e.machine) - 1;
        switch (e.type) {
        case EventType::vm_statedump_vcpu:
            vcpu_of_tid[e.tid] = {guest_of_vm_pid.at(e.pid), e.count};
            break;
        case EventType::vm_statedump_vm: {
            const int index = static_cast<int>(guest_of_vm_pid.size());
            guest_of_vm_pid[e.pid] = index;
            break;
        }
        case EventType::sched_switch:
            if (e.machine == 0) {
                host_tid[e.cpu] = e.next_tid;
            } else if (e.machine <= guests) {
                guest_tid[{guest, e.cpu}] = e.next_tid;
            }
            break;
        case EventType::kvm_entry:
            in_guest[e.cpu] = {e.guest, e.vcpu_id};
            break;
        case EventType::kvm_exit:
            in_guest.erase(e.cpu);
            break;
        case EventType::process_statedump:
            pid_of[{guest, e.tid}] = e.pid;
            break;
        case EventType::tdp_mmu_map: {
            std::int32_t vm_pid = e.pid;
            if (e.op != 1) {
                const std::uint64_t old = e.addr3;
                ASSERT_TRUE(by_pfn.count(old)) << "a change or zap of an unknown host page";
                vm_pid = by_pfn.at(old).vm_pid;
                ASSERT_TRUE(e.pid == 0 || e.pid == vm_pid);
                map_range(vm_pid, e.addr, old, e.level, false);
                by_gfn.erase({vm_pid, e.addr});
            } else {
                ASSERT_FALSE(by_gfn.count({vm_pid, e.addr})) << "an install over a live mapping";
            }
            if (e.op != 3) {
                map_range(vm_pid, e.addr, e.addr2, e.level, true);
                by_gfn[{vm_pid, e.addr}] = {e.addr2, e.level};
            }
            break;
        }
        case EventType::guest_mm_map:
            owners[{guest, e.addr2 / 4096}][e.pid] = e.addr / 4096;
            break;
        case EventType::guest_mm_unmap:
            for (auto it = owners.begin(); it != owners.end();) {
                auto& by_pid = it->second;
                auto owner = by_pid.find(e.pid);
                if (it->first.first == guest && owner != by_pid.end() && owner->second * 4096 >= e.addr &&
                    owner->second * 4096 < e.addr2) {
                    by_pid.erase(owner);
                }
                it = by_pid.empty() ? owners.erase(it) : std::next(it);
            }
            break;
        default:
            break;
        }
    }

    // The attribution of an access: the truth must say the same.
    void check(const SimEvent& e, const MemoryTruthRecord& record) {
        // Values of the packed record's members: gtest binds references.
        const std::uint64_t hpa = record.hpa;
        const std::uint64_t gpa = record.gpa;
        const std::uint64_t gva = record.gva;
        const std::uint32_t cpu = record.cpu;
        const std::int32_t truth_vm = record.vm;
        const std::int32_t truth_pid = record.pid;
        const std::int32_t truth_tid = record.tid;
        const auto attribution = static_cast<TrueAttribution>(record.attribution);
        ASSERT_EQ(hpa, e.addr);
        ASSERT_EQ(cpu, e.count);
        const auto page = by_pfn.find(hpa / 4096);
        const auto guest_mode = in_guest.find(cpu);
        if (page == by_pfn.end()) {
            ASSERT_EQ(attribution, guest_mode == in_guest.end() ? TrueAttribution::host : TrueAttribution::before_map)
                << "hpa " << std::hex << hpa;
            return;
        }
        const int vm = guest_of_vm_pid.at(page->second.vm_pid);
        ASSERT_EQ(truth_vm, vm);
        ASSERT_EQ(gpa, page->second.gfn * 4096 + hpa % 4096);
        if (guest_mode == in_guest.end() || guest_mode->second.first != vm) {
            ASSERT_EQ(attribution, TrueAttribution::host_on_behalf);
            return;
        }
        const std::int32_t tid = guest_tid[{vm, guest_mode->second.second}];
        ASSERT_EQ(truth_tid, tid);
        const std::int32_t pid = tid == 0 ? 0 : pid_of.at({vm, tid});
        ASSERT_EQ(truth_pid, pid);
        const auto mapped = owners.find({vm, page->second.gfn});
        if (mapped == owners.end()) {
            ASSERT_EQ(attribution, TrueAttribution::guest_kernel)
                << "vm " << vm << " gfn " << std::hex << page->second.gfn << std::dec << " pid " << pid;
            return;
        }
        const auto own = mapped->second.find(pid);
        if (own == mapped->second.end()) {
            ASSERT_EQ(attribution, TrueAttribution::shared_other);
            return;
        }
        ASSERT_EQ(attribution, TrueAttribution::guest);
        ASSERT_EQ(gva, own->second * 4096 + hpa % 4096);
    }
};

class MemoryTruthSeeds : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(MemoryTruthSeeds, TruthAgreesWithAJoinOfTheEventsItWrites) {
    const std::string path = std::filesystem::temp_directory_path() / ("vmtrace-memtruth-" + std::to_string(getpid()));
    const ScenarioConfig config = memory_config(GetParam());
    std::map<unsigned, std::int64_t> last_time;
    std::vector<SimEvent> accesses;
    std::map<TrueAttribution, std::uint64_t> seen;
    std::uint64_t events = 0;
    {
        MemoryTruth truth(path, 42, {"vmtrace-sim-guest0", "vmtrace-sim-guest1", "vmtrace-sim-guest2"});
        MemoryScenario sim(config, nullptr, &truth);
        ReferenceJoin join;
        SimEvent e;
        std::int64_t last_tracer = -1;
        while (sim.next(e)) {
            ++events;
            ASSERT_GE(e.time, last_time[e.machine]) << "machine " << e.machine << " goes back";
            last_time[e.machine] = e.time;
            if (e.machine == sim.tracer_machine()) {
                const std::int64_t value = sim.tracer_clock().value_at(e.time);
                ASSERT_GT(value, last_tracer) << "tracer timestamps must be strictly increasing";
                last_tracer = value;
            }
            if (e.type == EventType::mem_access) {
                accesses.push_back(e);
            }
            join.feed(e, config.guests);
            if (::testing::Test::HasFatalFailure()) {
                return;
            }
        }
        truth.finish(sim.guest_names());
        // Replay again, checking each access against the truth in order.
        const auto records = read_truth(path);
        ASSERT_EQ(records.size(), accesses.size());
        MemoryScenario again(config, nullptr, nullptr);
        ReferenceJoin replay;
        std::size_t k = 0;
        while (again.next(e)) {
            if (e.type == EventType::mem_access) {
                replay.check(e, records[k]);
                if (::testing::Test::HasFatalFailure()) {
                    ADD_FAILURE() << "access " << k << " at " << e.time;
                    return;
                }
                const std::uint8_t attribution = records[k].attribution;
                ++seen[static_cast<TrueAttribution>(attribution)];
                ++k;
            }
            replay.feed(e, config.guests);
        }
    }
    std::filesystem::remove(path);
    EXPECT_GT(events, accesses.size());
    // Every kind the scenario promises occurs.
    for (TrueAttribution a : {TrueAttribution::guest, TrueAttribution::guest_kernel, TrueAttribution::shared_other,
                              TrueAttribution::host_on_behalf, TrueAttribution::host, TrueAttribution::before_map}) {
        EXPECT_GT(seen[a], 0u) << to_string(a);
    }
    EXPECT_GT(seen[TrueAttribution::guest], accesses.size() / 2);
}

INSTANTIATE_TEST_SUITE_P(Seeds, MemoryTruthSeeds, ::testing::Values(1, 7, 23));

TEST(MemoryScenario, LostBurstsAreCountedAndDropped) {
    ScenarioConfig config = memory_config(3);
    config.duration_ns = 30'000'000;
    config.memory.lost_every = 10'000;
    config.memory.lost_burst = 100;
    const std::string path = std::filesystem::temp_directory_path() / ("vmtrace-memlost-" + std::to_string(getpid()));
    MemoryTruth truth(path, 42, {"vmtrace-sim-guest0", "vmtrace-sim-guest1", "vmtrace-sim-guest2"});
    MemoryScenario sim(config, nullptr, &truth);
    SimEvent e;
    std::uint64_t written = 0;
    std::uint64_t lost = 0;
    while (sim.next(e)) {
        written += e.type == EventType::mem_access ? 1 : 0;
        lost += e.type == EventType::mem_lost ? e.addr : 0;
    }
    truth.finish(sim.guest_names());
    const auto records = read_truth(path);
    std::filesystem::remove(path);
    std::uint64_t truth_lost = 0;
    for (const auto& r : records) {
        const std::uint8_t lost_flag = r.lost;
        truth_lost += lost_flag;
    }
    EXPECT_GT(lost, 0u);
    EXPECT_EQ(lost, truth_lost);
    EXPECT_EQ(written + lost, records.size());
}

TEST(MemoryScenario, WithoutMemoryTheBaseEventsAreUnchanged) {
    ScenarioConfig config;
    config.seed = 9;
    config.duration_ns = 50'000'000;
    ScenarioSimulator base(config);
    MemoryScenario wrapped(config, nullptr, nullptr);
    SimEvent a;
    SimEvent b;
    while (base.next(a)) {
        ASSERT_TRUE(wrapped.next(b));
        ASSERT_EQ(a.time, b.time);
        ASSERT_EQ(a.type, b.type);
        ASSERT_EQ(a.machine, b.machine);
    }
    EXPECT_FALSE(wrapped.next(b));
}

}  // namespace
}  // namespace vmtrace::scenario
