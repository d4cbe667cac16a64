// SPDX-License-Identifier: MIT
#pragma once

#include <babeltrace2/babeltrace.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "bt2/shared_object.hpp"

namespace vmtrace::plugin {

// Mirrors upstream trace IR (traces, streams, packets, and their classes)
// into new objects owned by a filter, so that the filter can emit the same
// events under a different clock class.  Classes are copied once, on first
// use; per event only field values are copied.
//
// Every field class type of babeltrace2 2.0 is supported; dynamic array
// lengths and variant/option selectors are re-linked to the copies of
// their length/selector field classes.
class TraceIrCopier {
public:
    // Makes the output clock class for an input one.
    using ClockMaker = std::function<bt2::ClockClassRef(const bt_clock_class*)>;
    // Environment entries added to every output trace (string or signed
    // integer values).  Asked for when the output trace is created, before
    // its first stream exists (babeltrace2 freezes a trace, environment
    // included, once a message of one of its streams is created), so they
    // can describe the state at that moment.
    using EnvironmentValue = std::variant<std::string, std::int64_t>;
    using Environment = std::vector<std::pair<std::string, EnvironmentValue>>;
    using EnvironmentMaker = std::function<Environment()>;

    TraceIrCopier(bt_self_component* self, ClockMaker clock_maker, EnvironmentMaker extra_environment);

    // The output stream that mirrors `in` (created on first call); owned
    // by the copier.
    bt2::Borrowed<bt_stream> stream(const bt_stream* in);
    // The output packet that mirrors `in`, with its context copied; owned
    // by the copier until forget_packet().
    bt2::Borrowed<bt_packet> packet(const bt_packet* in);
    // Drops the mapping of a packet that ended.
    void forget_packet(const bt_packet* in);
    // The output event class that mirrors `in`; owned by the copier.
    bt2::Borrowed<bt_event_class> event_class(const bt_event_class* in);

    // Copies every field of `in` into `out` (same class layout).
    static void copy_event_fields(const bt_event* in, bt_event* out);
    static void copy_field(const bt_field* in, bt_field* out);

private:
    struct StreamClassMap {
        bt2::StreamClassRef out;
        // Each copy is owned by the class that holds it (a structure, an
        // event class, the stream class): borrowed here to resolve length
        // and selector paths.
        std::unordered_map<const bt_field_class*, bt2::Borrowed<bt_field_class>> field_classes;
        std::unordered_map<const bt_event_class*, bt2::EventClassRef> event_classes;
    };

    bt2::Borrowed<bt_trace_class> trace_class(const bt_trace_class* in);
    StreamClassMap& stream_class(const bt_stream_class* in);
    bt2::Borrowed<bt_trace> trace(const bt_trace* in);
    bt2::FieldClassRef copy_field_class(const bt_field_class* in, bt_trace_class* out_tc, StreamClassMap& map,
                                        const bt_stream_class* in_sc, const bt_event_class* in_ec);
    bt_field_class* resolve(const bt_field_path* path, StreamClassMap& map, const bt_stream_class* in_sc,
                            const bt_event_class* in_ec);

    bt_self_component* self_;
    ClockMaker clock_maker_;
    EnvironmentMaker extra_environment_;
    // Declared before the maps of their children: destroyed after them.
    std::unordered_map<const bt_trace_class*, bt2::TraceClassRef> trace_classes_;
    std::unordered_map<const bt_stream_class*, StreamClassMap> stream_classes_;
    std::unordered_map<const bt_clock_class*, bt2::ClockClassRef> clock_classes_;
    std::unordered_map<const bt_trace*, bt2::TraceRef> traces_;
    std::unordered_map<const bt_stream*, bt2::StreamRef> streams_;
    std::unordered_map<const bt_packet*, bt2::PacketRef> packets_;
};

}  // namespace vmtrace::plugin
