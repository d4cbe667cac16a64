// SPDX-License-Identifier: MIT
#include "linear_transform.hpp"

#include <algorithm>

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
    return static_cast<std::int64_t>(y0 + div_round(dx * slope_num, slope_den));
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

}  // namespace vmtrace::clocksync
