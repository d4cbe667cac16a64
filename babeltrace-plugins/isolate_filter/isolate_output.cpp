// SPDX-License-Identifier: MIT
// filter.vmtrace.isolate: writing the per-VM traces (vm-NAME) and the host
// trace, one stream per host CPU each, events vmtrace_isolated_access.
#include <fmt/format.h>

#include "bt2/error.hpp"
#include "bt2/schema_field_class.hpp"
#include "isolate_filter/isolate_state.hpp"
#include "schema/events.hpp"

namespace vmtrace::plugin::isolatefilter {
namespace out = vmtrace::schema::vmtrace_isolated_access;

namespace {

// The output's metadata, made at the first access: one trace class for
// every output trace, and a clock class that counts the host's time.
void make_classes(IsolateIterator& it) {
    bt_self_component* self = bt_self_message_iterator_borrow_component(it.self);
    it.trace_class = bt2::TraceClassRef::adopt(bt2::check(bt_trace_class_create(self), "trace class"));
    bt_trace_class* tc = it.trace_class.get();
    it.clock_class = bt2::ClockClassRef::adopt(bt2::check(bt_clock_class_create(self), "clock class"));
    bt_clock_class* cc = it.clock_class.get();
    bt2::check_status(bt_clock_class_set_name(cc, "monotonic"), "set clock class name");
    bt2::check_status(bt_clock_class_set_description(cc, "The host's time base"), "set clock description");
    bt_clock_class_set_frequency(cc, 1'000'000'000);
    // The origin of the host's clock (the memory trace's, synchronised),
    // in whole seconds: values stay small and positive.
    std::int64_t seconds = 0;
    std::uint64_t cycles = 0;
    if (it.tracer != nullptr && it.tracer->clock_class != nullptr) {
        bt_clock_class_get_offset(it.tracer->clock_class, &seconds, &cycles);
    }
    seconds = std::max<std::int64_t>(seconds, 0);
    bt_clock_class_set_offset(cc, seconds, 0);
    it.clock_offset_ns = seconds * 1'000'000'000;
    bt_clock_class_set_origin_is_unix_epoch(cc, BT_TRUE);

    it.stream_class = bt2::StreamClassRef::adopt(bt2::check(bt_stream_class_create(tc), "stream class"));
    bt_stream_class* sc = it.stream_class.get();
    bt2::check_status(bt_stream_class_set_default_clock_class(sc, cc), "set default clock class");
    bt_stream_class_set_supports_packets(sc, BT_TRUE, BT_TRUE, BT_TRUE);
    auto context = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_structure_create(tc), "packet context"));
    auto cpu_id = bt2::schema_field_class(tc, schema::FieldType::u32, 10);
    bt2::check_status(bt_field_class_structure_append_member(context.get(), "cpu_id", cpu_id.get()), "append cpu_id");
    bt2::check_status(bt_stream_class_set_packet_context_field_class(sc, context.get()), "set packet context");

    it.event_class = bt2::EventClassRef::adopt(bt2::check(bt_event_class_create(sc), "event class"));
    const std::string name(out::event_name);
    bt2::check_status(bt_event_class_set_name(it.event_class.get(), name.c_str()), "set event class name");
    auto payload = bt2::FieldClassRef::adopt(bt2::check(bt_field_class_structure_create(tc), "payload"));
    for (const schema::Field& field : out::fields) {
        auto member = bt2::schema_field_class(tc, field.type, field.base);
        const std::string member_name(field.name);
        bt2::check_status(bt_field_class_structure_append_member(payload.get(), member_name.c_str(), member.get()),
                          "append payload member");
    }
    bt2::check_status(bt_event_class_set_payload_field_class(it.event_class.get(), payload.get()), "set payload");
}

std::unique_ptr<OutputTrace> make_trace(IsolateIterator& it, const std::string& name, int vm) {
    auto output = std::make_unique<OutputTrace>();
    output->name = name;
    output->trace = bt2::TraceRef::adopt(bt2::check(bt_trace_create(it.trace_class.get()), "trace"));
    bt_trace* trace = output->trace.get();
    bt2::check_status(bt_trace_set_name(trace, name.c_str()), "set trace name");
    auto env = [&](const char* key, const std::string& value) {
        bt2::check_status(bt_trace_set_environment_entry_string(trace, key, value.c_str()), "set environment entry");
    };
    env("domain", "ust");
    env("tracer_name", "vmtrace-isolate");
    env("vmtrace_time_base", fmt::format("host {}", it.host != nullptr ? it.host->name : "?"));
    if (vm >= 0) {
        env("vmtrace_vm", it.vm_names.at(static_cast<std::size_t>(vm)));
        bt2::check_status(bt_trace_set_environment_entry_integer(trace, "vmtrace_vm_pid", it.join->vm_pid(vm)),
                          "set environment entry");
    } else {
        env("vmtrace_vm", "");
    }
    return output;
}

OutputTrace& output_of(IsolateIterator& it, int vm) {
    if (!it.trace_class) {
        make_classes(it);
    }
    if (vm < 0) {
        if (!it.host_output) {
            it.host_output = make_trace(it, "host", -1);
        }
        return *it.host_output;
    }
    const auto index = static_cast<std::size_t>(vm);
    if (it.vm_outputs.size() <= index) {
        it.vm_outputs.resize(index + 1);
    }
    if (!it.vm_outputs[index]) {
        if (it.vm_names.size() <= index) {
            it.vm_names.resize(index + 1);
        }
        std::string& name = it.vm_names[index];
        if (name.empty()) {
            // No guest trace of this VM: its QEMU process names it.
            const std::int32_t pid = it.join->vm_pid(vm);
            const auto comm = it.vm_comm.find(pid);
            name = safe_name(fmt::format("{}-{}", comm != it.vm_comm.end() ? comm->second : "pid", pid));
            it.report.name_vm(vm, name, pid);
        }
        it.vm_outputs[index] = make_trace(it, "vm-" + name, vm);
    }
    return *it.vm_outputs[index];
}

void open_packet(IsolateIterator& it, OutputTrace::Stream& s, std::uint32_t cpu, std::uint64_t value) {
    s.packet = bt2::PacketRef::adopt(bt2::check(bt_packet_create(s.stream.get()), "packet"));
    bt_field* context = bt_packet_borrow_context_field(s.packet.get());
    bt_field_integer_unsigned_set_value(bt_field_structure_borrow_member_field_by_index(context, 0), cpu);
    it.pending.push_back(bt2::MessageRef::adopt(
        bt2::check(bt_message_packet_beginning_create_with_default_clock_snapshot(it.self, s.packet.get(), value),
                   "packet beginning message")));
    s.in_packet = 0;
}

void close_packet(IsolateIterator& it, OutputTrace::Stream& s, std::uint64_t value) {
    it.pending.push_back(bt2::MessageRef::adopt(
        bt2::check(bt_message_packet_end_create_with_default_clock_snapshot(it.self, s.packet.get(), value),
                   "packet end message")));
    s.packet.reset();
}

}  // namespace

