// SPDX-License-Identifier: MIT
#include "bt2/trace_ir_copy.hpp"

#include <fmt/format.h>

#include "bt2/error.hpp"

namespace vmtrace::plugin {
namespace {

bool is(const bt_field_class* fc, bt_field_class_type type) {
    return bt_field_class_type_is(bt_field_class_get_type(fc), type) != BT_FALSE;
}

}  // namespace

TraceIrCopier::TraceIrCopier(bt_self_component* self, ClockMaker clock_maker, EnvironmentMaker extra_environment)
    : self_(self), clock_maker_(std::move(clock_maker)), extra_environment_(std::move(extra_environment)) {}

bt2::Borrowed<bt_trace_class> TraceIrCopier::trace_class(const bt_trace_class* in) {
    auto it = trace_classes_.find(in);
    if (it != trace_classes_.end()) {
        return it->second.borrow();
    }
    auto out = bt2::TraceClassRef::adopt(bt2::check(bt_trace_class_create(self_), "trace class"));
    bt_trace_class_set_assigns_automatic_stream_class_id(out.get(), BT_FALSE);
    return trace_classes_.emplace(in, std::move(out)).first->second.borrow();
}

bt_field_class* TraceIrCopier::resolve(const bt_field_path* path, StreamClassMap& map, const bt_stream_class* in_sc,
                                       const bt_event_class* in_ec) {
    const bt_field_class* fc = nullptr;
    switch (bt_field_path_get_root_scope(path)) {
    case BT_FIELD_PATH_SCOPE_PACKET_CONTEXT:
        fc = bt_stream_class_borrow_packet_context_field_class_const(in_sc);
        break;
    case BT_FIELD_PATH_SCOPE_EVENT_COMMON_CONTEXT:
        fc = bt_stream_class_borrow_event_common_context_field_class_const(in_sc);
        break;
    case BT_FIELD_PATH_SCOPE_EVENT_SPECIFIC_CONTEXT:
        fc = in_ec != nullptr ? bt_event_class_borrow_specific_context_field_class_const(in_ec) : nullptr;
        break;
    case BT_FIELD_PATH_SCOPE_EVENT_PAYLOAD:
        fc = in_ec != nullptr ? bt_event_class_borrow_payload_field_class_const(in_ec) : nullptr;
        break;
    }
    for (std::uint64_t i = 0; fc != nullptr && i < bt_field_path_get_item_count(path); ++i) {
        const bt_field_path_item* item = bt_field_path_borrow_item_by_index_const(path, i);
        switch (bt_field_path_item_get_type(item)) {
        case BT_FIELD_PATH_ITEM_TYPE_INDEX: {
            const std::uint64_t index = bt_field_path_item_index_get_index(item);
            if (is(fc, BT_FIELD_CLASS_TYPE_STRUCTURE)) {
                fc = bt_field_class_structure_member_borrow_field_class_const(
                    bt_field_class_structure_borrow_member_by_index_const(fc, index));
            } else {
                fc = bt_field_class_variant_option_borrow_field_class_const(
                    bt_field_class_variant_borrow_option_by_index_const(fc, index));
            }
            break;
        }
        case BT_FIELD_PATH_ITEM_TYPE_CURRENT_ARRAY_ELEMENT:
            fc = bt_field_class_array_borrow_element_field_class_const(fc);
            break;
        case BT_FIELD_PATH_ITEM_TYPE_CURRENT_OPTION_CONTENT:
            fc = bt_field_class_option_borrow_field_class_const(fc);
            break;
        }
    }
    auto it = fc != nullptr ? map.field_classes.find(fc) : map.field_classes.end();
    if (it == map.field_classes.end()) {
        throw bt2::Error("cannot resolve a length or selector field path of an upstream field class");
    }
    return it->second.get();
}

bt2::FieldClassRef TraceIrCopier::copy_field_class(const bt_field_class* in, bt_trace_class* tc, StreamClassMap& map,
                                                   const bt_stream_class* in_sc, const bt_event_class* in_ec) {
    // Owned from its creation: an exception thrown while its members are
    // copied puts it.
    bt2::FieldClassRef out;
    const bt_field_class_type type = bt_field_class_get_type(in);
    if (type == BT_FIELD_CLASS_TYPE_BOOL) {
        out = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_bool_create(tc), "field class"));
    } else if (type == BT_FIELD_CLASS_TYPE_BIT_ARRAY) {
        out = bt2::FieldClassRef::adopt(
            bt2::check(bt_field_class_bit_array_create(tc, bt_field_class_bit_array_get_length(in)), "field class"));
    } else if (is(in, BT_FIELD_CLASS_TYPE_INTEGER)) {
        const bool is_signed = is(in, BT_FIELD_CLASS_TYPE_SIGNED_INTEGER);
        if (is(in, BT_FIELD_CLASS_TYPE_ENUMERATION)) {
            out = bt2::FieldClassRef::adopt(bt2::check(is_signed ? bt_field_class_enumeration_signed_create(tc)
                                                                 : bt_field_class_enumeration_unsigned_create(tc),
                                                       "field class"));
            for (std::uint64_t i = 0; i < bt_field_class_enumeration_get_mapping_count(in); ++i) {
                if (is_signed) {
                    const auto* m = bt_field_class_enumeration_signed_borrow_mapping_by_index_const(in, i);
                    bt2::check_status(bt_field_class_enumeration_signed_add_mapping(
                                          out.get(),
                                          bt_field_class_enumeration_mapping_get_label(
                                              bt_field_class_enumeration_signed_mapping_as_mapping_const(m)),
                                          bt_field_class_enumeration_signed_mapping_borrow_ranges_const(m)),
                                      "add enumeration mapping");
                } else {
                    const auto* m = bt_field_class_enumeration_unsigned_borrow_mapping_by_index_const(in, i);
                    bt2::check_status(bt_field_class_enumeration_unsigned_add_mapping(
                                          out.get(),
                                          bt_field_class_enumeration_mapping_get_label(
                                              bt_field_class_enumeration_unsigned_mapping_as_mapping_const(m)),
                                          bt_field_class_enumeration_unsigned_mapping_borrow_ranges_const(m)),
                                      "add enumeration mapping");
                }
            }
        } else {
            out = bt2::FieldClassRef::adopt(bt2::check(
                is_signed ? bt_field_class_integer_signed_create(tc) : bt_field_class_integer_unsigned_create(tc),
                "field class"));
        }
        bt_field_class_integer_set_field_value_range(out.get(), bt_field_class_integer_get_field_value_range(in));
        bt_field_class_integer_set_preferred_display_base(out.get(),
                                                          bt_field_class_integer_get_preferred_display_base(in));
    } else if (type == BT_FIELD_CLASS_TYPE_SINGLE_PRECISION_REAL) {
        out = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_real_single_precision_create(tc), "field class"));
    } else if (type == BT_FIELD_CLASS_TYPE_DOUBLE_PRECISION_REAL) {
        out = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_real_double_precision_create(tc), "field class"));
    } else if (type == BT_FIELD_CLASS_TYPE_STRING) {
        out = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_string_create(tc), "field class"));
    } else if (type == BT_FIELD_CLASS_TYPE_STRUCTURE) {
        out = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_structure_create(tc), "structure field class"));
        // Register before the members so their paths can resolve into it.
        map.field_classes[in] = out.borrow();
        for (std::uint64_t i = 0; i < bt_field_class_structure_get_member_count(in); ++i) {
            const auto* member = bt_field_class_structure_borrow_member_by_index_const(in, i);
            auto member_fc = copy_field_class(bt_field_class_structure_member_borrow_field_class_const(member), tc, map,
                                              in_sc, in_ec);
            bt2::check_status(bt_field_class_structure_append_member(
                                  out.get(), bt_field_class_structure_member_get_name(member), member_fc.get()),
                              "append structure member");
        }
    } else if (is(in, BT_FIELD_CLASS_TYPE_ARRAY)) {
        auto element =
            copy_field_class(bt_field_class_array_borrow_element_field_class_const(in), tc, map, in_sc, in_ec);
        if (type == BT_FIELD_CLASS_TYPE_STATIC_ARRAY) {
            out = bt2::FieldClassRef::adopt(bt2::check(
                bt_field_class_array_static_create(tc, element.get(), bt_field_class_array_static_get_length(in)),
                "field class"));
        } else if (type == BT_FIELD_CLASS_TYPE_DYNAMIC_ARRAY_WITH_LENGTH_FIELD) {
            bt_field_class* length = resolve(
                bt_field_class_array_dynamic_with_length_field_borrow_length_field_path_const(in), map, in_sc, in_ec);
            out = bt2::FieldClassRef::adopt(
                bt2::check(bt_field_class_array_dynamic_create(tc, element.get(), length), "field class"));
        } else {
            out = bt2::FieldClassRef::adopt(
                bt2::check(bt_field_class_array_dynamic_create(tc, element.get(), nullptr), "field class"));
        }
    } else if (is(in, BT_FIELD_CLASS_TYPE_OPTION)) {
        auto content = copy_field_class(bt_field_class_option_borrow_field_class_const(in), tc, map, in_sc, in_ec);
        if (type == BT_FIELD_CLASS_TYPE_OPTION_WITHOUT_SELECTOR_FIELD) {
            out = bt2::FieldClassRef::adopt(
                bt2::check(bt_field_class_option_without_selector_create(tc, content.get()), "field class"));
        } else {
            bt_field_class* selector = resolve(
                bt_field_class_option_with_selector_field_borrow_selector_field_path_const(in), map, in_sc, in_ec);
            if (type == BT_FIELD_CLASS_TYPE_OPTION_WITH_BOOL_SELECTOR_FIELD) {
                out = bt2::FieldClassRef::adopt(
                    bt2::check(bt_field_class_option_with_selector_field_bool_create(tc, content.get(), selector),
                               "option field class"));
                bt_field_class_option_with_selector_field_bool_set_selector_is_reversed(
                    out.get(), bt_field_class_option_with_selector_field_bool_selector_is_reversed(in));
            } else if (type == BT_FIELD_CLASS_TYPE_OPTION_WITH_UNSIGNED_INTEGER_SELECTOR_FIELD) {
                out = bt2::FieldClassRef::adopt(bt2::check(
                    bt_field_class_option_with_selector_field_integer_unsigned_create(
                        tc, content.get(), selector,
                        bt_field_class_option_with_selector_field_integer_unsigned_borrow_selector_ranges_const(in)),
                    "field class"));
            } else {
                out = bt2::FieldClassRef::adopt(bt2::check(
                    bt_field_class_option_with_selector_field_integer_signed_create(
                        tc, content.get(), selector,
                        bt_field_class_option_with_selector_field_integer_signed_borrow_selector_ranges_const(in)),
                    "field class"));
            }
        }
    } else if (is(in, BT_FIELD_CLASS_TYPE_VARIANT)) {
        bt_field_class* selector = nullptr;
        if (type != BT_FIELD_CLASS_TYPE_VARIANT_WITHOUT_SELECTOR_FIELD) {
            selector = resolve(bt_field_class_variant_with_selector_field_borrow_selector_field_path_const(in), map,
                               in_sc, in_ec);
        }
        out = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_variant_create(tc, selector), "variant field class"));
        map.field_classes[in] = out.borrow();
        for (std::uint64_t i = 0; i < bt_field_class_variant_get_option_count(in); ++i) {
            const auto* option = bt_field_class_variant_borrow_option_by_index_const(in, i);
            auto option_fc =
                copy_field_class(bt_field_class_variant_option_borrow_field_class_const(option), tc, map, in_sc, in_ec);
            const char* name = bt_field_class_variant_option_get_name(option);
            if (type == BT_FIELD_CLASS_TYPE_VARIANT_WITHOUT_SELECTOR_FIELD) {
                bt2::check_status(
                    bt_field_class_variant_without_selector_append_option(out.get(), name, option_fc.get()),
                    "append variant option");
            } else if (type == BT_FIELD_CLASS_TYPE_VARIANT_WITH_UNSIGNED_INTEGER_SELECTOR_FIELD) {
                const auto* with =
                    bt_field_class_variant_with_selector_field_integer_unsigned_borrow_option_by_index_const(in, i);
                bt2::check_status(
                    bt_field_class_variant_with_selector_field_integer_unsigned_append_option(
                        out.get(), name, option_fc.get(),
                        bt_field_class_variant_with_selector_field_integer_unsigned_option_borrow_ranges_const(with)),
                    "append variant option");
            } else {
                const auto* with =
                    bt_field_class_variant_with_selector_field_integer_signed_borrow_option_by_index_const(in, i);
                bt2::check_status(
                    bt_field_class_variant_with_selector_field_integer_signed_append_option(
                        out.get(), name, option_fc.get(),
                        bt_field_class_variant_with_selector_field_integer_signed_option_borrow_ranges_const(with)),
                    "append variant option");
            }
        }
    }
    if (!out) {
        throw bt2::CallError(fmt::format("cannot copy a field class of type {:#x}", static_cast<std::uint64_t>(type)));
    }
    map.field_classes[in] = out.borrow();
    return out;
}

