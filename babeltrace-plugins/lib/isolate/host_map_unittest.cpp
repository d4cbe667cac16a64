// SPDX-License-Identifier: MIT
#include "lib/isolate/host_map.hpp"

#include <gtest/gtest.h>

namespace vmtrace::isolate {
namespace {

TdpEvent tdp(int vm, std::uint8_t op, std::uint64_t gfn, std::uint64_t pfn, std::uint64_t old_pfn = 0,
             std::uint8_t level = 1) {
    TdpEvent e;
    e.vm = vm;
    e.vm_pid = vm < 0 ? 0 : 3000 + vm;
    e.op = op;
    e.gfn = gfn;
    e.pfn = pfn;
    e.old_pfn = old_pfn;
    e.level = level;
    return e;
}

class HostMapTest : public ::testing::Test {
protected:
    Contradictions contradictions;
    HostMap map{contradictions};
};

TEST_F(HostMapTest, SmallPage) {
    map.apply(tdp(1, 1, 0x10, 0x5000));
    EXPECT_EQ(map.lookup(0x5000).vm, 1);
    EXPECT_EQ(map.lookup(0x5000).gpa_page, 0x10u);
    EXPECT_EQ(map.lookup(0x5001).vm, -1);
    EXPECT_EQ(map.lookup(0x4fff).vm, -1);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, TwoMegabytePage) {
    map.apply(tdp(0, 1, 0x200, 0x40000, 0, 2));
    EXPECT_EQ(map.lookup(0x40000).gpa_page, 0x200u);
    EXPECT_EQ(map.lookup(0x40000 + 511).vm, 0);
    EXPECT_EQ(map.lookup(0x40000 + 511).gpa_page, 0x200u + 511);
    EXPECT_EQ(map.lookup(0x40000 + 512).vm, -1);
    EXPECT_EQ(map.lookup(0x3ffff).vm, -1);
    EXPECT_EQ(map.live(2), 1u);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, OneGigabytePage) {
    const std::uint64_t base = std::uint64_t{3} << 18;
    map.apply(tdp(2, 1, std::uint64_t{1} << 18, base, 0, 3));
    EXPECT_EQ(map.lookup(base + 12345).vm, 2);
    EXPECT_EQ(map.lookup(base + 12345).gpa_page, (std::uint64_t{1} << 18) + 12345);
    EXPECT_EQ(map.lookup(base + (1u << 18) - 1).vm, 2);
    EXPECT_EQ(map.lookup(base + (1u << 18)).vm, -1);
    EXPECT_EQ(map.lookup(base - 1).vm, -1);
}

TEST_F(HostMapTest, ZapThenRemapElsewhere) {
    map.apply(tdp(0, 1, 0x10, 0x5000));
    const TouchedPages zap = map.apply(tdp(0, 3, 0x10, 0x5000));
    EXPECT_EQ(zap.count, 1);
    EXPECT_EQ(zap.pfn[0], 0x5000u);
    EXPECT_EQ(map.lookup(0x5000).vm, -1);
    map.apply(tdp(0, 1, 0x10, 0x6000));
    EXPECT_EQ(map.lookup(0x5000).vm, -1);
    EXPECT_EQ(map.lookup(0x6000).gpa_page, 0x10u);
    EXPECT_EQ(map.live(), 1u);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, ChangeMovesThePage) {
    map.apply(tdp(0, 1, 0x10, 0x5000));
    const TouchedPages moved = map.apply(tdp(0, 2, 0x10, 0x7000, 0x5000));
    EXPECT_EQ(moved.count, 2);
    EXPECT_EQ(map.lookup(0x5000).vm, -1);
    EXPECT_EQ(map.lookup(0x7000).vm, 0);
    EXPECT_EQ(map.lookup(0x7000).gpa_page, 0x10u);
    EXPECT_EQ(map.live(), 1u);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, RemoveWithoutVmFoundByPfn) {
    map.apply(tdp(0, 1, 0x10, 0x5000));
    map.apply(tdp(1, 1, 0x10, 0x9000));
    const TouchedPages zap = map.apply(tdp(-1, 3, 0x10, 0x9000));
    EXPECT_EQ(zap.vm, 1);
    EXPECT_EQ(map.lookup(0x9000).vm, -1);
    EXPECT_EQ(map.lookup(0x5000).vm, 0);
    const TouchedPages change = map.apply(tdp(-1, 2, 0x10, 0x8000, 0x5000));
    EXPECT_EQ(change.vm, 0);
    EXPECT_EQ(map.lookup(0x8000).vm, 0);
    EXPECT_EQ(map.live(), 1u);
    EXPECT_EQ(contradictions.total(), 0u);
}

// op 4: the statedump's record of a mapping present when the session
// started.  One the live events already installed is no change (nothing
// touched, no contradiction); one never seen is an install.
TEST_F(HostMapTest, StatedumpOfAMappingAlreadyInstalledIsNoChange) {
    map.apply(tdp(0, 1, 0x10, 0x5000));
    const TouchedPages again = map.apply(tdp(0, 4, 0x10, 0x5000));
    EXPECT_EQ(again.count, 0);
    EXPECT_EQ(map.lookup(0x5000).vm, 0);
    EXPECT_EQ(map.lookup(0x5000).gpa_page, 0x10u);
    EXPECT_EQ(map.live(), 1u);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, StatedumpOfAMappingNeverSeenInstallsIt) {
    const TouchedPages first = map.apply(tdp(1, 4, 0x200, 0x40000, 0, 2));
    EXPECT_EQ(first.count, 1);
    EXPECT_EQ(first.vm, 1);
    EXPECT_EQ(map.lookup(0x40000 + 7).vm, 1);
    EXPECT_EQ(map.lookup(0x40000 + 7).gpa_page, 0x200u + 7);
    // Later live events find it.
    map.apply(tdp(1, 2, 0x200, 0x80000, 0x40000, 2));
    EXPECT_EQ(map.lookup(0x40000).vm, -1);
    EXPECT_EQ(map.lookup(0x80000).gpa_page, 0x200u);
    map.apply(tdp(1, 3, 0x200, 0x80000, 0x80000, 2));
    EXPECT_EQ(map.live(), 0u);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, StatedumpThatDiffersIsAnInstallOverALiveMapping) {
    map.apply(tdp(0, 1, 0x10, 0x5000));
    const TouchedPages moved = map.apply(tdp(0, 4, 0x10, 0x6000));
    EXPECT_EQ(moved.count, 2);
    EXPECT_EQ(contradictions.count(Contradiction::install_over_live), 1u);
    EXPECT_EQ(map.lookup(0x5000).vm, -1);
    EXPECT_EQ(map.lookup(0x6000).vm, 0);
    map.apply(tdp(-1, 4, 0x11, 0x7000));  // names no VM
    map.apply(tdp(0, 5, 0x11, 0x7000));   // no op 5
    EXPECT_EQ(contradictions.count(Contradiction::bad_host_event), 2u);
    EXPECT_EQ(map.lookup(0x7000).vm, -1);
}

// A VM that entered SMM has a root per address space: the same guest page
// mapped to the same host page in both (live or statedump) is no alias,
// and the page stays the VM's while either still maps it.
TEST_F(HostMapTest, TheSameGuestPageInBothAddressSpaces) {
    TdpEvent normal = tdp(0, 1, 0x10, 0x5000);
    TdpEvent smm = normal;
    smm.as_id = 1;
    map.apply(normal);
    map.apply(smm);
    smm.op = 4;
    normal.op = 4;
    map.apply(smm);
    map.apply(normal);
    EXPECT_EQ(contradictions.total(), 0u);
    EXPECT_EQ(map.live(), 2u);
    smm.op = 3;
    map.apply(smm);  // the SMM root zapped
    EXPECT_EQ(map.lookup(0x5000).vm, 0);
    EXPECT_EQ(map.lookup(0x5000).gpa_page, 0x10u);
    normal.op = 3;
    map.apply(normal);
    EXPECT_EQ(map.lookup(0x5000).vm, -1);
    EXPECT_EQ(contradictions.total(), 0u);
}

TEST_F(HostMapTest, ContradictionsAreCountedAndTheEventFollowed) {
    map.apply(tdp(0, 3, 0x10, 0x5000));  // remove of an unknown mapping
    EXPECT_EQ(contradictions.count(Contradiction::remove_unknown), 1u);
    EXPECT_NE(contradictions.first_example(Contradiction::remove_unknown).find("gfn 0x10"), std::string::npos);
    map.apply(tdp(-1, 3, 0x11, 0x5001));  // no VM named, none maps the page
    EXPECT_EQ(contradictions.count(Contradiction::remove_unknown), 2u);

    map.apply(tdp(0, 1, 0x10, 0x5000));
    map.apply(tdp(0, 1, 0x10, 0x6000));  // install over a live mapping: the new one holds
    EXPECT_EQ(contradictions.count(Contradiction::install_over_live), 1u);
    EXPECT_EQ(map.lookup(0x5000).vm, -1);
    EXPECT_EQ(map.lookup(0x6000).vm, 0);

    map.apply(tdp(0, 2, 0x10, 0x7000, 0x5000));  // change whose old pfn is not the mapped one
    EXPECT_EQ(contradictions.count(Contradiction::change_wrong_old), 1u);
    EXPECT_EQ(map.lookup(0x6000).vm, -1);
    EXPECT_EQ(map.lookup(0x7000).vm, 0);
    EXPECT_EQ(map.live(), 1u);

    map.apply(tdp(0, 1, 0x20, 0x7000));  // a second gfn on the same host page
    EXPECT_EQ(contradictions.count(Contradiction::pfn_aliased), 1u);
    EXPECT_EQ(map.lookup(0x7000).gpa_page, 0x20u);

    map.apply(tdp(0, 1, 0x201, 0x40000, 0, 2));  // misaligned huge page: ignored
    map.apply(tdp(0, 1, 0x200, 0x40000, 0, 4));  // no level 4
    EXPECT_EQ(contradictions.count(Contradiction::bad_host_event), 2u);
    EXPECT_EQ(map.lookup(0x40000).vm, -1);
}

}  // namespace
}  // namespace vmtrace::isolate
