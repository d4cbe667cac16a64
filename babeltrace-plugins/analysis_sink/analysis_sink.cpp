// SPDX-License-Identifier: MIT
// sink.vmtrace.analysis: the analyses of docs/analysis-output.md over a
// host trace and its synchronised guests (filter.vmtrace.sync's output, or
// a host trace alone through filter.utils.muxer).
//
// Machines are told apart by trace: the trace that declares KVM or vmsync
// host events is the host; a trace that filter.vmtrace.sync rewrote
// (environment entry vmtrace_time_base) is a guest on the host's time
// base.  A guest trace that was not synchronised cannot be placed on the
// host's time base: its events are counted, skipped and reported.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bt2/error.hpp"
#include "bt2/params.hpp"
#include "bt2/progress_line.hpp"
#include "bt2/shared_object.hpp"
#include "bt2/trace_ir_read.hpp"
#include "lib/analysis/analysis_engine.hpp"
#include "plugin/entry_points.h"
#include "schema/events.hpp"

namespace vmtrace::plugin {
namespace {

using analysis::EventKind;
using analysis::TraceEvent;

namespace ev = schema;

// Where a decoded kind's fields come from: member indices of the payload,
// in the order the kind's table below lists them; -1 for an optional
// field the event class does not have.
struct Decoder {
    EventKind kind = EventKind::other;
    std::array<std::int64_t, 6> member{};
    std::array<bool, 6> is_string{};
    unsigned machine = 0;
    bool skip = false;  // an unsynchronised guest's event
    std::string_view name;
};

// A field the analyses read: its schema entry (name, type), or none for a
// slot of the kind this event does not have.
struct FieldSpec {
    const ev::Field* field;
    bool required;
};

struct KindSpec {
    const ev::Event* event;  // the schema's event: its fields' declared types
    std::string_view alias;  // lttng-modules' older name of the same event, or ""
    EventKind kind;
    std::vector<FieldSpec> fields;  // the kind's slots, in TraceEvent's order
};

// docs/events.json (through schema/events.hpp): the events and fields the
// analyses read.
const std::vector<KindSpec>& kind_specs() {
    using F = FieldSpec;
    static const std::vector<KindSpec> specs = {
        {&ev::event(ev::EventId::sched_switch),
         "",
         EventKind::sched_switch,
         {{&ev::sched_switch::prev_comm, true},
          {&ev::sched_switch::prev_tid, true},
          {&ev::sched_switch::prev_state, true},
          {&ev::sched_switch::next_comm, true},
          {&ev::sched_switch::next_tid, true}}},
        {&ev::event(ev::EventId::sched_migrate_task),
         "",
         EventKind::sched_migrate_task,
         {{&ev::sched_migrate_task::comm, true},
          {&ev::sched_migrate_task::tid, true},
          {&ev::sched_migrate_task::orig_cpu, true},
          {&ev::sched_migrate_task::dest_cpu, true}}},
        {&ev::event(ev::EventId::kvm_x86_entry),
         "kvm_entry",
         EventKind::kvm_entry,
         {{&ev::kvm_x86_entry::vcpu_id, true}, {&ev::kvm_x86_entry::rip, false}}},
        {&ev::event(ev::EventId::kvm_x86_exit),
         "kvm_exit",
         EventKind::kvm_exit,
         {{&ev::kvm_x86_exit::vcpu_id, true},
          {&ev::kvm_x86_exit::exit_reason, true},
          {&ev::kvm_x86_exit::isa, false},
          {&ev::kvm_x86_exit::info1, false},
          {&ev::kvm_x86_exit::info2, false},
          {&ev::kvm_x86_exit::intr_info, false},
          {&ev::kvm_x86_exit::guest_rip, false}}},
        // the handler events: vcpu_id, then TraceEvent::args in schema order
        {&ev::event(ev::EventId::kvm_x86_pio),
         "",
         EventKind::kvm_pio,
         {{&ev::kvm_x86_pio::vcpu_id, true},
          {&ev::kvm_x86_pio::rw, true},
          {&ev::kvm_x86_pio::port, true},
          {&ev::kvm_x86_pio::size, true},
          {&ev::kvm_x86_pio::count, true},
          {&ev::kvm_x86_pio::val, true}}},
        {&ev::event(ev::EventId::kvm_x86_mmio),
         "",
         EventKind::kvm_mmio,
         {{&ev::kvm_x86_mmio::vcpu_id, true},
          {&ev::kvm_x86_mmio::type, true},
          {&ev::kvm_x86_mmio::len, true},
          {&ev::kvm_x86_mmio::gpa, true},
          {&ev::kvm_x86_mmio::val, true}}},
        {&ev::event(ev::EventId::kvm_x86_msr),
         "",
         EventKind::kvm_msr,
         {{&ev::kvm_x86_msr::vcpu_id, true},
          {&ev::kvm_x86_msr::write, true},
          {&ev::kvm_x86_msr::index, true},
          {&ev::kvm_x86_msr::data, true},
          {&ev::kvm_x86_msr::exception, true}}},
        {&ev::event(ev::EventId::kvm_x86_msr_user),
         "",
         EventKind::kvm_msr_user,
         {{&ev::kvm_x86_msr_user::vcpu_id, true},
          {&ev::kvm_x86_msr_user::index, true},
          {&ev::kvm_x86_msr_user::data, true},
          {&ev::kvm_x86_msr_user::error, true}}},
        {&ev::event(ev::EventId::kvm_x86_inj_exception),
         "",
         EventKind::kvm_inj_exception,
         {{&ev::kvm_x86_inj_exception::vcpu_id, true},
          {&ev::kvm_x86_inj_exception::vector, true},
          {&ev::kvm_x86_inj_exception::has_error, true},
          {&ev::kvm_x86_inj_exception::error_code, true},
          {&ev::kvm_x86_inj_exception::reinjected, true}}},
        {&ev::event(ev::EventId::kvm_x86_inj_virq),
         "",
         EventKind::kvm_inj_virq,
         {{&ev::kvm_x86_inj_virq::vcpu_id, true},
          {&ev::kvm_x86_inj_virq::vector, true},
          {&ev::kvm_x86_inj_virq::soft, true},
          {&ev::kvm_x86_inj_virq::reinjected, true}}},
        {&ev::event(ev::EventId::kvm_x86_hypercall),
         "",
         EventKind::kvm_hypercall,
         {{&ev::kvm_x86_hypercall::vcpu_id, true},
          {&ev::kvm_x86_hypercall::nr, true},
          {&ev::kvm_x86_hypercall::a0, true},
          {&ev::kvm_x86_hypercall::a1, true},
          {&ev::kvm_x86_hypercall::a2, true},
          {&ev::kvm_x86_hypercall::a3, true}}},
        {&ev::event(ev::EventId::vmsync_gh_host),
         "",
         EventKind::vmsync_host,
         {{&ev::vmsync_gh_host::vm_uid, true}, {&ev::vmsync_gh_host::vcpu_id, true}}},
        {&ev::event(ev::EventId::vmsync_hg_host),
         "",
         EventKind::vmsync_host,
         {{&ev::vmsync_hg_host::vm_uid, true}, {&ev::vmsync_hg_host::vcpu_id, true}}},
        // vcpu_thread: vm_pid, vcpu_id, tid, vm_comm
        {&ev::event(ev::EventId::kvm_vm_vcpu_thread),
         "",
         EventKind::vcpu_thread,
         {{&ev::kvm_vm_vcpu_thread::vm_pid, true},
          {&ev::kvm_vm_vcpu_thread::vcpu_id, true},
          {&ev::kvm_vm_vcpu_thread::tid, true},
          {&ev::kvm_vm_vcpu_thread::vm_comm, false}}},
        {&ev::event(ev::EventId::kvm_vm_statedump_vcpu),
         "",
         EventKind::vcpu_thread,
         {{&ev::kvm_vm_statedump_vcpu::vm_pid, true},
          {&ev::kvm_vm_statedump_vcpu::vcpu_id, true},
          {&ev::kvm_vm_statedump_vcpu::tid, true},
          F{nullptr, false}}},
        {&ev::event(ev::EventId::kvm_vm_statedump_vm),
         "",
         EventKind::vcpu_thread,
         {{&ev::kvm_vm_statedump_vm::vm_pid, true},
          F{nullptr, false},
          F{nullptr, false},
          {&ev::kvm_vm_statedump_vm::vm_comm, false}}},
        {&ev::event(ev::EventId::lttng_statedump_process_state),
         "",
         EventKind::process_state,
         {{&ev::lttng_statedump_process_state::tid, true},
          {&ev::lttng_statedump_process_state::pid, true},
          {&ev::lttng_statedump_process_state::name, true}}},
    };
    return specs;
}

// The KVM and vmsync events only a host records (docs/events.json's
// machines), and lttng-modules' older names of KVM's entry and exit.
bool declares_host_events(const bt_trace_class* tc) {
    return declares_event(tc, {ev::kvm_x86_entry::event_name, "kvm_entry", ev::kvm_x86_exit::event_name, "kvm_exit",
                               ev::vmsync_gh_host::event_name, ev::vmsync_hg_host::event_name});
}

const KindSpec* kind_spec(std::string_view name) {
    for (const KindSpec& spec : kind_specs()) {
        if (spec.event->name == name || (!spec.alias.empty() && spec.alias == name)) {
            return &spec;
        }
    }
    return nullptr;
}

unsigned schema_bits(ev::FieldType type) {
    switch (type) {
    case ev::FieldType::u8:
        return 8;
    case ev::FieldType::u16:
        return 16;
    case ev::FieldType::u32:
    case ev::FieldType::s32:
        return 32;
    case ev::FieldType::u64:
    case ev::FieldType::s64:
        return 64;
    case ev::FieldType::string:
        break;
    }
    return 0;
}

const char* schema_type_name(ev::FieldType type) {
    switch (type) {
    case ev::FieldType::u8:
        return "u8";
    case ev::FieldType::u16:
        return "u16";
    case ev::FieldType::u32:
        return "u32";
    case ev::FieldType::u64:
        return "u64";
    case ev::FieldType::s32:
        return "s32";
    case ev::FieldType::s64:
        return "s64";
    case ev::FieldType::string:
        break;
    }
    return "string";
}

// Checks the fields an event class declares against docs/events.json: a
// field wider than the schema says (a 64-bit prev_tid) would be read into
// garbage, a string where an integer belongs not at all.  Fields the
// schema does not list are not read and not checked.
void check_event_class(const std::string& trace, const bt_event_class* ec) {
    const char* name = bt_event_class_get_name(ec);
    const KindSpec* spec = name != nullptr ? kind_spec(name) : nullptr;
    const bt_field_class* payload = bt_event_class_borrow_payload_field_class_const(ec);
    if (spec == nullptr || payload == nullptr) {
        return;
    }
    for (const ev::Field& field : spec->event->fields) {
        const bt_field_class_structure_member* member =
            bt_field_class_structure_borrow_member_by_name_const(payload, std::string(field.name).c_str());
        if (member == nullptr) {
            continue;  // a required field's absence is reported by decoder_of
        }
        const bt_field_class* fc = bt_field_class_structure_member_borrow_field_class_const(member);
        const bt_field_class_type type = bt_field_class_get_type(fc);
        std::string declared;
        if (field.type == ev::FieldType::string) {
            if (type == BT_FIELD_CLASS_TYPE_STRING) {
                continue;
            }
            declared = "not a string";
        } else if (!bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_INTEGER)) {
            declared = "not an integer";
        } else {
            const std::uint64_t bits = bt_field_class_integer_get_field_value_range(fc);
            if (bits <= schema_bits(field.type)) {
                continue;
            }
            declared = fmt::format("a {}-bit integer", bits);
        }
        throw bt2::Error(fmt::format(
            "trace `{}`: event `{}` declares field `{}` as {}, docs/events.json says {}: refusing a trace whose "
            "values would be misread",
            trace, name, field.name, declared, schema_type_name(field.type)));
    }
}

using ConstPacketRef = bt2::Shared<const bt_packet, bt_packet_get_ref, bt_packet_put_ref>;

// A trace as the live view counts it: every trace the sink reads, the
// ones it analyses and the ones it only counts (a user-space trace of a
// live session).
struct TraceCounts {
    std::string name;
    std::string domain;
    bool analysed = true;
    std::uint64_t events = 0;  // in the current snapshot interval
    std::uint64_t discarded = 0;
    std::uint64_t events_total = 0;
    std::uint64_t discarded_total = 0;
    std::int64_t last_ns = -1;  // its latest message's time
};

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

struct AnalysisSink {
    std::unique_ptr<analysis::AnalysisEngine> engine;
    bool print_summary = false;
    bool quiet = false;                      // no warning on stderr (the caller reports)
    std::unique_ptr<ProgressLine> progress;  // when asked for
    std::int64_t first_time = -1;
    std::int64_t last_time = 0;
    bt2::MessageIteratorRef upstream;
    std::unordered_map<const bt_trace*, unsigned> machine_of_trace;
    std::unordered_map<const bt_trace*, bool> skipped_trace;
    std::unordered_map<const bt_event_class*, Decoder> decoders;
    std::vector<std::string> hostnames;  // owned storage of MachineInfo::hostname
    std::vector<std::uint64_t> skipped_events;
    int host_machine = -1;  // the host trace's machine index, once seen
    std::string host_name;
    std::uint64_t events = 0;
    // cpu_id of the last event's packet: consecutive events often share one
    ConstPacketRef last_packet;
    std::uint32_t last_packet_cpu = 0;
    // Each stream's cpu_id: one per stream (LTTng's per-CPU streams)
    std::unordered_map<const bt_stream*, std::uint32_t> stream_cpu;
    // Parameter `live`: traces that are not LTTng kernel traces are
    // counted, not refused; no host trace is no error; a sink destroyed
    // before the end of its input (the user stopped a live analysis)
    // still writes its results, saying that it ended early.
    bool live = false;
    bool finished = false;
    // Parameter `snapshot-path`: one JSON object per interval, appended.
    std::unique_ptr<std::FILE, FileCloser> snapshots;
    std::string snapshot_path;
    std::unordered_map<const bt_trace*, TraceCounts> traces;
    const bt_trace* last_trace = nullptr;
    TraceCounts* last_counts = nullptr;
};

TraceCounts& counts_of(AnalysisSink& sink, const bt_trace* trace) {
    if (trace == sink.last_trace) {
        return *sink.last_counts;
    }
    auto [it, added] = sink.traces.try_emplace(trace);
    if (added) {
        it->second.name = trace_display_name(trace);
        it->second.domain = env_string(trace, "domain");
        it->second.analysed = !sink.live || it->second.domain == "kernel";
    }
    sink.last_trace = trace;
    sink.last_counts = &it->second;
    return it->second;
}

// The sink's part of a snapshot: every trace's counts, the wall-clock time
// of writing (a live view's delay is that minus the latest event's time).
void write_snapshot(AnalysisSink& sink, nlohmann::json snapshot) {
    nlohmann::json traces = nlohmann::json::array();
    std::vector<TraceCounts*> all;
    for (auto& [trace, counts] : sink.traces) {
        all.push_back(&counts);
    }
    std::sort(all.begin(), all.end(), [](const TraceCounts* a, const TraceCounts* b) { return a->name < b->name; });
    for (TraceCounts* c : all) {
        traces.push_back({{"name", c->name},
                          {"domain", c->domain},
                          {"analysed", c->analysed},
                          {"events", c->events},
                          {"discarded", c->discarded},
                          {"events_total", c->events_total},
                          {"discarded_total", c->discarded_total},
                          {"last_event_ns", c->last_ns}});
        c->events = 0;
        c->discarded = 0;
    }
    snapshot["traces"] = std::move(traces);
    snapshot["wall_ns"] =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const std::string line = snapshot.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), sink.snapshots.get()) != line.size() ||
        std::fflush(sink.snapshots.get()) != 0) {
        throw bt2::Error(fmt::format("sink.vmtrace.analysis: cannot write the snapshots to `{}`: {}",
                                     sink.snapshot_path, std::strerror(errno)));
    }
}

