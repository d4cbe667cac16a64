// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vmtrace::bt2 {

// Typed, checked access to a component's initialization parameters (a
// babeltrace2 map value, borrowed).  Every error names the component and
// the parameter; an unknown parameter name is an error, so that a typo
// never silently falls back to a default.
class Params {
public:
    Params(const bt_value* map, std::string component);

    // Throws bt2::Error for any key not in `known`.
    void reject_unknown(std::initializer_list<std::string_view> known) const;

    [[nodiscard]] std::optional<std::string> string(std::string_view name) const;
    [[nodiscard]] std::optional<std::int64_t> integer(std::string_view name) const;
    // integer(), refused (naming the value) outside [min, max].
    [[nodiscard]] std::optional<std::int64_t> integer_between(std::string_view name, std::int64_t min,
                                                              std::int64_t max) const;
    [[nodiscard]] std::optional<double> real(std::string_view name) const;  // integers accepted
    [[nodiscard]] std::optional<bool> boolean(std::string_view name) const;
    [[nodiscard]] std::vector<double> real_list(std::string_view name) const;
    [[nodiscard]] std::vector<std::string> string_list(std::string_view name) const;
    // A map of names to [FIRST, SECOND] integer pairs with FIRST <= SECOND
    // (time ranges, by component name).
    using IntervalMap = std::unordered_map<std::string, std::pair<std::int64_t, std::int64_t>>;
    [[nodiscard]] IntervalMap interval_map(std::string_view name) const;

private:
    [[nodiscard]] const bt_value* find(std::string_view name) const;
    [[noreturn]] void fail(std::string_view name, std::string_view expected) const;

    const bt_value* map_;
    std::string component_;
};

}  // namespace vmtrace::bt2