TraceIrCopier::StreamClassMap& TraceIrCopier::stream_class(const bt_stream_class* in) {
    auto it = stream_classes_.find(in);
    if (it != stream_classes_.end()) {
        return it->second;
    }
    bt_trace_class* tc = trace_class(bt_stream_class_borrow_trace_class_const(in)).get();
    StreamClassMap map;
    map.out = bt2::StreamClassRef::adopt(
        bt2::check(bt_stream_class_create_with_id(tc, bt_stream_class_get_id(in)), "stream class"));
    bt_stream_class* out_sc = map.out.get();
    if (const char* name = bt_stream_class_get_name(in)) {
        bt2::check_status(bt_stream_class_set_name(out_sc, name), "set stream class name");
    }
    if (const bt_clock_class* in_cc = bt_stream_class_borrow_default_clock_class_const(in)) {
        auto cc = clock_classes_.find(in_cc);
        if (cc == clock_classes_.end()) {
            cc = clock_classes_.emplace(in_cc, clock_maker_(in_cc)).first;
        }
        bt2::check_status(bt_stream_class_set_default_clock_class(out_sc, cc->second.get()), "set default clock class");
    }
    bt_stream_class_set_supports_packets(out_sc, bt_stream_class_supports_packets(in),
                                         bt_stream_class_packets_have_beginning_default_clock_snapshot(in),
                                         bt_stream_class_packets_have_end_default_clock_snapshot(in));
    bt_stream_class_set_supports_discarded_events(out_sc, bt_stream_class_supports_discarded_events(in),
                                                  bt_stream_class_discarded_events_have_default_clock_snapshots(in));
    bt_stream_class_set_supports_discarded_packets(out_sc, bt_stream_class_supports_discarded_packets(in),
                                                   bt_stream_class_discarded_packets_have_default_clock_snapshots(in));
    bt_stream_class_set_assigns_automatic_event_class_id(out_sc, BT_FALSE);
    bt_stream_class_set_assigns_automatic_stream_id(out_sc, BT_FALSE);
    if (const bt_field_class* fc = bt_stream_class_borrow_packet_context_field_class_const(in)) {
        auto out = copy_field_class(fc, tc, map, in, nullptr);
        bt2::check_status(bt_stream_class_set_packet_context_field_class(out_sc, out.get()), "set packet context");
    }
    if (const bt_field_class* fc = bt_stream_class_borrow_event_common_context_field_class_const(in)) {
        auto out = copy_field_class(fc, tc, map, in, nullptr);
        bt2::check_status(bt_stream_class_set_event_common_context_field_class(out_sc, out.get()),
                          "set event common context");
    }
    return stream_classes_.emplace(in, std::move(map)).first->second;
}