unsigned machine_of(AnalysisSink& sink, const bt_stream* stream) {
    const bt_trace* trace = bt_stream_borrow_trace_const(stream);
    const auto found = sink.machine_of_trace.find(trace);
    if (found != sink.machine_of_trace.end()) {
        return found->second;
    }
    const bt_trace_class* tc = bt_trace_borrow_class_const(trace);
    analysis::MachineInfo info;
    std::string hostname = trace_display_name(trace);
    // The analyses read LTTng kernel events: sched_switch's fields, the
    // stream's cpu_id.
    const std::string domain = env_string(trace, "domain");
    if (domain != "kernel") {
        throw bt2::Error(fmt::format(
            "trace `{}` is not an LTTng kernel trace (its environment has {}): vmtrace analyses kernel traces",
            hostname, domain.empty() ? "no `domain` entry" : fmt::format("domain `{}`", domain)));
    }
    // Every event class the analyses read must declare its fields as
    // docs/events.json does, before any of its events is read.
    for (std::uint64_t s = 0; s < bt_trace_class_get_stream_class_count(tc); ++s) {
        const bt_stream_class* sc = bt_trace_class_borrow_stream_class_by_index_const(tc, s);
        for (std::uint64_t e = 0; e < bt_stream_class_get_event_class_count(sc); ++e) {
            check_event_class(hostname, bt_stream_class_borrow_event_class_by_index_const(sc, e));
        }
    }
    info.host = declares_host_events(tc);
    info.synchronized = !env_string(trace, "vmtrace_time_base").empty();
    const std::string uid = env_string(trace, "vmtrace_vm_uid");
    if (!uid.empty()) {
        char* end = nullptr;
        errno = 0;
        info.vm_uid = std::strtoull(uid.c_str(), &end, 0);
        if (errno != 0 || end == uid.c_str() || *end != '\0') {
            throw bt2::Error(
                fmt::format("trace `{}`: environment entry vmtrace_vm_uid `{}` is not a number", hostname, uid));
        }
    }
    info.has_pio = declares_event(tc, {ev::kvm_x86_pio::event_name});
    info.has_mmio = declares_event(tc, {ev::kvm_x86_mmio::event_name});
    info.has_msr = declares_event(tc, {ev::kvm_x86_msr::event_name});
    info.has_msr_user = declares_event(tc, {ev::kvm_x86_msr_user::event_name});
    info.has_inj_virq = declares_event(tc, {ev::kvm_x86_inj_virq::event_name});
    info.has_inj_exception = declares_event(tc, {ev::kvm_x86_inj_exception::event_name});
    info.has_hypercall = declares_event(tc, {ev::kvm_x86_hypercall::event_name});
    if (info.host) {
        if (sink.host_machine >= 0) {
            throw bt2::Error(
                fmt::format("two host traces, `{}` and `{}`: analyse one host at a time", sink.host_name, hostname));
        }
        sink.host_name = hostname;
    }
    sink.hostnames.push_back(hostname);
    info.hostname = sink.hostnames.back();
    const unsigned index = sink.engine->add_machine(info);
    if (info.host) {
        sink.host_machine = static_cast<int>(index);
    }
    sink.machine_of_trace.emplace(trace, index);
    sink.skipped_trace.emplace(trace, !info.host && !info.synchronized);
    sink.skipped_events.resize(index + 1, 0);
    return index;
}

