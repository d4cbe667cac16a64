// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace vmtrace::plugin {

// Reading what the plugin's components need from incoming trace IR.

// The schema's name of an event class (schema::schema_event_name: an
// lttng-ust `vmtrace_mem:vmtrace_mem_access` is `vmtrace_mem_access`), ""
// when it has none.  Components match event classes by this name.
std::string_view event_class_name(const bt_event_class* ec);

// Whether any stream class of `tc` has an event class named in `names`
// (by event_class_name).
bool declares_event(const bt_trace_class* tc, std::initializer_list<std::string_view> names);

// The integer member `index` of a payload structure, signed or unsigned.
std::int64_t integer_member(const bt_field* payload, std::uint64_t index);

// The packet context's `cpu_id` (LTTng's per-CPU streams), -1 when the
// packet has none.
std::int32_t packet_cpu_id(const bt_packet* packet);

// A string entry of the trace's environment, "" when absent or not a string.
std::string env_string(const bt_trace* trace, const char* name);

// What names a trace to users: its `hostname` environment entry, else its
// name, else "".
std::string trace_display_name(const bt_trace* trace);

// The stream a message is about; nullptr for an inactivity message.
const bt_stream* message_stream(const bt_message* message);

}  // namespace vmtrace::plugin
