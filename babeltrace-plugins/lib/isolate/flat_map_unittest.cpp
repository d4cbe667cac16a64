// SPDX-License-Identifier: MIT
#include "lib/isolate/flat_map.hpp"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace vmtrace::isolate {
namespace {

// The map agrees with std::unordered_map through random inserts and erases
// (backward-shift deletion is the part that can go wrong).
TEST(FlatMap, AgreesWithUnorderedMap) {
    FlatMap<std::uint32_t> flat;
    std::unordered_map<std::uint64_t, std::uint32_t> reference;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200'000; ++i) {
        const std::uint64_t key = rng() % 5000;  // few keys: long collision chains, many erasures
        if (rng() % 3 == 0) {
            EXPECT_EQ(flat.erase(key), reference.erase(key) == 1);
        } else {
            const auto value = static_cast<std::uint32_t>(rng());
            *flat.try_emplace(key).first = value;
            reference[key] = value;
        }
    }
    ASSERT_EQ(flat.size(), reference.size());
    for (std::uint64_t key = 0; key < 5000; ++key) {
        const auto it = reference.find(key);
        const std::uint32_t* found = flat.find(key);
        ASSERT_EQ(found != nullptr, it != reference.end()) << key;
        if (found != nullptr) {
            EXPECT_EQ(*found, it->second);
        }
    }
}

TEST(FlatMap, ShrinksAfterChurnAndEraseIf) {
    FlatMap<std::uint64_t> flat;
    for (std::uint64_t k = 0; k < 100'000; ++k) {
        *flat.try_emplace(k * 4096).first = k;
    }
    const std::size_t full = flat.capacity();
    for (std::uint64_t k = 0; k < 99'000; ++k) {
        ASSERT_TRUE(flat.erase(k * 4096));
    }
    EXPECT_LT(flat.capacity(), full / 8);
    EXPECT_EQ(flat.erase_if([](std::uint64_t, std::uint64_t v) { return v % 2 == 0; }), 500u);
    EXPECT_EQ(flat.size(), 500u);
    EXPECT_EQ(*flat.find(99'001 * 4096), 99'001u);
    EXPECT_EQ(flat.find(99'002 * 4096), nullptr);
}

}  // namespace
}  // namespace vmtrace::isolate