bt2::Borrowed<bt_event_class> TraceIrCopier::event_class(const bt_event_class* in) {
    const bt_stream_class* in_sc = bt_event_class_borrow_stream_class_const(in);
    StreamClassMap& map = stream_class(in_sc);
    auto it = map.event_classes.find(in);
    if (it != map.event_classes.end()) {
        return it->second.borrow();
    }
    bt_trace_class* tc = bt_stream_class_borrow_trace_class(map.out.get());
    auto owned = bt2::EventClassRef::adopt(
        bt2::check(bt_event_class_create_with_id(map.out.get(), bt_event_class_get_id(in)), "event class"));
    bt_event_class* out = owned.get();
    if (const char* name = bt_event_class_get_name(in)) {
        bt2::check_status(bt_event_class_set_name(out, name), "set event class name");
    }
    bt_event_class_log_level level;
    if (bt_event_class_get_log_level(in, &level) == BT_PROPERTY_AVAILABILITY_AVAILABLE) {
        bt_event_class_set_log_level(out, level);
    }
    if (const char* uri = bt_event_class_get_emf_uri(in)) {
        bt2::check_status(bt_event_class_set_emf_uri(out, uri), "set EMF URI");
    }
    if (const bt_field_class* fc = bt_event_class_borrow_specific_context_field_class_const(in)) {
        auto copy = copy_field_class(fc, tc, map, in_sc, in);
        bt2::check_status(bt_event_class_set_specific_context_field_class(out, copy.get()), "set specific context");
    }
    if (const bt_field_class* fc = bt_event_class_borrow_payload_field_class_const(in)) {
        auto copy = copy_field_class(fc, tc, map, in_sc, in);
        bt2::check_status(bt_event_class_set_payload_field_class(out, copy.get()), "set payload");
    }
    return map.event_classes.emplace(in, std::move(owned)).first->second.borrow();
}

