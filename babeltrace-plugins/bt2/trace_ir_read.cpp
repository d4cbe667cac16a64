// SPDX-License-Identifier: MIT
#include "bt2/trace_ir_read.hpp"

#include <algorithm>

#include "schema/events.hpp"

namespace vmtrace::plugin {

std::string_view event_class_name(const bt_event_class* ec) {
    const char* name = bt_event_class_get_name(ec);
    return name != nullptr ? schema::schema_event_name(name) : std::string_view();
}

bool declares_event(const bt_trace_class* tc, std::initializer_list<std::string_view> names) {
    for (std::uint64_t s = 0; s < bt_trace_class_get_stream_class_count(tc); ++s) {
        const bt_stream_class* sc = bt_trace_class_borrow_stream_class_by_index_const(tc, s);
        for (std::uint64_t e = 0; e < bt_stream_class_get_event_class_count(sc); ++e) {
            const std::string_view name = event_class_name(bt_stream_class_borrow_event_class_by_index_const(sc, e));
            if (!name.empty() && std::find(names.begin(), names.end(), name) != names.end()) {
                return true;
            }
        }
    }
    return false;
}

std::int64_t integer_member(const bt_field* payload, std::uint64_t index) {
    const bt_field* field = bt_field_structure_borrow_member_field_by_index_const(payload, index);
    if (bt_field_class_type_is(bt_field_get_class_type(field), BT_FIELD_CLASS_TYPE_SIGNED_INTEGER)) {
        return bt_field_integer_signed_get_value(field);
    }
    return static_cast<std::int64_t>(bt_field_integer_unsigned_get_value(field));
}

std::int32_t packet_cpu_id(const bt_packet* packet) {
    const bt_field* context = packet != nullptr ? bt_packet_borrow_context_field_const(packet) : nullptr;
    if (context == nullptr) {
        return -1;
    }
    const bt_field* cpu = bt_field_structure_borrow_member_field_by_name_const(context, "cpu_id");
    if (cpu == nullptr || !bt_field_class_type_is(bt_field_get_class_type(cpu), BT_FIELD_CLASS_TYPE_INTEGER)) {
        return -1;
    }
    return static_cast<std::int32_t>(bt_field_integer_unsigned_get_value(cpu));
}

std::string env_string(const bt_trace* trace, const char* name) {
    const bt_value* value = bt_trace_borrow_environment_entry_value_by_name_const(trace, name);
    return value != nullptr && bt_value_is_string(value) ? bt_value_string_get(value) : "";
}

std::string trace_display_name(const bt_trace* trace) {
    std::string name = env_string(trace, "hostname");
    if (name.empty() && bt_trace_get_name(trace) != nullptr) {
        name = bt_trace_get_name(trace);
    }
    return name;
}

const bt_stream* message_stream(const bt_message* msg) {
    switch (bt_message_get_type(msg)) {
    case BT_MESSAGE_TYPE_EVENT:
        return bt_event_borrow_stream_const(bt_message_event_borrow_event_const(msg));
    case BT_MESSAGE_TYPE_PACKET_BEGINNING:
        return bt_packet_borrow_stream_const(bt_message_packet_beginning_borrow_packet_const(msg));
    case BT_MESSAGE_TYPE_PACKET_END:
        return bt_packet_borrow_stream_const(bt_message_packet_end_borrow_packet_const(msg));
    case BT_MESSAGE_TYPE_STREAM_BEGINNING:
        return bt_message_stream_beginning_borrow_stream_const(msg);
    case BT_MESSAGE_TYPE_STREAM_END:
        return bt_message_stream_end_borrow_stream_const(msg);
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS:
        return bt_message_discarded_events_borrow_stream_const(msg);
    case BT_MESSAGE_TYPE_DISCARDED_PACKETS:
        return bt_message_discarded_packets_borrow_stream_const(msg);
    case BT_MESSAGE_TYPE_MESSAGE_ITERATOR_INACTIVITY:
        return nullptr;
    }
    return nullptr;
}

}  // namespace vmtrace::plugin