const Decoder& decoder_of(AnalysisSink& sink, const bt_event* event) {
    const bt_event_class* ec = bt_event_borrow_class_const(event);
    const auto found = sink.decoders.find(ec);
    if (found != sink.decoders.end()) {
        return found->second;
    }
    Decoder decoder;
    const bt_stream* stream = bt_event_borrow_stream_const(event);
    decoder.machine = machine_of(sink, stream);
    decoder.skip = sink.skipped_trace.at(bt_stream_borrow_trace_const(stream));
    const std::string_view name = bt_event_class_get_name(ec) != nullptr ? bt_event_class_get_name(ec) : "";
    decoder.name = name;
    const std::string& trace = sink.hostnames.at(decoder.machine);
    check_event_class(trace, ec);  // (an event class added after the trace was first seen)
    const KindSpec* spec = kind_spec(name);
    if (spec == nullptr) {
        return sink.decoders.emplace(ec, decoder).first->second;
    }
    const bt_field_class* payload = bt_event_class_borrow_payload_field_class_const(ec);
    decoder.kind = spec->kind;
    for (std::size_t i = 0; i < spec->fields.size(); ++i) {
        const FieldSpec& slot = spec->fields[i];
        decoder.member[i] = -1;
        if (slot.field == nullptr) {
            continue;
        }
        decoder.is_string[i] = slot.field->type == ev::FieldType::string;
        const std::uint64_t count = payload != nullptr ? bt_field_class_structure_get_member_count(payload) : 0;
        for (std::uint64_t m = 0; m < count; ++m) {
            const auto* member = bt_field_class_structure_borrow_member_by_index_const(payload, m);
            if (std::string_view(bt_field_class_structure_member_get_name(member)) == slot.field->name) {
                decoder.member[i] = static_cast<std::int64_t>(m);  // of the schema's type: check_event_class
            }
        }
        if (decoder.member[i] < 0 && slot.required) {
            throw bt2::Error(fmt::format("trace `{}`: event `{}` has no field `{}` (docs/events.json)", trace, name,
                                         slot.field->name));
        }
    }
    return sink.decoders.emplace(ec, decoder).first->second;
}

