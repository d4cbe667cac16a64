// SPDX-License-Identifier: MIT
#include "params.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "error.hpp"

namespace vmtrace::bt2 {

Params::Params(const bt_value* map, std::string component) : map_(map), component_(std::move(component)) {
    if (map_ != nullptr && !bt_value_is_map(map_)) {
        throw Error(fmt::format("{}: parameters must be a map", component_));
    }
}

void Params::reject_unknown(std::initializer_list<std::string_view> known) const {
    if (map_ == nullptr) {
        return;
    }
    struct Context {
        std::initializer_list<std::string_view> known;
        std::string unknown;
    } context{known, {}};
    bt_value_map_foreach_entry_const(
        map_,
        [](const char* key, const bt_value*, void* data) {
            auto* ctx = static_cast<Context*>(data);
            if (std::find(ctx->known.begin(), ctx->known.end(), std::string_view(key)) == ctx->known.end()) {
                ctx->unknown = key;
                return BT_VALUE_MAP_FOREACH_ENTRY_CONST_FUNC_STATUS_INTERRUPT;
            }
            return BT_VALUE_MAP_FOREACH_ENTRY_CONST_FUNC_STATUS_OK;
        },
        &context);
    if (!context.unknown.empty()) {
        std::string names;
        for (std::string_view name : known) {
            names += names.empty() ? "" : ", ";
            names += name;
        }
        throw Error(fmt::format("{}: unknown parameter `{}` (known: {})", component_, context.unknown, names));
    }
}

const bt_value* Params::find(std::string_view name) const {
    if (map_ == nullptr) {
        return nullptr;
    }
    return bt_value_map_borrow_entry_value_const(map_, std::string(name).c_str());
}

void Params::fail(std::string_view name, std::string_view expected) const {
    throw Error(fmt::format("{}: parameter `{}` must be {}", component_, name, expected));
}

std::optional<std::string> Params::string(std::string_view name) const {
    const bt_value* value = find(name);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (!bt_value_is_string(value)) {
        fail(name, "a string");
    }
    return std::string(bt_value_string_get(value));
}

std::optional<std::int64_t> Params::integer(std::string_view name) const {
    const bt_value* value = find(name);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (bt_value_is_signed_integer(value)) {
        return bt_value_integer_signed_get(value);
    }
    if (bt_value_is_unsigned_integer(value)) {
        const std::uint64_t raw = bt_value_integer_unsigned_get(value);
        if (raw > static_cast<std::uint64_t>(INT64_MAX)) {
            fail(name, "an integer below 2^63");
        }
        return static_cast<std::int64_t>(raw);
    }
    fail(name, "an integer");
}

std::optional<std::int64_t> Params::integer_between(std::string_view name, std::int64_t min, std::int64_t max) const {
    const auto value = integer(name);
    if (value && (*value < min || *value > max)) {
        throw Error(
            fmt::format("{}: parameter `{}` must be between {} and {}, not {}", component_, name, min, max, *value));
    }
    return value;
}

std::optional<double> Params::real(std::string_view name) const {
    const bt_value* value = find(name);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (bt_value_is_real(value)) {
        return bt_value_real_get(value);
    }
    if (bt_value_is_signed_integer(value) || bt_value_is_unsigned_integer(value)) {
        return static_cast<double>(*integer(name));
    }
    fail(name, "a number");
}

std::optional<bool> Params::boolean(std::string_view name) const {
    const bt_value* value = find(name);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (!bt_value_is_bool(value)) {
        fail(name, "a boolean (yes/no, true/false)");
    }
    return bt_value_bool_get(value) != BT_FALSE;
}

std::vector<double> Params::real_list(std::string_view name) const {
    const bt_value* value = find(name);
    std::vector<double> result;
    if (value == nullptr) {
        return result;
    }
    if (!bt_value_is_array(value)) {
        fail(name, "an array of numbers, e.g. [1.5, -2]");
    }
    for (std::uint64_t i = 0; i < bt_value_array_get_length(value); ++i) {
        const bt_value* item = bt_value_array_borrow_element_by_index_const(value, i);
        if (bt_value_is_real(item)) {
            result.push_back(bt_value_real_get(item));
        } else if (bt_value_is_signed_integer(item)) {
            result.push_back(static_cast<double>(bt_value_integer_signed_get(item)));
        } else if (bt_value_is_unsigned_integer(item)) {
            result.push_back(static_cast<double>(bt_value_integer_unsigned_get(item)));
        } else {
            fail(name, "an array of numbers, e.g. [1.5, -2]");
        }
    }
    return result;
}

std::vector<std::string> Params::string_list(std::string_view name) const {
    const bt_value* value = find(name);
    std::vector<std::string> result;
    if (value == nullptr) {
        return result;
    }
    if (!bt_value_is_array(value)) {
        fail(name, "an array of strings, e.g. [\"a\", \"b\"]");
    }
    for (std::uint64_t i = 0; i < bt_value_array_get_length(value); ++i) {
        const bt_value* item = bt_value_array_borrow_element_by_index_const(value, i);
        if (!bt_value_is_string(item)) {
            fail(name, "an array of strings, e.g. [\"a\", \"b\"]");
        }
        result.emplace_back(bt_value_string_get(item));
    }
    return result;
}

Params::IntervalMap Params::interval_map(std::string_view name) const {
    IntervalMap ranges;
    const bt_value* map = find(name);
    if (map == nullptr) {
        return ranges;
    }
    constexpr const char* kExpected = "a map of names to arrays of two integers [FIRST, SECOND], FIRST <= SECOND";
    if (!bt_value_is_map(map)) {
        fail(name, kExpected);
    }
    struct Out {
        IntervalMap* ranges;
        bool good;
    } out{&ranges, true};
    bt_value_map_foreach_entry_const(
        map,
        [](const char* key, const bt_value* value, void* data) {
            auto* out = static_cast<Out*>(data);
            if (!bt_value_is_array(value) || bt_value_array_get_length(value) != 2 ||
                !bt_value_is_signed_integer(bt_value_array_borrow_element_by_index_const(value, 0)) ||
                !bt_value_is_signed_integer(bt_value_array_borrow_element_by_index_const(value, 1))) {
                out->good = false;
                return BT_VALUE_MAP_FOREACH_ENTRY_CONST_FUNC_STATUS_INTERRUPT;
            }
            const std::int64_t begin =
                bt_value_integer_signed_get(bt_value_array_borrow_element_by_index_const(value, 0));
            const std::int64_t end =
                bt_value_integer_signed_get(bt_value_array_borrow_element_by_index_const(value, 1));
            if (begin > end) {
                out->good = false;
                return BT_VALUE_MAP_FOREACH_ENTRY_CONST_FUNC_STATUS_INTERRUPT;
            }
            (*out->ranges)[key] = {begin, end};
            return BT_VALUE_MAP_FOREACH_ENTRY_CONST_FUNC_STATUS_OK;
        },
        &out);
    if (!out.good) {
        fail(name, kExpected);
    }
    return ranges;
}

}  // namespace vmtrace::bt2
