// SPDX-License-Identifier: MIT
#include "linear_transform.hpp"

#include <algorithm>
#include <cstdint>

namespace vmtrace::clocksync {

Int128 div_round(Int128 num, Int128 den) {
    if (den < 0) {
        num = -num;
        den = -den;
    }
    if (num >= 0) {
        return (num + den / 2) / den;
    }
    return -((-num + den / 2) / den);
}

std::int64_t LinearTransform::apply(std::int64_t x) const {
    const Int128 dx = static_cast<Int128>(x) - x0;
    const Int128 product = dx * slope_num;
    if (slope_den > 0 && slope_den <= static_cast<Int128>(INT64_MAX) && (slope_den & (slope_den - 1)) == 0) {
        // The estimators use power-of-two denominators: a shift is ten
        // times cheaper than a 128-bit division on the per-event path.
        const int shift = __builtin_ctzll(static_cast<unsigned long long>(slope_den));
        const Int128 half = shift > 0 ? static_cast<Int128>(1) << (shift - 1) : 0;
        const Int128 rounded = product >= 0 ? (product + half) >> shift : -((-product + half) >> shift);
        return static_cast<std::int64_t>(y0 + rounded);
    }
    return static_cast<std::int64_t>(y0 + div_round(product, slope_den));
}

std::int64_t LinearTransform::invert(std::int64_t y) const {
    const Int128 dy = static_cast<Int128>(y) - y0;
    return static_cast<std::int64_t>(x0 + div_round(dy * slope_den, slope_num));
}

double LinearTransform::slope() const {
    return static_cast<double>(slope_num) / static_cast<double>(slope_den);
}

bool LinearTransform::is_identity() const {
    return x0 == y0 && slope_num == slope_den;
}

std::string to_string(Int128 value) {
    if (value == 0) {
        return "0";
    }
    const bool negative = value < 0;
    std::string digits;
    while (value != 0) {
        const int digit = static_cast<int>(value % 10);
        digits.push_back(static_cast<char>('0' + (negative ? -digit : digit)));
        value /= 10;
    }
    if (negative) {
        digits.push_back('-');
    }
    std::reverse(digits.begin(), digits.end());
    return digits;
}

std::optional<Int128> parse_int128(std::string_view text) {
    const bool negative = !text.empty() && text.front() == '-';
    if (negative) {
        text.remove_prefix(1);
    }
    if (text.empty()) {
        return std::nullopt;
    }
    // Accumulated negative: the most negative value has no positive twin.
    constexpr Int128 kMin = static_cast<Int128>(static_cast<unsigned __int128>(1) << 127);
    Int128 value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9' || value < (kMin + (c - '0')) / 10) {
            return std::nullopt;
        }
        value = value * 10 - (c - '0');
    }
    if (!negative) {
        if (value == kMin) {
            return std::nullopt;
        }
        value = -value;
    }
    return value;
}

}  // namespace vmtrace::clocksync