std::int64_t integer_at(const bt_field* payload, std::int64_t index) {
    return index < 0 ? 0 : integer_member(payload, static_cast<std::uint64_t>(index));
}

std::string_view string_at(const bt_field* payload, std::int64_t index) {
    const bt_field* field = bt_field_structure_borrow_member_field_by_index_const(payload, index);
    return {bt_field_string_get_value(field), bt_field_string_get_length(field)};
}

// A packet's cpu_id (LTTng's per-CPU streams; a stream without one counts
// as CPU 0), declared to the engine: the CPUs the trace's events may
// name.  A stream keeps one cpu_id: a packet that changes it, or that
// names more CPUs than Linux has, is damaged.
std::uint32_t declare_packet_cpu(AnalysisSink& sink, unsigned machine, const bt_packet* packet) {
    const std::string& trace = sink.hostnames.at(machine);
    std::int64_t cpu = 0;
    const bt_field* context = bt_packet_borrow_context_field_const(packet);
    const bt_field* field =
        context != nullptr ? bt_field_structure_borrow_member_field_by_name_const(context, "cpu_id") : nullptr;
    const bt_field_class_type type = field != nullptr ? bt_field_get_class_type(field) : BT_FIELD_CLASS_TYPE_STRING;
    if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_SIGNED_INTEGER)) {
        cpu = bt_field_integer_signed_get_value(field);
    } else if (bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_UNSIGNED_INTEGER)) {
        // (kMaxCpus stands for every larger value)
        cpu = static_cast<std::int64_t>(
            std::min<std::uint64_t>(bt_field_integer_unsigned_get_value(field), analysis::kMaxCpus));
    }
    if (cpu < 0 || cpu >= analysis::kMaxCpus) {
        throw bt2::Error(fmt::format(
            "trace `{}`: a packet declares cpu_id {}, beyond the {} CPUs Linux supports: damaged packet context", trace,
            cpu < 0 ? fmt::format("{}", cpu) : fmt::format("{}", bt_field_integer_unsigned_get_value(field)),
            analysis::kMaxCpus));
    }
    const auto cpu_id = static_cast<std::uint32_t>(cpu);
    const bt_stream* stream = bt_packet_borrow_stream_const(packet);
    const auto [known, added] = sink.stream_cpu.try_emplace(stream, cpu_id);
    if (!added && known->second != cpu_id) {
        const char* name = bt_stream_get_name(stream);
        throw bt2::Error(fmt::format(
            "trace `{}`: a packet of stream {}{} declares cpu_id {}, its earlier packets cpu_id {}: damaged packet "
            "context",
            trace, bt_stream_get_id(stream), name != nullptr ? fmt::format(" (`{}`)", name) : "", cpu_id,
            known->second));
    }
    sink.engine->declare_cpu(machine, cpu_id);
    return cpu_id;
}