bt2::Borrowed<bt_trace> TraceIrCopier::trace(const bt_trace* in) {
    auto it = traces_.find(in);
    if (it != traces_.end()) {
        return it->second.borrow();
    }
    auto out =
        bt2::TraceRef::adopt(bt2::check(bt_trace_create(trace_class(bt_trace_borrow_class_const(in)).get()), "trace"));
    if (const char* name = bt_trace_get_name(in)) {
        bt2::check_status(bt_trace_set_name(out.get(), name), "set trace name");
    }
    if (const bt_uuid uuid = bt_trace_get_uuid(in)) {
        bt_trace_set_uuid(out.get(), uuid);
    }
    for (std::uint64_t i = 0; i < bt_trace_get_environment_entry_count(in); ++i) {
        const char* name = nullptr;
        const bt_value* value = nullptr;
        bt_trace_borrow_environment_entry_by_index_const(in, i, &name, &value);
        if (bt_value_is_signed_integer(value)) {
            bt2::check_status(
                bt_trace_set_environment_entry_integer(out.get(), name, bt_value_integer_signed_get(value)),
                "set environment entry");
        } else if (bt_value_is_string(value)) {
            bt2::check_status(bt_trace_set_environment_entry_string(out.get(), name, bt_value_string_get(value)),
                              "set environment entry");
        }
    }
    if (extra_environment_) {
        for (const auto& [name, value] : extra_environment_()) {
            if (const auto* text = std::get_if<std::string>(&value)) {
                bt2::check_status(bt_trace_set_environment_entry_string(out.get(), name.c_str(), text->c_str()),
                                  "set environment entry");
            } else {
                bt2::check_status(
                    bt_trace_set_environment_entry_integer(out.get(), name.c_str(), std::get<std::int64_t>(value)),
                    "set environment entry");
            }
        }
    }
    return traces_.emplace(in, std::move(out)).first->second.borrow();
}

