// SPDX-License-Identifier: MIT
#include "lib/isolate/guest_map.hpp"

#include <gtest/gtest.h>

namespace vmtrace::isolate {
namespace {

class GuestMapTest : public ::testing::Test {
protected:
    // The gva page pid maps gpa_page at, -1 if it does not map it.
    std::int64_t gva_of(std::int32_t pid, std::uint64_t gpa_page) const {
        const GpaPage* page = map.find(gpa_page);
        if (page == nullptr) {
            return -1;
        }
        const Mapper* m = map.mapper_of(*page, pid);
        return m == nullptr ? -1 : static_cast<std::int64_t>(m->gva_page);
    }

    GuestMap map;
    std::vector<std::uint64_t> changed;
};

TEST_F(GuestMapTest, MapReplacesThePreviousPageOfTheSameAddress) {
    map.map(10, 0x400, 0x9000, changed);
    EXPECT_EQ(gva_of(10, 0x9000), 0x400);
    map.map(10, 0x400, 0x9001, changed);
    EXPECT_EQ(gva_of(10, 0x9000), -1);
    EXPECT_EQ(map.find(0x9000), nullptr);
    EXPECT_EQ(gva_of(10, 0x9001), 0x400);
    EXPECT_EQ(map.live(), 1u);
    EXPECT_EQ(changed, (std::vector<std::uint64_t>{0x9000, 0x9000, 0x9001}));
}

TEST_F(GuestMapTest, CopyOnWriteAfterFork) {
    map.map(10, 0x400, 0x9000, changed);
    map.map(10, 0x401, 0x9001, changed);
    EXPECT_EQ(map.fork(10, 11), 2u);
    EXPECT_EQ(gva_of(11, 0x9000), 0x400);  // inherited
    EXPECT_EQ(gva_of(11, 0x9001), 0x401);
    EXPECT_EQ(map.processes(*map.find(0x9000)), 2);
    map.map(11, 0x401, 0x9100, changed);  // the child writes: its own copy
    EXPECT_EQ(gva_of(11, 0x9001), -1);
    EXPECT_EQ(gva_of(10, 0x9001), 0x401);  // the parent keeps the original
    EXPECT_EQ(gva_of(11, 0x9100), 0x401);
    EXPECT_EQ(map.processes(*map.find(0x9001)), 1);
    EXPECT_EQ(map.live(), 4u);
}

TEST_F(GuestMapTest, SharedPageCountsDistinctProcesses) {
    for (std::int32_t pid = 20; pid < 23; ++pid) {
        map.map(pid, 0x700 + pid, 0x5000, changed);
    }
    map.map(21, 0x900, 0x5000, changed);  // mapped twice by one process
    const GpaPage* page = map.find(0x5000);
    ASSERT_NE(page, nullptr);
    EXPECT_EQ(page->count, 4u);
    EXPECT_EQ(map.processes(*page), 3);
    EXPECT_EQ(gva_of(22, 0x5000), 0x700 + 22);
    EXPECT_EQ(gva_of(23, 0x5000), -1);
    map.unmap_all(20, changed);  // the inline mapper leaves: another takes its place
    EXPECT_EQ(map.processes(*map.find(0x5000)), 2);
    const std::int64_t gva = gva_of(21, 0x5000);  // either of its two mappings
    EXPECT_TRUE(gva == 0x700 + 21 || gva == 0x900) << gva;
    EXPECT_EQ(gva_of(22, 0x5000), 0x700 + 22);
    EXPECT_EQ(gva_of(20, 0x5000), -1);
}

TEST_F(GuestMapTest, RangeUnmapAndExit) {
    for (std::uint64_t p = 0; p < 10; ++p) {
        map.map(30, 0x100 + p, 0x8000 + p, changed);
    }
    changed.clear();
    map.unmap(30, 0x103, 0x106, changed);  // [0x103, 0x106)
    EXPECT_EQ(changed, (std::vector<std::uint64_t>{0x8003, 0x8004, 0x8005}));
    EXPECT_EQ(gva_of(30, 0x8002), 0x102);
    EXPECT_EQ(gva_of(30, 0x8003), -1);
    EXPECT_EQ(gva_of(30, 0x8005), -1);
    EXPECT_EQ(gva_of(30, 0x8006), 0x106);
    EXPECT_EQ(map.live(), 7u);
    map.unmap_all(30, changed);
    EXPECT_EQ(map.live(), 0u);
    EXPECT_EQ(map.gpa_pages(), 0u);
    EXPECT_EQ(map.process_count(), 0u);
}

TEST_F(GuestMapTest, ChurnKeepsMemoryFlat) {
    const auto round = [&](std::int32_t pid) {
        for (std::uint64_t p = 0; p < 2000; ++p) {
            map.map(pid, p, 0x10000 + (p * 7 + pid) % 5000, changed);
            map.map(1, p, 0x10000 + p, changed);  // a page shared with a long-lived process
        }
        map.fork(pid, pid + 1);
        map.unmap_all(pid, changed);
        map.unmap_all(pid + 1, changed);
        changed.clear();
    };
    for (std::int32_t pid = 100; pid < 120; pid += 2) {
        round(pid);
    }
    const std::size_t steady = map.memory_bytes();
    for (std::int32_t pid = 120; pid < 400; pid += 2) {
        round(pid);
    }
    EXPECT_EQ(map.live(), 2000u);
    EXPECT_EQ(map.gpa_pages(), 2000u);
    EXPECT_LE(map.memory_bytes(), steady + steady / 100);
}

}  // namespace
}  // namespace vmtrace::isolate