std::uint32_t packet_cpu(AnalysisSink& sink, unsigned machine, const bt_event* event) {
    const bt_packet* packet = bt_event_borrow_packet_const(event);
    if (packet == sink.last_packet.get()) {
        return sink.last_packet_cpu;
    }
    // the reference keeps the packet from being recycled under the cache
    sink.last_packet = ConstPacketRef::acquire(packet);
    sink.last_packet_cpu = declare_packet_cpu(sink, machine, packet);
    return sink.last_packet_cpu;
}

std::int64_t ns_of(const bt_clock_snapshot* snapshot) {
    std::int64_t ns = 0;
    if (bt_clock_snapshot_get_ns_from_origin(snapshot, &ns) != BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
        throw bt2::Error("a clock snapshot overflows 64-bit ns from origin");
    }
    return ns;
}

void handle_event(AnalysisSink& sink, const bt_message* msg) {
    const bt_event* event = bt_message_event_borrow_event_const(msg);
    TraceCounts* counts = nullptr;
    if (sink.live || sink.snapshots) {
        // counted after the engine had the event: an event that ends a
        // snapshot's interval belongs to the next one
        counts = &counts_of(sink, bt_stream_borrow_trace_const(bt_event_borrow_stream_const(event)));
        if (!counts->analysed) {
            ++sink.events;
            if (const bt_clock_snapshot* cs = bt_message_event_borrow_default_clock_snapshot_const(msg)) {
                counts->last_ns = std::max(counts->last_ns, ns_of(cs));
                sink.engine->on_other_time(counts->last_ns);
            }
            ++counts->events;
            ++counts->events_total;
            return;
        }
    }
    const Decoder& d = decoder_of(sink, event);
    ++sink.events;
    if (d.skip) {
        ++sink.skipped_events[d.machine];
        if (counts != nullptr) {
            ++counts->events;
            ++counts->events_total;
        }
        return;
    }
    TraceEvent e;
    e.machine = d.machine;
    e.kind = d.kind;
    e.time = ns_of(bt_message_event_borrow_default_clock_snapshot_const(msg));
    e.name = d.name;
    e.cpu = packet_cpu(sink, d.machine, event);
    const bt_field* p = bt_event_borrow_payload_field_const(event);
    const auto& m = d.member;
    switch (d.kind) {
    case EventKind::sched_switch:
        e.prev_comm = string_at(p, m[0]);
        e.prev_tid = integer_at(p, m[1]);
        e.prev_state = integer_at(p, m[2]);
        e.next_comm = string_at(p, m[3]);
        e.next_tid = integer_at(p, m[4]);
        break;
    case EventKind::sched_migrate_task:
        e.comm = string_at(p, m[0]);
        e.tid = integer_at(p, m[1]);
        e.orig_cpu = integer_at(p, m[2]);
        e.dest_cpu = integer_at(p, m[3]);
        break;
    case EventKind::kvm_entry:
        e.vcpu_id = static_cast<std::uint32_t>(integer_at(p, m[0]));
        e.has_rip = m[1] >= 0;
        e.rip = e.has_rip ? static_cast<std::uint64_t>(integer_at(p, m[1])) : 0;
        break;
    case EventKind::kvm_exit:
        e.vcpu_id = static_cast<std::uint32_t>(integer_at(p, m[0]));
        e.exit_reason = static_cast<std::uint32_t>(integer_at(p, m[1]));
        e.isa = m[2] >= 0 ? static_cast<std::uint32_t>(integer_at(p, m[2])) : 0;
        e.info1 = static_cast<std::uint64_t>(integer_at(p, m[3]));
        e.info2 = static_cast<std::uint64_t>(integer_at(p, m[4]));
        e.intr_info = static_cast<std::uint64_t>(integer_at(p, m[5]));
        e.has_rip = m[6] >= 0;
        e.rip = e.has_rip ? static_cast<std::uint64_t>(integer_at(p, m[6])) : 0;
        break;
    case EventKind::kvm_pio:
    case EventKind::kvm_mmio:
    case EventKind::kvm_msr:
    case EventKind::kvm_msr_user:
    case EventKind::kvm_inj_virq:
    case EventKind::kvm_inj_exception:
    case EventKind::kvm_hypercall:
        e.vcpu_id = static_cast<std::uint32_t>(integer_at(p, m[0]));
        for (std::size_t i = 1; i < m.size(); ++i) {
            e.args[i - 1] = static_cast<std::uint64_t>(integer_at(p, m[i]));
        }
        break;
    case EventKind::vmsync_host:
        e.vm_uid = static_cast<std::uint64_t>(integer_at(p, m[0]));
        e.vcpu_id = static_cast<std::uint32_t>(integer_at(p, m[1]));
        break;
    case EventKind::vcpu_thread:
        e.pid = integer_at(p, m[0]);
        e.vcpu_id = static_cast<std::uint32_t>(integer_at(p, m[1]));
        e.tid = m[2] >= 0 ? integer_at(p, m[2]) : 0;
        e.comm = m[3] >= 0 ? string_at(p, m[3]) : std::string_view();
        break;
    case EventKind::process_state:
        e.tid = integer_at(p, m[0]);
        e.pid = integer_at(p, m[1]);
        e.comm = string_at(p, m[2]);
        break;
    case EventKind::other:
        break;
    }
    sink.engine->on_event(e);
    if (counts != nullptr) {
        ++counts->events;
        ++counts->events_total;
        counts->last_ns = std::max(counts->last_ns, e.time);
    }
    if (sink.first_time < 0) {
        sink.first_time = e.time;
    }
    sink.last_time = e.time;
}

