// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <string>

#include "bt2/error.hpp"
#include "bt2/params.hpp"
#include "bt2/shared_object.hpp"
#include "schema/events.hpp"

namespace vmtrace::bt2 {
namespace {

// Components match events by this name (bt2::event_class_name): an lttng-ust
// trace names them `provider:event`, the kernel tracers and the simulator
// `event`.
TEST(SchemaEventName, DropsTheSchemasProviderPrefixOnly) {
    namespace ev = vmtrace::schema;
    EXPECT_EQ(ev::schema_event_name("vmtrace_mem:vmtrace_mem_access"), ev::vmtrace_mem_access::event_name);
    EXPECT_EQ(ev::schema_event_name("vmtrace_mem:vmtrace_mem_sync"), ev::vmtrace_mem_sync::event_name);
    EXPECT_EQ(ev::schema_event_name("vmtrace_mem_access"), "vmtrace_mem_access");  // the simulator's name
    EXPECT_EQ(ev::schema_event_name("sched_switch"), "sched_switch");
    // Another provider's event of the same name is not the schema's.
    EXPECT_EQ(ev::schema_event_name("other:vmtrace_mem_access"), "other:vmtrace_mem_access");
    EXPECT_EQ(ev::schema_event_name("vmtrace_mem:unknown"), "vmtrace_mem:unknown");
    EXPECT_EQ(ev::schema_event_name("vmtrace_mem:"), "vmtrace_mem:");
    EXPECT_EQ(ev::schema_event_name(":"), ":");
    EXPECT_EQ(ev::schema_event_name(""), "");
}

// Under the sanitizer build LeakSanitizer fails these tests if a wrapper
// forgets a put; a double put crashes them.
TEST(Shared, OwnsExactlyOneReference) {
    ValueRef a = ValueRef::adopt(bt_value_integer_signed_create_init(7));
    ASSERT_TRUE(a);
    ValueRef b = a;  // copy: a second reference
    ValueRef c = std::move(b);
    EXPECT_FALSE(b);
    EXPECT_EQ(c.get(), a.get());
    a.reset();
    EXPECT_EQ(bt_value_integer_signed_get(c.get()), 7);  // still alive through c
    ValueRef d = ValueRef::acquire(c.get());
    c = ValueRef();
    EXPECT_EQ(bt_value_integer_signed_get(d.get()), 7);
    bt_value* raw = d.release();
    EXPECT_FALSE(d);
    bt_value_put_ref(raw);  // the released reference is the caller's
}

ValueRef map_of(const char* yaml_like_key, bt_value* value) {
    ValueRef map = ValueRef::adopt(bt_value_map_create());
    bt_value_map_insert_entry(map.get(), yaml_like_key, value);
    bt_value_put_ref(value);
    return map;
}

TEST(Params, ReadsTypedValues) {
    ValueRef map = ValueRef::adopt(bt_value_map_create());
    bt_value_map_insert_signed_integer_entry(map.get(), "n", -3);
    bt_value_map_insert_real_entry(map.get(), "x", 2.5);
    bt_value_map_insert_string_entry(map.get(), "s", "hi");
    bt_value_map_insert_bool_entry(map.get(), "b", BT_TRUE);
    bt_value* array = nullptr;
    bt_value_map_insert_empty_array_entry(map.get(), "list", &array);
    bt_value_array_append_real_element(array, 1.5);
    bt_value_array_append_signed_integer_element(array, -2);
    const Params params(map.get(), "test.component");
    EXPECT_EQ(params.integer("n"), -3);
    EXPECT_EQ(params.real("x"), 2.5);
    EXPECT_EQ(params.real("n"), -3.0);
    EXPECT_EQ(params.string("s"), "hi");
    EXPECT_EQ(params.boolean("b"), true);
    EXPECT_EQ(params.real_list("list"), (std::vector<double>{1.5, -2.0}));
    EXPECT_FALSE(params.integer("absent").has_value());
    EXPECT_NO_THROW(params.reject_unknown({"n", "x", "s", "b", "list"}));
}

TEST(Params, ErrorsNameTheComponentAndTheParameter) {
    ValueRef map = map_of("windw", bt_value_integer_signed_create_init(5));
    const Params params(map.get(), "filter.test");
    try {
        params.reject_unknown({"window"});
        FAIL() << "accepted an unknown parameter";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("filter.test"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("`windw`"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("window"), std::string::npos);
    }
    EXPECT_THROW((void)params.string("windw"), Error);
    EXPECT_THROW((void)params.boolean("windw"), Error);
}

TEST(Params, IntegerBetweenRefusesAValueOutOfRangeByName) {
    ValueRef map = map_of("window-ms", bt_value_integer_signed_create_init(-1));
    const Params params(map.get(), "filter.test");
    try {
        (void)params.integer_between("window-ms", 0, 3'600'000);
        FAIL() << "accepted -1 for [0, 3600000]";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "filter.test: parameter `window-ms` must be between 0 and 3600000, not -1");
    }
    EXPECT_EQ(params.integer_between("window-ms", -1, 0), -1);
    EXPECT_THROW((void)params.integer_between("window-ms", 0, 5), Error);
    EXPECT_FALSE(params.integer_between("absent", 0, 5).has_value());
}

TEST(Guard, TurnsExceptionsIntoStatusesAndCauses) {
    std::string cause;
    auto append = [&](const char* message) { cause = message; };
    EXPECT_EQ(guard<bt_component_class_initialize_method_status>(
                  append, [] { return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK; }),
              BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK);
    EXPECT_TRUE(cause.empty());
    EXPECT_EQ(guard<bt_component_class_initialize_method_status>(
                  append, []() -> bt_component_class_initialize_method_status { throw Error("trace `x`: bad"); }),
              BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_ERROR);
    EXPECT_EQ(cause, "trace `x`: bad");
    EXPECT_EQ(guard<bt_message_iterator_class_next_method_status>(
                  append, []() -> bt_message_iterator_class_next_method_status { throw std::bad_alloc(); }),
              BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_MEMORY_ERROR);
}

TEST(Check, ThrowsOnNullAndBadStatus) {
    EXPECT_THROW(check<bt_value>(nullptr, "value"), CallError);
    EXPECT_THROW(check_status(BT_VALUE_MAP_INSERT_ENTRY_STATUS_MEMORY_ERROR, "insert"), CallError);
    EXPECT_NO_THROW(check_status(BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK, "insert"));
}

}  // namespace
}  // namespace vmtrace::bt2