void write_access(IsolateIterator& it, const isolate::Access& access, const isolate::Result& result) {
    if (it.truth) {
        it.truth->check(access, result,
                        result.vm >= 0 && static_cast<std::size_t>(result.vm) < it.vm_names.size()
                            ? it.vm_names[static_cast<std::size_t>(result.vm)]
                            : "");
    }
    it.report.add(access, result);
    OutputTrace& output = output_of(it, result.vm);
    if (access.time < it.clock_offset_ns) {
        throw bt2::Error(
            fmt::format("memory access {} at {} ns falls before the host clock's origin", access.user, access.time));
    }
    // The join hands accesses out in input order, which is time order; a
    // value never goes back, so that the output stays ordered.
    const std::uint64_t value = std::max(static_cast<std::uint64_t>(access.time - it.clock_offset_ns), it.last_value);
    it.last_value = value;
    auto [entry, created] = output.streams.try_emplace(access.cpu);
    OutputTrace::Stream& s = entry->second;
    if (created) {
        s.stream =
            bt2::StreamRef::adopt(bt2::check(bt_stream_create(it.stream_class.get(), output.trace.get()), "stream"));
        it.pending.push_back(bt2::MessageRef::adopt(
            bt2::check(bt_message_stream_beginning_create(it.self, s.stream.get()), "stream beginning message")));
        open_packet(it, s, access.cpu, value);
    } else if (s.in_packet >= it.component->config.packet_events) {
        close_packet(it, s, value);
        open_packet(it, s, access.cpu, value);
    }
    ++s.in_packet;
    bt_message* msg = bt2::check(bt_message_event_create_with_packet_and_default_clock_snapshot(
                                     it.self, it.event_class.get(), s.packet.get(), value),
                                 "event message");
    it.pending.push_back(bt2::MessageRef::adopt(msg));
    bt_field* p = bt_event_borrow_payload_field(bt_message_event_borrow_event(msg));
    auto set_u = [p](const schema::Field& f, std::uint64_t v) {
        bt_field_integer_unsigned_set_value(bt_field_structure_borrow_member_field_by_index(p, f.index), v);
    };
    auto set_s = [p](const schema::Field& f, std::int64_t v) {
        bt_field_integer_signed_set_value(bt_field_structure_borrow_member_field_by_index(p, f.index), v);
    };
    // NUL-terminated text: the attribution names are literals, a comm
    // lives in the join (no copy per event).
    auto set_text = [p](const schema::Field& f, const char* v) {
        bt2::check_status(bt_field_string_set_value(bt_field_structure_borrow_member_field_by_index(p, f.index), v),
                          "set string field");
    };
    set_u(out::cpu, access.cpu);
    set_u(out::hpa, access.hpa);
    set_u(out::size, access.size);
    set_u(out::kind, access.kind);
    set_text(out::attribution, isolate::to_string(result.attribution).data());
    set_u(out::gpa, result.gpa);
    set_u(out::gva, result.gva);
    set_s(out::pid, result.pid);
    set_s(out::tid, result.tid);
    set_text(out::comm, result.comm != nullptr ? result.comm->c_str() : "");
    set_s(out::host_tid, result.host_tid);
    set_u(out::candidates, result.candidates);
    if (it.va_in_flight.empty() || it.va_in_flight.front().first != access.user) {
        throw bt2::Error(fmt::format("memory access {}: released by the join out of input order", access.user));
    }
    set_u(out::va, it.va_in_flight.front().second);
    it.report.check_va(result, it.va_in_flight.front().second);
    it.va_in_flight.pop_front();
    ++output.events;
    ++it.records_out;
}

void close_outputs(IsolateIterator& it) {
    auto close = [&](OutputTrace* output) {
        if (output == nullptr) {
            return;
        }
        for (auto& [cpu, s] : output->streams) {
            close_packet(it, s, it.last_value);
            it.pending.push_back(bt2::MessageRef::adopt(
                bt2::check(bt_message_stream_end_create(it.self, s.stream.get()), "stream end message")));
        }
    };
    for (auto& output : it.vm_outputs) {
        close(output.get());
    }
    close(it.host_output.get());
}

}  // namespace vmtrace::plugin::isolatefilter