void show_progress(AnalysisSink& sink, bool last) {
    sink.progress->update(sink.events, sink.first_time < 0 ? 0 : sink.last_time - sink.first_time, last);
}

// The time of a host packet boundary: the range the analyses cover.
void handle_boundary(AnalysisSink& sink, const bt_message* msg) {
    const bt_stream* stream = nullptr;
    const bt_clock_snapshot* snapshot = nullptr;
    switch (bt_message_get_type(msg)) {
    case BT_MESSAGE_TYPE_PACKET_BEGINNING: {
        const bt_packet* packet = bt_message_packet_beginning_borrow_packet_const(msg);
        stream = bt_packet_borrow_stream_const(packet);
        if (sink.live && !counts_of(sink, bt_stream_borrow_trace_const(stream)).analysed) {
            return;
        }
        // its CPU exists from here on, whether or not it has events yet
        declare_packet_cpu(sink, machine_of(sink, stream), packet);
        if (bt_stream_class_packets_have_beginning_default_clock_snapshot(bt_stream_borrow_class_const(stream))) {
            snapshot = bt_message_packet_beginning_borrow_default_clock_snapshot_const(msg);
        }
        break;
    }
    case BT_MESSAGE_TYPE_PACKET_END: {
        const bt_packet* packet = bt_message_packet_end_borrow_packet_const(msg);
        stream = bt_packet_borrow_stream_const(packet);
        if (bt_stream_class_packets_have_end_default_clock_snapshot(bt_stream_borrow_class_const(stream))) {
            snapshot = bt_message_packet_end_borrow_default_clock_snapshot_const(msg);
        }
        break;
    }
    case BT_MESSAGE_TYPE_STREAM_END:
        // the stream's address may be reused by a later stream
        sink.stream_cpu.erase(bt_message_stream_end_borrow_stream_const(msg));
        return;
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS: {
        std::uint64_t count = 1;  // "some": LTTng always gives the count, other producers may not
        if (bt_message_discarded_events_get_count(msg, &count) != BT_PROPERTY_AVAILABILITY_AVAILABLE) {
            count = 1;
        }
        const bt_stream* ds = bt_message_discarded_events_borrow_stream_const(msg);
        TraceCounts& c = counts_of(sink, bt_stream_borrow_trace_const(ds));
        c.discarded += count;
        c.discarded_total += count;
        if (c.analysed) {
            sink.engine->on_discarded(machine_of(sink, ds), count);
        }
        return;
    }
    default:
        return;
    }
    if (snapshot == nullptr) {
        return;
    }
    if (sink.live && !counts_of(sink, bt_stream_borrow_trace_const(stream)).analysed) {
        return;
    }
    const unsigned machine = machine_of(sink, stream);
    if (static_cast<int>(machine) == sink.host_machine) {
        sink.engine->on_host_time(ns_of(snapshot));
    }
}

