// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace vmtrace::plugin {

// Reading what the plugin's components need from incoming trace IR.

// Whether any stream class of `tc` has an event class named in `names`.
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
