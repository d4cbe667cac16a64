// SPDX-License-Identifier: MIT
#include "lib/isolate/change_marks.hpp"

#include <gtest/gtest.h>

namespace vmtrace::isolate {
namespace {

TEST(ChangeTimes, TheLatestChangeBeforeTheWindowEndDecides) {
    ChangeTimes times;
    EXPECT_FALSE(times.within(1000, 100));
    times.add(850);
    EXPECT_FALSE(times.within(1000, 100));  // 150 before
    EXPECT_TRUE(times.within(950, 100));
    times.add(1200);  // later than 1000 + 100: the one at 850 decides
    EXPECT_FALSE(times.within(1000, 100));
    EXPECT_TRUE(times.within(1100, 100));
    times.add(1300);  // both kept changes after the window: too short a history to tell
    EXPECT_TRUE(times.within(1000, 100));
}

TEST(ChangeMarks, MarksSurvivePruningWhileYoungEnough) {
    ChangeMarks marks;
    for (std::uint64_t key = 0; key < 1000; ++key) {
        marks.mark(key * 4, 100);
    }
    marks.mark(7, 5000);
    marks.mark(4 * 999 + 1, 5010);
    marks.prune(1000);
    EXPECT_EQ(marks.size(), 2u);
    EXPECT_TRUE(marks.within(7, 5050, 100));
    EXPECT_TRUE(marks.within(4 * 999 + 1, 5050, 100));
    EXPECT_FALSE(marks.within(8, 5050, 100));
    EXPECT_FALSE(marks.within(4, 150, 100));  // pruned
    marks.mark(4, 5020);
    EXPECT_TRUE(marks.within(4, 5050, 100));
}

}  // namespace
}  // namespace vmtrace::isolate