void finish(AnalysisSink& sink) {
    sink.finished = true;
    if (sink.host_machine < 0 && !sink.live) {
        throw bt2::Error("no host trace: no trace declares KVM (kvm_x86_entry/exit) or vmsync host events");
    }
    sink.engine->finish();
    for (std::size_t i = 0; i < sink.skipped_events.size(); ++i) {
        if (sink.skipped_events[i] > 0 && !sink.quiet) {
            std::fprintf(stderr,
                         "sink.vmtrace.analysis: guest trace `%s` is not on the host's time base (not through "
                         "filter.vmtrace.sync): its %llu events were not analysed\n",
                         sink.hostnames[i].c_str(), static_cast<unsigned long long>(sink.skipped_events[i]));
        }
    }
    if (sink.print_summary) {
        std::fputs(sink.engine->summary().c_str(), stdout);
        std::fflush(stdout);
    }
}

bt_component_class_sink_consume_method_status consume(AnalysisSink& sink) {
    bt_message_array_const messages = nullptr;
    std::uint64_t count = 0;
    switch (bt_message_iterator_next(sink.upstream.get(), &messages, &count)) {
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_OK:
        break;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_END:
        if (sink.progress) {
            show_progress(sink, true);
        }
        finish(sink);
        sink.upstream.reset();
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_END;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_AGAIN;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_MEMORY_ERROR;
    default:
        return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_ERROR;
    }
    // Each message is put even when one of them throws.
    bt2::MessageBatch batch(messages, count);
    while (!batch.empty()) {
        const bt2::MessageRef msg = batch.take();
        if (bt_message_get_type(msg.get()) == BT_MESSAGE_TYPE_EVENT) {
            handle_event(sink, msg.get());
        } else {
            handle_boundary(sink, msg.get());
        }
    }
    if (sink.progress) {
        show_progress(sink, false);
    }
    return BT_COMPONENT_CLASS_SINK_CONSUME_METHOD_STATUS_OK;
}

AnalysisSink* sink_of(bt_self_component_sink* self) {
    return static_cast<AnalysisSink*>(bt_self_component_get_data(bt_self_component_sink_as_self_component(self)));
}

}  // namespace
}  // namespace vmtrace::plugin