bt2::Borrowed<bt_stream> TraceIrCopier::stream(const bt_stream* in) {
    auto it = streams_.find(in);
    if (it != streams_.end()) {
        return it->second.borrow();
    }
    StreamClassMap& map = stream_class(bt_stream_borrow_class_const(in));
    bt_trace* out_trace = trace(bt_stream_borrow_trace_const(in)).get();
    auto out = bt2::StreamRef::adopt(
        bt2::check(bt_stream_create_with_id(map.out.get(), out_trace, bt_stream_get_id(in)), "stream"));
    if (const char* name = bt_stream_get_name(in)) {
        bt2::check_status(bt_stream_set_name(out.get(), name), "set stream name");
    }
    return streams_.emplace(in, std::move(out)).first->second.borrow();
}

bt2::Borrowed<bt_packet> TraceIrCopier::packet(const bt_packet* in) {
    auto it = packets_.find(in);
    if (it != packets_.end()) {
        return it->second.borrow();
    }
    auto out =
        bt2::PacketRef::adopt(bt2::check(bt_packet_create(stream(bt_packet_borrow_stream_const(in)).get()), "packet"));
    if (const bt_field* context = bt_packet_borrow_context_field_const(in)) {
        copy_field(context, bt_packet_borrow_context_field(out.get()));
    }
    return packets_.emplace(in, std::move(out)).first->second.borrow();
}