using vmtrace::plugin::AnalysisSink;
namespace bt2 = vmtrace::bt2;

extern "C" bt_component_class_initialize_method_status vmtrace_analysis_initialize(
    bt_self_component_sink* self, bt_self_component_sink_configuration*, const bt_value* params, void*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_sink_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_initialize_method_status>(append, [&] {
        const bt2::Params p(params, "sink.vmtrace.analysis");
        p.reject_unknown({"output-dir", "timeline-bins", "sync-stats", "summary", "intervals", "progress", "quiet",
                          "live", "snapshot-ms", "snapshot-path"});
        vmtrace::analysis::AnalysisOptions options;
        auto sink = std::make_unique<AnalysisSink>();
        const auto dir = p.string("output-dir");
        const auto snapshot_path = p.string("snapshot-path");
        if (!dir && !snapshot_path) {
            throw bt2::Error(
                "sink.vmtrace.analysis: parameter `output-dir` is required (or `snapshot-path` alone, "
                "for snapshots without files)");
        }
        options.output_dir = dir.value_or("");
        sink->live = p.boolean("live").value_or(false);
        const auto snapshot_ms = p.integer_between("snapshot-ms", 1, 3'600'000);
        if (snapshot_ms.has_value() != snapshot_path.has_value()) {
            throw bt2::Error("sink.vmtrace.analysis: parameters `snapshot-ms` and `snapshot-path` go together");
        }
        if (snapshot_path) {
            sink->snapshot_path = *snapshot_path;
            sink->snapshots.reset(std::fopen(snapshot_path->c_str(), "a"));
            if (!sink->snapshots) {
                throw bt2::Error(fmt::format("sink.vmtrace.analysis: parameter `snapshot-path`: cannot open `{}`: {}",
                                             *snapshot_path, std::strerror(errno)));
            }
            options.window_ns = *snapshot_ms * 1'000'000;
            options.on_window = [raw = sink.get()](const nlohmann::json& j) { write_snapshot(*raw, j); };
        }
        if (const auto bins = p.integer("timeline-bins")) {
            if (*bins < 2 || *bins > 100'000 || *bins % 2 != 0) {
                throw bt2::Error(fmt::format(
                    "sink.vmtrace.analysis: parameter `timeline-bins` must be an even number in [2, 100000], not {}",
                    *bins));
            }
            options.timeline_bins = static_cast<unsigned>(*bins);
        }
        options.sync_stats_path = p.string("sync-stats").value_or("");
        options.intervals = p.boolean("intervals").value_or(false);
        sink->print_summary = p.boolean("summary").value_or(false);
        sink->quiet = p.boolean("quiet").value_or(false);
        if (p.boolean("progress").value_or(false)) {
            sink->progress = std::make_unique<vmtrace::plugin::ProgressLine>("analysing");
        }
        try {
            sink->engine = std::make_unique<vmtrace::analysis::AnalysisEngine>(options);
        } catch (const std::exception& e) {
            throw bt2::Error(fmt::format("sink.vmtrace.analysis: {}", e.what()));
        }
        bt2::check_status(bt_self_component_sink_add_input_port(self, "in", nullptr, nullptr), "add input port");
        bt_self_component_set_data(bt_self_component_sink_as_self_component(self), sink.release());
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_analysis_finalize(bt_self_component_sink* self) {
    std::unique_ptr<AnalysisSink> sink(vmtrace::plugin::sink_of(self));
    // A live analysis its user stopped: what was read is analysed and
    // written (finalize cannot fail: an error is printed, and the caller
    // finds no analysis.json).
    if (sink && sink->live && !sink->finished && sink->engine) {
        try {
            sink->engine->set_ended_early("stopped before the end of the live session");
            vmtrace::plugin::finish(*sink);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "sink.vmtrace.analysis: the results of the stopped analysis were not written: %s\n",
                         e.what());
        }
    }
}

extern "C" bt_component_class_sink_graph_is_configured_method_status vmtrace_analysis_graph_is_configured(
    bt_self_component_sink* self) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_sink_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_sink_graph_is_configured_method_status>(append, [&] {
        bt_self_component_port_input* port = bt_self_component_sink_borrow_input_port_by_name(self, "in");
        bt_message_iterator* upstream = nullptr;
        if (bt_message_iterator_create_from_sink_component(self, port, &upstream) !=
            BT_MESSAGE_ITERATOR_CREATE_FROM_SINK_COMPONENT_STATUS_OK) {
            throw bt2::CallError("sink.vmtrace.analysis: cannot create a message iterator on port `in`");
        }
        vmtrace::plugin::sink_of(self)->upstream = bt2::MessageIteratorRef::adopt(upstream);
        return BT_COMPONENT_CLASS_SINK_GRAPH_IS_CONFIGURED_METHOD_STATUS_OK;
    });
}

extern "C" bt_component_class_sink_consume_method_status vmtrace_analysis_consume(bt_self_component_sink* self) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_sink_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_sink_consume_method_status>(
        append, [&] { return vmtrace::plugin::consume(*vmtrace::plugin::sink_of(self)); });
}