void TraceIrCopier::forget_packet(const bt_packet* in) {
    packets_.erase(in);
}

void TraceIrCopier::copy_event_fields(const bt_event* in, bt_event* out) {
    if (const bt_field* f = bt_event_borrow_common_context_field_const(in)) {
        copy_field(f, bt_event_borrow_common_context_field(out));
    }
    if (const bt_field* f = bt_event_borrow_specific_context_field_const(in)) {
        copy_field(f, bt_event_borrow_specific_context_field(out));
    }
    if (const bt_field* f = bt_event_borrow_payload_field_const(in)) {
        copy_field(f, bt_event_borrow_payload_field(out));
    }
}

void TraceIrCopier::copy_field(const bt_field* in, bt_field* out) {
    const bt_field_class_type type = bt_field_get_class_type(in);
    if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_UNSIGNED_INTEGER)) {
        bt_field_integer_unsigned_set_value(out, bt_field_integer_unsigned_get_value(in));
    } else if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_SIGNED_INTEGER)) {
        bt_field_integer_signed_set_value(out, bt_field_integer_signed_get_value(in));
    } else if (type == BT_FIELD_CLASS_TYPE_STRING) {
        bt2::check_status(bt_field_string_set_value(out, bt_field_string_get_value(in)), "copy string field");
    } else if (type == BT_FIELD_CLASS_TYPE_STRUCTURE) {
        const std::uint64_t count = bt_field_class_structure_get_member_count(bt_field_borrow_class_const(in));
        for (std::uint64_t i = 0; i < count; ++i) {
            copy_field(bt_field_structure_borrow_member_field_by_index_const(in, i),
                       bt_field_structure_borrow_member_field_by_index(out, i));
        }
    } else if (type == BT_FIELD_CLASS_TYPE_BOOL) {
        bt_field_bool_set_value(out, bt_field_bool_get_value(in));
    } else if (type == BT_FIELD_CLASS_TYPE_BIT_ARRAY) {
        bt_field_bit_array_set_value_as_integer(out, bt_field_bit_array_get_value_as_integer(in));
    } else if (type == BT_FIELD_CLASS_TYPE_SINGLE_PRECISION_REAL) {
        bt_field_real_single_precision_set_value(out, bt_field_real_single_precision_get_value(in));
    } else if (type == BT_FIELD_CLASS_TYPE_DOUBLE_PRECISION_REAL) {
        bt_field_real_double_precision_set_value(out, bt_field_real_double_precision_get_value(in));
    } else if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_ARRAY)) {
        const std::uint64_t length = bt_field_array_get_length(in);
        if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_DYNAMIC_ARRAY)) {
            bt2::check_status(bt_field_array_dynamic_set_length(out, length), "set array length");
        }
        for (std::uint64_t i = 0; i < length; ++i) {
            copy_field(bt_field_array_borrow_element_field_by_index_const(in, i),
                       bt_field_array_borrow_element_field_by_index(out, i));
        }
    } else if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_OPTION)) {
        const bt_field* content = bt_field_option_borrow_field_const(in);
        bt_field_option_set_has_field(out, content != nullptr ? BT_TRUE : BT_FALSE);
        if (content != nullptr) {
            copy_field(content, bt_field_option_borrow_field(out));
        }
    } else if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_VARIANT)) {
        bt2::check_status(bt_field_variant_select_option_by_index(out, bt_field_variant_get_selected_option_index(in)),
                          "select variant option");
        copy_field(bt_field_variant_borrow_selected_option_field_const(in),
                   bt_field_variant_borrow_selected_option_field(out));
    } else {
        throw bt2::Error(fmt::format("cannot copy a field of type {:#x}", static_cast<std::uint64_t>(type)));
    }
}

}  // namespace vmtrace::plugin
