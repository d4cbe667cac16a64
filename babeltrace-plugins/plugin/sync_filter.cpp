// SPDX-License-Identifier: MIT
// filter.vmtrace.sync: places guest traces on the host's time base.
//
// Inputs: every port of the host's and the guests' sources, in any number
// (a new input port appears each time one is connected).  The filter tells
// machines apart by trace, and roles by the events a trace declares: a
// trace with vmsync_*_host or kvm entry/exit events is the host, one with
// vmsync_*_guest events a guest.
//
// Output: one port, time-ordered.  Host messages pass through untouched.
// A synchronised guest's messages are re-created under a copy of its trace
// (same name, UUID and environment) whose clock class keeps the guest's
// name and UUID but counts host time.  A guest without vmsync events passes
// through unchanged.
//
// Look-ahead: each input is read `window` of its own time ahead of what is
// emitted, and every vmsync event read updates its VM's estimator at once,
// so a guest event is converted with the handshakes of up to `window`
// after it.  A larger window means more handshakes around each event
// (better accuracy early in a trace) and more buffered messages.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bt2/error.hpp"
#include "bt2/params.hpp"
#include "bt2/shared_object.hpp"
#include "clocksync/convex_hull_estimator.hpp"
#include "plugin/entry_points.h"
#include "plugin/trace_ir_copy.hpp"
#include "sync/guest_mode_tracker.hpp"
#include "sync/vm_pairing.hpp"

namespace vmtrace::plugin {
namespace {

using clocksync::SyncQuality;
using sync::SyncHalf;

struct SyncConfig {
    // Look-ahead of every input while emitting.  Each buffered message
    // costs babeltrace2 its object pools (a malloc per field), so it stays
    // small.
    std::int64_t window_ns = 20'000'000;
    // Before emitting anything, a second iterator on every input reads the
    // first `prefetch_ns` of it for vmsync events only, so that the
    // earliest guest events are converted with many handshakes around
    // them.  It decodes that much of each trace twice, but keeps nothing.
    std::int64_t prefetch_ns = 2'000'000'000;
    std::uint64_t max_buffered = 4'000'000;
    std::string host;
    std::string stats_path;
    bool quiet = false;
    bool strict = true;
    double max_violation_ratio = 0.001;
};

enum class Role { host, guest, other };
enum class GuestMode { undecided, rewrite, passthrough };

enum class EventKind : std::uint8_t { other, sched_switch, kvm_entry, kvm_exit, gh_guest, hg_guest, gh_host, hg_host };

struct EventInfo {
    EventKind kind = EventKind::other;
    std::uint64_t cnt = 0;  // payload member indexes
    std::uint64_t vm_uid = 0;
    std::uint64_t vcpu_id = 0;
    std::uint64_t next_tid = 0;
    bool has_vcpu_id = false;
};

struct Machine {
    const bt_trace* trace = nullptr;
    std::string name;
    Role role = Role::other;
    const bt_clock_class* clock_class = nullptr;
    // guests
    sync::VmPairing* pairing = nullptr;
    GuestMode mode = GuestMode::undecided;
    std::unique_ptr<TraceIrCopier> copier;
    std::int64_t output_offset_ns = 0;  // of the output clock class
    // statistics
    std::uint64_t events_in = 0;
    std::uint64_t events_out = 0;
    std::uint64_t messages_in = 0;
    std::uint64_t messages_out = 0;
    std::uint64_t clamped = 0;
    std::int64_t max_clamp_ns = 0;
    std::int64_t max_applied_bound_ns = -1;
    std::uint64_t unbounded_events = 0;
    std::uint64_t checked = 0;
    std::uint64_t violations = 0;
    std::uint64_t unchecked = 0;
    std::string first_violation;
};

struct Buffered {
    bt2::MessageRef message;
    Machine* machine = nullptr;
    std::int64_t time = 0;  // own clock, ns from origin
    bool has_time = false;
    std::int32_t cpu = -1;
    // vmsync events: checked for cnt order when emitted, in time order
    sync::VmPairing* pairing = nullptr;
    SyncHalf half = SyncHalf::gh_guest;
    std::uint32_t cnt = 0;
    std::uint32_t lane = 0;
};

struct Input {
    bt2::MessageIteratorRef iterator;
    bt2::MessageIteratorRef scout;  // reads ahead for prefetch(), then dropped
    std::uint64_t prefetched_sync = 0;  // vmsync events the scout fed
    std::uint64_t seen_sync = 0;        // vmsync events the main pass saw
    std::string port;
    std::deque<Buffered> queue;
    bool ended = false;
    std::int64_t last_time = std::numeric_limits<std::int64_t>::min();
    // Key of the queue's head, valid while head_generation matches the
    // estimator's (guests) and the head is unchanged.
    bool head_key_valid = false;
    std::int64_t head_key = 0;
    std::uint64_t head_generation = 0;
    // The stream of the previous message, to skip the map lookups.
    const bt_stream* last_stream = nullptr;
    Machine* last_machine = nullptr;
    std::int32_t last_cpu = -1;
};

struct SyncComponent {
    SyncConfig config;
    std::uint64_t next_port = 0;
};

struct SyncIterator {
    bt_self_message_iterator* self = nullptr;
    SyncComponent* component = nullptr;
    std::vector<Input> inputs;
    std::vector<std::unique_ptr<Machine>> machines;
    std::unordered_map<const bt_trace*, Machine*> machine_by_trace;
    std::unordered_map<std::uint64_t, std::unique_ptr<sync::VmPairing>> pairings;
    std::unordered_map<const bt_event_class*, EventInfo> event_info;
    std::unordered_map<const bt_stream*, std::int32_t> stream_cpu;
    std::unique_ptr<sync::GuestModeTracker> tracker;
    Machine* host = nullptr;
    std::uint64_t buffered = 0;
    std::uint64_t window_truncations = 0;
    std::uint64_t dropped_inactivity = 0;
    std::int64_t last_emitted = std::numeric_limits<std::int64_t>::min();
    std::uint64_t emitted = 0;
    std::vector<Input*> to_fill;   // inputs whose look-ahead may have shrunk
    std::uint64_t input_share = 1;  // of max_buffered, per input
    bool prefetched = false;
    bool finished = false;
};

constexpr std::uint64_t kForgetEvery = 4096;
constexpr std::int64_t kForgetLag = 10'000'000;  // 10 ms of slack

std::string_view role_name(Role role) {
    switch (role) {
    case Role::host:
        return "host";
    case Role::guest:
        return "guest";
    case Role::other:
        return "other";
    }
    return "?";
}

std::string trace_display_name(const bt_trace* trace) {
    const bt_value* hostname = bt_trace_borrow_environment_entry_value_by_name_const(trace, "hostname");
    if (hostname != nullptr && bt_value_is_string(hostname)) {
        return bt_value_string_get(hostname);
    }
    if (const char* name = bt_trace_get_name(trace)) {
        return name;
    }
    return "(unnamed trace)";
}

bool declares(const bt_trace_class* tc, std::initializer_list<std::string_view> names) {
    for (std::uint64_t s = 0; s < bt_trace_class_get_stream_class_count(tc); ++s) {
        const bt_stream_class* sc = bt_trace_class_borrow_stream_class_by_index_const(tc, s);
        for (std::uint64_t e = 0; e < bt_stream_class_get_event_class_count(sc); ++e) {
            const char* name = bt_event_class_get_name(bt_stream_class_borrow_event_class_by_index_const(sc, e));
            if (name != nullptr && std::find(names.begin(), names.end(), std::string_view(name)) != names.end()) {
                return true;
            }
        }
    }
    return false;
}

Machine& machine_of(SyncIterator& it, const bt_stream* stream) {
    const bt_trace* trace = bt_stream_borrow_trace_const(stream);
    auto found = it.machine_by_trace.find(trace);
    if (found != it.machine_by_trace.end()) {
        return *found->second;
    }
    auto machine = std::make_unique<Machine>();
    machine->trace = trace;
    machine->name = trace_display_name(trace);
    machine->clock_class = bt_stream_class_borrow_default_clock_class_const(bt_stream_borrow_class_const(stream));
    const bt_trace_class* tc = bt_trace_borrow_class_const(trace);
    const SyncConfig& config = it.component->config;
    if (!config.host.empty()) {
        machine->role = machine->name == config.host ? Role::host : Role::guest;
    } else if (declares(tc, {"vmsync_gh_host", "vmsync_hg_host", "kvm_x86_entry", "kvm_entry", "kvm_x86_exit",
                             "kvm_exit"})) {
        machine->role = Role::host;
    } else if (declares(tc, {"vmsync_gh_guest", "vmsync_hg_guest"})) {
        machine->role = Role::guest;
    }
    if (machine->role == Role::host) {
        if (it.host != nullptr) {
            throw bt2::Error(fmt::format(
                "traces `{}` and `{}` both look like KVM hosts (they declare kvm or vmsync host events); "
                "name the host with the `host` parameter",
                it.host->name, machine->name));
        }
        if (machine->clock_class == nullptr) {
            throw bt2::Error(fmt::format("host trace `{}` has no clock: nothing to synchronise to", machine->name));
        }
        it.host = machine.get();
    }
    if (machine->role != Role::host && machine->clock_class == nullptr) {
        machine->mode = GuestMode::passthrough;
    }
    Machine* raw = machine.get();
    it.machines.push_back(std::move(machine));
    it.machine_by_trace.emplace(trace, raw);
    return *raw;
}

const EventInfo& info_of(SyncIterator& it, const bt_event_class* ec) {
    auto found = it.event_info.find(ec);
    if (found != it.event_info.end()) {
        return found->second;
    }
    EventInfo info;
    const std::string_view name = bt_event_class_get_name(ec) != nullptr ? bt_event_class_get_name(ec) : "";
    static const std::pair<std::string_view, EventKind> kKinds[] = {
        {"sched_switch", EventKind::sched_switch}, {"kvm_x86_entry", EventKind::kvm_entry},
        {"kvm_entry", EventKind::kvm_entry},       {"kvm_x86_exit", EventKind::kvm_exit},
        {"kvm_exit", EventKind::kvm_exit},         {"vmsync_gh_guest", EventKind::gh_guest},
        {"vmsync_hg_guest", EventKind::hg_guest},  {"vmsync_gh_host", EventKind::gh_host},
        {"vmsync_hg_host", EventKind::hg_host},
    };
    for (const auto& [event_name, kind] : kKinds) {
        if (name == event_name) {
            info.kind = kind;
        }
    }
    const bt_field_class* payload = bt_event_class_borrow_payload_field_class_const(ec);
    auto member = [&](const char* field, std::uint64_t& index) {
        if (payload == nullptr) {
            return false;
        }
        for (std::uint64_t i = 0; i < bt_field_class_structure_get_member_count(payload); ++i) {
            const auto* m = bt_field_class_structure_borrow_member_by_index_const(payload, i);
            if (std::string_view(bt_field_class_structure_member_get_name(m)) == field &&
                bt_field_class_type_is(bt_field_class_get_type(bt_field_class_structure_member_borrow_field_class_const(m)),
                                       BT_FIELD_CLASS_TYPE_INTEGER)) {
                index = i;
                return true;
            }
        }
        return false;
    };
    bool complete = true;
    switch (info.kind) {
    case EventKind::sched_switch:
        complete = member("next_tid", info.next_tid);
        break;
    case EventKind::gh_guest:
    case EventKind::hg_guest:
    case EventKind::gh_host:
    case EventKind::hg_host:
        complete = member("cnt", info.cnt) && member("vm_uid", info.vm_uid);
        info.has_vcpu_id = member("vcpu_id", info.vcpu_id);
        break;
    default:
        break;
    }
    if (!complete) {
        throw bt2::Error(fmt::format("event class `{}` lacks an integer field that docs/events.json requires", name));
    }
    return it.event_info.emplace(ec, info).first->second;
}

std::int64_t integer_member(const bt_field* payload, std::uint64_t index) {
    const bt_field* field = bt_field_structure_borrow_member_field_by_index_const(payload, index);
    if (bt_field_class_type_is(bt_field_get_class_type(field), BT_FIELD_CLASS_TYPE_SIGNED_INTEGER)) {
        return bt_field_integer_signed_get_value(field);
    }
    return static_cast<std::int64_t>(bt_field_integer_unsigned_get_value(field));
}

std::int32_t packet_cpu(const bt_packet* packet) {
    const bt_field* context = bt_packet_borrow_context_field_const(packet);
    if (context == nullptr) {
        return -1;
    }
    const bt_field* cpu = bt_field_structure_borrow_member_field_by_name_const(context, "cpu_id");
    if (cpu == nullptr || !bt_field_class_type_is(bt_field_get_class_type(cpu), BT_FIELD_CLASS_TYPE_INTEGER)) {
        return -1;
    }
    return static_cast<std::int32_t>(bt_field_integer_unsigned_get_value(cpu));
}

sync::VmPairing& pairing_of(SyncIterator& it, std::uint64_t vm_uid) {
    auto& slot = it.pairings[vm_uid];
    if (!slot) {
        slot = std::make_unique<sync::VmPairing>(vm_uid, std::make_unique<clocksync::ConvexHullEstimator>());
    }
    return *slot;
}

// Pairs a vmsync event (unless `feed` is false: the prefetch already did)
// and notes what it tells about its machine and vCPU thread.
void record_sync(SyncIterator& it, Machine& machine, SyncHalf half, const bt_event* event, const EventInfo& info,
                 Buffered& item, bool feed) {
    const std::int64_t time = item.time;
    const std::int32_t cpu = item.cpu;
    const bt_field* payload = bt_event_borrow_payload_field_const(event);
    const auto cnt = static_cast<std::uint32_t>(integer_member(payload, info.cnt));
    const auto vm_uid = static_cast<std::uint64_t>(integer_member(payload, info.vm_uid));
    const bool host_side = half == SyncHalf::gh_host || half == SyncHalf::hg_host;
    if (host_side != (machine.role == Role::host)) {
        throw bt2::Error(fmt::format("trace `{}` ({}) records {}, which only a {} records", machine.name,
                                     role_name(machine.role), sync::event_name(half), host_side ? "host" : "guest"));
    }
    sync::VmPairing& pairing = pairing_of(it, vm_uid);
    std::uint32_t lane = cpu < 0 ? 0 : static_cast<std::uint32_t>(cpu);
    if (host_side) {
        lane = info.has_vcpu_id ? static_cast<std::uint32_t>(integer_member(payload, info.vcpu_id)) : lane;
        if (cpu >= 0) {
            it.tracker->on_vcpu_identified(static_cast<std::uint32_t>(cpu), vm_uid, lane);
        }
    } else if (machine.pairing == nullptr) {
        for (const auto& other : it.machines) {
            if (other->pairing == &pairing) {
                throw bt2::Error(fmt::format("traces `{}` and `{}` both record vmsync events of vm_uid {:#x}",
                                             other->name, machine.name, vm_uid));
            }
        }
        machine.pairing = &pairing;
    } else if (machine.pairing != &pairing) {
        throw bt2::Error(fmt::format("trace `{}`: event {} at {} ns has vm_uid {:#x}, but earlier events had {:#x}",
                                     machine.name, sync::event_name(half), time, vm_uid, machine.pairing->vm_uid()));
    }
    if (feed) {
        pairing.add(half, cnt, time, lane, machine.name);
    }
    item.pairing = &pairing;
    item.half = half;
    item.cnt = cnt;
    item.lane = lane;
    if (pairing.estimator().quality() == SyncQuality::fail) {
        const auto& anomalies = pairing.anomalies();
        throw bt2::Error(fmt::format(
            "vm_uid {:#x}: event {} (cnt {}) at {} ns in trace `{}` contradicts earlier vmsync handshakes: no linear "
            "clock transform lets every message arrive after it was sent; the synchronised output cannot be "
            "trusted{}",
            vm_uid, sync::event_name(half), cnt, time, machine.name,
            anomalies.first.empty() ? std::string()
                                    : fmt::format(" ({} repeated cnt values so far; first: {})",
                                                  anomalies.duplicate_cnt, anomalies.first)));
    }
}

// Learns what a freshly pulled message tells about the machines.
void observe(SyncIterator& it, Input& input, Buffered& item) {
    const bt_message* msg = item.message.get();
    const bt_stream* stream = nullptr;
    switch (bt_message_get_type(msg)) {
    case BT_MESSAGE_TYPE_EVENT: {
        const bt_event* event = bt_message_event_borrow_event_const(msg);
        stream = bt_event_borrow_stream_const(event);
        break;
    }
    case BT_MESSAGE_TYPE_PACKET_BEGINNING: {
        const bt_packet* packet = bt_message_packet_beginning_borrow_packet_const(msg);
        stream = bt_packet_borrow_stream_const(packet);
        it.stream_cpu[stream] = packet_cpu(packet);
        input.last_stream = nullptr;  // the CPU may have changed
        break;
    }
    case BT_MESSAGE_TYPE_PACKET_END:
        stream = bt_packet_borrow_stream_const(bt_message_packet_end_borrow_packet_const(msg));
        break;
    case BT_MESSAGE_TYPE_STREAM_BEGINNING:
        stream = bt_message_stream_beginning_borrow_stream_const(msg);
        break;
    case BT_MESSAGE_TYPE_STREAM_END:
        stream = bt_message_stream_end_borrow_stream_const(msg);
        break;
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS:
        stream = bt_message_discarded_events_borrow_stream_const(msg);
        break;
    case BT_MESSAGE_TYPE_DISCARDED_PACKETS:
        stream = bt_message_discarded_packets_borrow_stream_const(msg);
        break;
    case BT_MESSAGE_TYPE_MESSAGE_ITERATOR_INACTIVITY:
        return;
    }
    if (stream != input.last_stream) {
        input.last_machine = &machine_of(it, stream);
        auto cpu = it.stream_cpu.find(stream);
        input.last_cpu = cpu != it.stream_cpu.end() ? cpu->second : -1;
        input.last_stream = stream;
    }
    Machine& machine = *input.last_machine;
    item.machine = &machine;
    item.cpu = input.last_cpu;
    ++machine.messages_in;

    const bt_clock_snapshot* snapshot = nullptr;
    switch (bt_message_get_type(msg)) {
    case BT_MESSAGE_TYPE_EVENT:
        snapshot = bt_message_event_borrow_default_clock_snapshot_const(msg);
        break;
    case BT_MESSAGE_TYPE_PACKET_BEGINNING:
        if (bt_stream_class_packets_have_beginning_default_clock_snapshot(bt_stream_borrow_class_const(stream))) {
            snapshot = bt_message_packet_beginning_borrow_default_clock_snapshot_const(msg);
        }
        break;
    case BT_MESSAGE_TYPE_PACKET_END:
        if (bt_stream_class_packets_have_end_default_clock_snapshot(bt_stream_borrow_class_const(stream))) {
            snapshot = bt_message_packet_end_borrow_default_clock_snapshot_const(msg);
        }
        break;
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS:
        if (bt_stream_class_discarded_events_have_default_clock_snapshots(bt_stream_borrow_class_const(stream))) {
            snapshot = bt_message_discarded_events_borrow_end_default_clock_snapshot_const(msg);
        }
        break;
    case BT_MESSAGE_TYPE_DISCARDED_PACKETS:
        if (bt_stream_class_discarded_packets_have_default_clock_snapshots(bt_stream_borrow_class_const(stream))) {
            snapshot = bt_message_discarded_packets_borrow_end_default_clock_snapshot_const(msg);
        }
        break;
    default:
        break;
    }
    if (snapshot != nullptr) {
        if (bt_clock_snapshot_get_ns_from_origin(snapshot, &item.time) != BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
            throw bt2::Error(fmt::format("trace `{}`: a clock snapshot overflows 64-bit ns from origin", machine.name));
        }
        item.has_time = true;
    }
    if (bt_message_get_type(msg) != BT_MESSAGE_TYPE_EVENT) {
        return;
    }
    ++machine.events_in;
    const bt_event* event = bt_message_event_borrow_event_const(msg);
    const EventInfo& info = info_of(it, bt_event_borrow_class_const(event));
    if (info.kind == EventKind::other) {
        return;
    }
    const std::int64_t time = item.time;
    const bool host = machine.role == Role::host;
    switch (info.kind) {
    case EventKind::sched_switch:
        if (host && item.cpu >= 0) {
            it.tracker->on_sched_switch(static_cast<std::uint32_t>(item.cpu),
                                        static_cast<std::int32_t>(integer_member(
                                            bt_event_borrow_payload_field_const(event), info.next_tid)),
                                        time);
        }
        break;
    case EventKind::kvm_entry:
        if (host && item.cpu >= 0) {
            it.tracker->on_kvm_entry(static_cast<std::uint32_t>(item.cpu), time);
        }
        break;
    case EventKind::kvm_exit:
        if (host && item.cpu >= 0) {
            it.tracker->on_kvm_exit(static_cast<std::uint32_t>(item.cpu), time);
        }
        break;
    case EventKind::gh_guest:
        record_sync(it, machine, SyncHalf::gh_guest, event, info, item, input.seen_sync++ >= input.prefetched_sync);
        break;
    case EventKind::hg_guest:
        record_sync(it, machine, SyncHalf::hg_guest, event, info, item, input.seen_sync++ >= input.prefetched_sync);
        break;
    case EventKind::gh_host:
        record_sync(it, machine, SyncHalf::gh_host, event, info, item, input.seen_sync++ >= input.prefetched_sync);
        break;
    case EventKind::hg_host:
        record_sync(it, machine, SyncHalf::hg_host, event, info, item, input.seen_sync++ >= input.prefetched_sync);
        break;
    case EventKind::other:
        break;
    }
}

std::string input_description(const SyncIterator& it, const Input& input) {
    for (const Buffered& b : input.queue) {
        if (b.machine != nullptr) {
            return fmt::format("input port `{}` (trace `{}`)", input.port, b.machine->name);
        }
    }
    (void)it;
    return fmt::format("input port `{}`", input.port);
}

// Pulls one batch from `input`; false when it would block (AGAIN).
bool pull(SyncIterator& it, Input& input) {
    bt_message_array_const messages = nullptr;
    std::uint64_t count = 0;
    switch (bt_message_iterator_next(input.iterator.get(), &messages, &count)) {
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_OK:
        break;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_END:
        input.ended = true;
        return true;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
        return false;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
        throw std::bad_alloc();
    default:
        throw bt2::CallError(fmt::format("cannot read {}", input_description(it, input)));
    }
    for (std::uint64_t i = 0; i < count; ++i) {
        Buffered item;
        item.message = bt2::MessageRef::adopt(messages[i]);
        if (bt_message_get_type(messages[i]) == BT_MESSAGE_TYPE_MESSAGE_ITERATOR_INACTIVITY) {
            ++it.dropped_inactivity;  // carries an upstream clock only; nothing to keep
            continue;
        }
        observe(it, input, item);
        if (item.has_time) {
            input.last_time = std::max(input.last_time, item.time);
        } else {
            item.time = input.last_time;
        }
        input.queue.push_back(std::move(item));
        ++it.buffered;
    }
    return true;
}

bool needs_more(const SyncIterator& it, const Input& input) {
    if (input.ended) {
        return false;
    }
    if (input.queue.empty()) {
        return true;
    }
    // The queue is in time order; untimed messages (stream beginnings)
    // only ever lead it.
    const Buffered* first = nullptr;
    for (const Buffered& item : input.queue) {
        if (item.has_time) {
            first = &item;
            break;
        }
    }
    const SyncConfig& config = it.component->config;
    if (first == nullptr || input.last_time - first->time < config.window_ns) {
        // Each input gets its share of the buffer, so that a busy host
        // cannot starve the guests of the look-ahead their sync needs.
        return input.queue.size() < it.input_share;
    }
    return false;
}

// The output clock of a synchronised guest: its name, description and
// UUID (Trace Compass identifies machines by it), the host's origin.
bt2::ClockClassRef make_output_clock(SyncIterator& it, const bt_clock_class* in, const Machine& guest) {
    const bt_clock_class* host = it.host->clock_class;
    bt_self_component* self = bt_self_message_iterator_borrow_component(it.self);
    auto out = bt2::ClockClassRef::adopt(bt2::check(bt_clock_class_create(self), "clock class"));
    if (const char* name = bt_clock_class_get_name(in)) {
        bt2::check_status(bt_clock_class_set_name(out.get(), name), "set clock class name");
    }
    const char* description = bt_clock_class_get_description(in);
    bt2::check_status(bt_clock_class_set_description(
                          out.get(), fmt::format("{} (vmtrace: on the time base of host {})",
                                                 description != nullptr ? description : "clock", it.host->name)
                                         .c_str()),
                      "set clock class description");
    if (const bt_uuid uuid = bt_clock_class_get_uuid(in)) {
        bt_clock_class_set_uuid(out.get(), uuid);
    }
    bt_clock_class_set_precision(out.get(), bt_clock_class_get_precision(in));
    bt_clock_class_set_frequency(out.get(), 1'000'000'000);
    bt_clock_class_set_origin_is_unix_epoch(out.get(), bt_clock_class_origin_is_unix_epoch(host));
    bt_clock_class_set_offset(out.get(), guest.output_offset_ns / 1'000'000'000,
                              static_cast<std::uint64_t>(guest.output_offset_ns % 1'000'000'000));
    return out;
}

void decide_mode(SyncIterator& it, Machine& guest) {
    if (guest.mode != GuestMode::undecided) {
        return;
    }
    const SyncQuality quality =
        guest.pairing != nullptr ? guest.pairing->estimator().quality() : SyncQuality::absent;
    if (it.host == nullptr || (quality != SyncQuality::accurate && quality != SyncQuality::approximate)) {
        guest.mode = GuestMode::passthrough;
        return;
    }
    guest.mode = GuestMode::rewrite;
    // The output clock counts ns from the host clock's origin.
    std::int64_t seconds = 0;
    std::uint64_t cycles = 0;
    bt_clock_class_get_offset(it.host->clock_class, &seconds, &cycles);
    const auto frequency = static_cast<__int128>(bt_clock_class_get_frequency(it.host->clock_class));
    guest.output_offset_ns = static_cast<std::int64_t>(static_cast<__int128>(seconds) * 1'000'000'000 +
                                                       static_cast<__int128>(cycles) * 1'000'000'000 / frequency);
    if (guest.output_offset_ns < 0) {
        throw bt2::Error(fmt::format("host trace `{}`: its clock origin lies before the Unix epoch", it.host->name));
    }
    std::vector<std::pair<std::string, std::string>> env{
        {"vmtrace_time_base", fmt::format("host {}", it.host->name)},
        {"vmtrace_vm_uid", fmt::format("{:#x}", guest.pairing->vm_uid())},
    };
    bt_self_component* self = bt_self_message_iterator_borrow_component(it.self);
    guest.copier = std::make_unique<TraceIrCopier>(
        self, [&it, &guest](const bt_clock_class* in) { return make_output_clock(it, in, guest); }, std::move(env));
}

// Host time of a buffered guest item under the current transform.
std::int64_t guest_key(Machine& guest, const Buffered& item) {
    return guest.pairing->estimator().transform().apply(item.time);
}

std::int64_t key_of(SyncIterator& it, Buffered& item) {
    Machine* m = item.machine;
    if (m != nullptr && m->role != Role::host) {
        decide_mode(it, *m);
    }
    if (!item.has_time || m == nullptr) {
        return it.last_emitted;
    }
    if (m->role == Role::host) {
        return item.time;
    }
    if (m->mode == GuestMode::passthrough) {
        return item.time;
    }
    return std::max(guest_key(*m, item), it.last_emitted);
}

// key_of() of the head of `input`, recomputed only when the head or the
// guest's transform changed, or when it may need clamping.
std::int64_t head_key(SyncIterator& it, Input& input) {
    Buffered& head = input.queue.front();
    const Machine* m = head.machine;
    const bool guest_rewrite = m != nullptr && m->role != Role::host && m->mode == GuestMode::rewrite;
    const std::uint64_t generation = guest_rewrite ? m->pairing->estimator().generation() : 0;
    if (!input.head_key_valid || input.head_generation != generation || input.head_key < it.last_emitted) {
        input.head_key = key_of(it, head);  // may decide the guest's mode
        const bool rewrite_now = m != nullptr && m->role != Role::host && m->mode == GuestMode::rewrite;
        input.head_generation = rewrite_now ? m->pairing->estimator().generation() : 0;
        input.head_key_valid = true;
    }
    return input.head_key;
}

std::uint64_t to_output_value(const Machine& guest, std::int64_t key) {
    if (key < guest.output_offset_ns) {
        throw bt2::Error(fmt::format("trace `{}`: a synchronised time ({} ns) falls before the host clock's origin",
                                     guest.name, key));
    }
    return static_cast<std::uint64_t>(key - guest.output_offset_ns);
}

// The message to emit for guest item `item` at host time `key`.
const bt_message* rewrite(SyncIterator& it, Machine& guest, const Buffered& item, std::int64_t key) {
    TraceIrCopier& copier = *guest.copier;
    const bt_message* msg = item.message.get();
    bt_self_message_iterator* self = it.self;
    // Messages without a time of their own (stream beginning/end) sit at
    // the output's current time.
    const std::uint64_t value = to_output_value(guest, std::max(key, guest.output_offset_ns));
    switch (bt_message_get_type(msg)) {
    case BT_MESSAGE_TYPE_EVENT: {
        const bt_event* in = bt_message_event_borrow_event_const(msg);
        bt_event_class* ec = copier.event_class(bt_event_borrow_class_const(in));
        bt_message* out = nullptr;
        if (const bt_packet* packet = bt_event_borrow_packet_const(in)) {
            out = bt_message_event_create_with_packet_and_default_clock_snapshot(self, ec, copier.packet(packet), value);
        } else {
            out = bt_message_event_create_with_default_clock_snapshot(self, ec, copier.stream(bt_event_borrow_stream_const(in)), value);
        }
        bt2::check(out, "event message");
        TraceIrCopier::copy_event_fields(in, bt_message_event_borrow_event(out));
        return out;
    }
    case BT_MESSAGE_TYPE_PACKET_BEGINNING: {
        const bt_packet* in = bt_message_packet_beginning_borrow_packet_const(msg);
        return bt2::check(item.has_time ? bt_message_packet_beginning_create_with_default_clock_snapshot(
                                              self, copier.packet(in), value)
                                        : bt_message_packet_beginning_create(self, copier.packet(in)),
                          "packet beginning message");
    }
    case BT_MESSAGE_TYPE_PACKET_END: {
        const bt_packet* in = bt_message_packet_end_borrow_packet_const(msg);
        const bt_message* out =
            bt2::check(item.has_time ? bt_message_packet_end_create_with_default_clock_snapshot(self, copier.packet(in), value)
                                     : bt_message_packet_end_create(self, copier.packet(in)),
                       "packet end message");
        copier.forget_packet(in);
        return out;
    }
    case BT_MESSAGE_TYPE_STREAM_BEGINNING: {
        bt_message* out = bt2::check(
            bt_message_stream_beginning_create(self, copier.stream(bt_message_stream_beginning_borrow_stream_const(msg))),
            "stream beginning message");
        const bt_clock_snapshot* cs = nullptr;
        if (bt_message_stream_beginning_borrow_default_clock_snapshot_const(msg, &cs) ==
            BT_MESSAGE_STREAM_CLOCK_SNAPSHOT_STATE_KNOWN) {
            std::int64_t ns = 0;
            bt_clock_snapshot_get_ns_from_origin(cs, &ns);
            bt_message_stream_beginning_set_default_clock_snapshot(
                out, to_output_value(guest, std::max(guest_key(guest, Buffered{{}, nullptr, ns, true, -1}), guest.output_offset_ns)));
        }
        return out;
    }
    case BT_MESSAGE_TYPE_STREAM_END: {
        bt_message* out = bt2::check(
            bt_message_stream_end_create(self, copier.stream(bt_message_stream_end_borrow_stream_const(msg))),
            "stream end message");
        const bt_clock_snapshot* cs = nullptr;
        if (bt_message_stream_end_borrow_default_clock_snapshot_const(msg, &cs) ==
            BT_MESSAGE_STREAM_CLOCK_SNAPSHOT_STATE_KNOWN) {
            bt_message_stream_end_set_default_clock_snapshot(out, value);
        }
        return out;
    }
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS:
    case BT_MESSAGE_TYPE_DISCARDED_PACKETS: {
        const bool events = bt_message_get_type(msg) == BT_MESSAGE_TYPE_DISCARDED_EVENTS;
        const bt_stream* in_stream = events ? bt_message_discarded_events_borrow_stream_const(msg)
                                            : bt_message_discarded_packets_borrow_stream_const(msg);
        bt_stream* stream = copier.stream(in_stream);
        bt_message* out = nullptr;
        if (item.has_time) {
            const bt_clock_snapshot* begin =
                events ? bt_message_discarded_events_borrow_beginning_default_clock_snapshot_const(msg)
                       : bt_message_discarded_packets_borrow_beginning_default_clock_snapshot_const(msg);
            std::int64_t begin_ns = 0;
            bt_clock_snapshot_get_ns_from_origin(begin, &begin_ns);
            const std::uint64_t begin_value = to_output_value(
                guest, std::min(key, std::max(guest_key(guest, Buffered{{}, nullptr, begin_ns, true, -1}), guest.output_offset_ns)));
            out = events ? bt_message_discarded_events_create_with_default_clock_snapshots(self, stream, begin_value, value)
                         : bt_message_discarded_packets_create_with_default_clock_snapshots(self, stream, begin_value, value);
        } else {
            out = events ? bt_message_discarded_events_create(self, stream) : bt_message_discarded_packets_create(self, stream);
        }
        bt2::check(out, "discarded items message");
        std::uint64_t count = 0;
        if (events && bt_message_discarded_events_get_count(msg, &count) == BT_PROPERTY_AVAILABILITY_AVAILABLE) {
            bt_message_discarded_events_set_count(out, count);
        } else if (!events && bt_message_discarded_packets_get_count(msg, &count) == BT_PROPERTY_AVAILABILITY_AVAILABLE) {
            bt_message_discarded_packets_set_count(out, count);
        }
        return out;
    }
    case BT_MESSAGE_TYPE_MESSAGE_ITERATOR_INACTIVITY:
        break;
    }
    throw bt2::Error("unexpected message type");
}

void check_consistency(SyncIterator& it, Machine& guest, const Buffered& item, std::int64_t key) {
    if (item.cpu < 0) {
        ++guest.unchecked;
        return;
    }
    switch (it.tracker->check(guest.pairing->vm_uid(), static_cast<std::uint32_t>(item.cpu), key)) {
    case sync::GuestModeTracker::Verdict::inside:
        ++guest.checked;
        return;
    case sync::GuestModeTracker::Verdict::unknown:
        ++guest.unchecked;
        return;
    case sync::GuestModeTracker::Verdict::outside:
        ++guest.checked;
        ++guest.violations;
        if (guest.first_violation.empty()) {
            const bt_event* event = bt_message_event_borrow_event_const(item.message.get());
            guest.first_violation =
                fmt::format("event {} on vCPU {} at guest time {} ns -> host time {} ns, when the vCPU was not in "
                            "guest mode",
                            bt_event_class_get_name(bt_event_borrow_class_const(event)), item.cpu, item.time, key);
        }
        return;
    }
}

// Emits the head of `input`.
const bt_message* emit(SyncIterator& it, Input& input, std::int64_t key) {
    Buffered item = std::move(input.queue.front());
    input.queue.pop_front();
    input.head_key_valid = false;
    --it.buffered;
    Machine* m = item.machine;
    if (item.has_time) {
        it.last_emitted = std::max(it.last_emitted, key);
    }
    if (m == nullptr) {
        return item.message.release();
    }
    ++m->messages_out;
    const bool event = bt_message_get_type(item.message.get()) == BT_MESSAGE_TYPE_EVENT;
    if (event) {
        ++m->events_out;
        if (item.pairing != nullptr) {
            item.pairing->check_order(item.half, item.cnt, item.time, item.lane, m->name);
        }
    }
    if (m->role == Role::host || m->mode != GuestMode::rewrite) {
        return item.message.release();
    }
    if (event) {
        const clocksync::ClockEstimator& estimator = m->pairing->estimator();
        const std::int64_t unclamped = estimator.transform().apply(item.time);
        if (key > unclamped) {
            ++m->clamped;
            m->max_clamp_ns = std::max(m->max_clamp_ns, key - unclamped);
        }
        const std::int64_t bound = estimator.bound_at(item.time);
        if (bound < 0) {
            ++m->unbounded_events;
        } else {
            m->max_applied_bound_ns = std::max(m->max_applied_bound_ns, bound + (key - unclamped));
        }
        check_consistency(it, *m, item, key);
    }
    return rewrite(it, *m, item, key);
}

nlohmann::json statistics(const SyncIterator& it) {
    const SyncConfig& config = it.component->config;
    nlohmann::json stats;
    stats["window_ns"] = config.window_ns;
    stats["prefetch_ns"] = config.prefetch_ns;
    stats["window_truncations"] = it.window_truncations;
    stats["dropped_inactivity_messages"] = it.dropped_inactivity;
    nlohmann::json machines = nlohmann::json::array();
    for (const auto& m : it.machines) {
        nlohmann::json j{{"name", m->name},
                         {"role", role_name(m->role)},
                         {"events_in", m->events_in},
                         {"events_out", m->events_out},
                         {"messages_in", m->messages_in},
                         {"messages_out", m->messages_out}};
        if (m->role != Role::host) {
            j["mode"] = m->mode == GuestMode::rewrite ? "synchronized" : "unchanged";
            const SyncQuality quality = m->pairing != nullptr ? m->pairing->quality() : SyncQuality::absent;
            j["quality"] = clocksync::to_string(quality);
            if (m->pairing != nullptr) {
                const auto& pairing = *m->pairing;
                const auto& estimator = static_cast<const clocksync::ConvexHullEstimator&>(pairing.estimator());
                const auto& t = estimator.transform();
                j["vm_uid"] = fmt::format("{:#x}", pairing.vm_uid());
                j["method"] = estimator.method();
                j["matches"] = {{"guest_to_host", pairing.guest_to_host_matches()},
                                {"host_to_guest", pairing.host_to_guest_matches()}};
                j["sync_events"] = {{"guest", pairing.guest_events()}, {"host", pairing.host_events()}};
                j["hull_sizes"] = {{"guest_to_host", estimator.upper_set_hull().size()},
                                   {"host_to_guest", estimator.lower_set_hull().size()}};
                j["transform"] = {{"x0_ns", t.x0},
                                  {"y0_ns", t.y0},
                                  {"slope_num", clocksync::to_string(t.slope_num)},
                                  {"slope_den", clocksync::to_string(t.slope_den)},
                                  {"slope", t.slope()},
                                  {"drift_ppm", (t.slope() - 1.0) * 1e6},
                                  {"offset_ns", t.offset_at_reference()}};
                j["accuracy_ns"] = estimator.max_bound();
                j["anomalies"] = {{"duplicate_cnt", pairing.anomalies().duplicate_cnt},
                                  {"out_of_order_cnt", pairing.anomalies().out_of_order_cnt},
                                  {"unmatched", pairing.anomalies().unmatched + pairing.pending()},
                                  {"first", pairing.anomalies().first}};
            }
            j["max_applied_bound_ns"] = m->max_applied_bound_ns;
            j["unbounded_events"] = m->unbounded_events;
            j["clamped_events"] = m->clamped;
            j["max_clamp_ns"] = m->max_clamp_ns;
            j["consistency"] = {{"checked", m->checked},
                                {"violations", m->violations},
                                {"unchecked", m->unchecked},
                                {"first_violation", m->first_violation}};
        }
        machines.push_back(j);
    }
    stats["machines"] = machines;
    nlohmann::json orphans = nlohmann::json::array();
    for (const auto& [vm_uid, pairing] : it.pairings) {
        bool has_guest = false;
        for (const auto& m : it.machines) {
            has_guest = has_guest || m->pairing == pairing.get();
        }
        if (!has_guest) {
            orphans.push_back({{"vm_uid", fmt::format("{:#x}", vm_uid)}, {"host_events", pairing->host_events()}});
        }
    }
    stats["vm_uids_without_guest_trace"] = orphans;
    return stats;
}

// Prints the summary, writes the statistics and returns the problems that
// make the output untrustworthy (empty when none).
std::vector<std::string> finish(SyncIterator& it) {
    const SyncConfig& config = it.component->config;
    const nlohmann::json stats = statistics(it);
    std::vector<std::string> warnings;
    std::vector<std::string> errors;
    if (it.host == nullptr) {
        errors.push_back("no input trace is a KVM host (none declares vmsync_*_host or kvm entry/exit events)");
    }
    std::string text = "vmtrace sync summary\n";
    for (const auto& m : it.machines) {
        if (m->events_in != m->events_out) {
            errors.push_back(fmt::format("trace `{}`: {} events in but {} out", m->name, m->events_in, m->events_out));
        }
        if (m->role == Role::host) {
            text += fmt::format("  host  {}: {} events passed through\n", m->name, m->events_out);
            continue;
        }
        const SyncQuality quality = m->pairing != nullptr ? m->pairing->quality() : SyncQuality::absent;
        if (m->pairing == nullptr) {
            warnings.push_back(fmt::format("trace `{}` has no vmsync events: passed through unchanged, NOT on the "
                                           "host time base (load the vmtrace guest module in that guest)",
                                           m->name));
            text += fmt::format("  guest {}: quality absent, {} events passed through unchanged\n", m->name, m->events_out);
            continue;
        }
        const auto& pairing = *m->pairing;
        const auto& estimator = static_cast<const clocksync::ConvexHullEstimator&>(pairing.estimator());
        const auto& t = estimator.transform();
        text += fmt::format("  guest {} (vm_uid {:#x}): quality {}, {} guest->host and {} host->guest handshakes matched, "
                            "hull {}+{} points\n",
                            m->name, pairing.vm_uid(), clocksync::to_string(quality), pairing.guest_to_host_matches(),
                            pairing.host_to_guest_matches(), estimator.upper_set_hull().size(),
                            estimator.lower_set_hull().size());
        if (m->mode == GuestMode::rewrite) {
            text += fmt::format("        host = guest + {:.9f} s, drift {:+.3f} ppm; accuracy +-{} ns (largest bound applied "
                                "+-{} ns)\n",
                                static_cast<double>(t.offset_at_reference()) * 1e-9, (t.slope() - 1.0) * 1e6,
                                estimator.max_bound(), m->max_applied_bound_ns);
            text += fmt::format("        {} events synchronised; consistency: {} violations in {} checked events ({} "
                                "not checkable)\n",
                                m->events_out, m->violations, m->checked, m->unchecked);
        } else {
            text += fmt::format("        {} events passed through UNCHANGED\n", m->events_out);
        }
        if (m->mode == GuestMode::passthrough) {
            errors.push_back(fmt::format(
                "trace `{}` (vm_uid {:#x}): its vmsync handshakes have no usable counterpart in the host trace ({} "
                "guest and {} host sync events, quality {} within the {} ms look-ahead window); it was passed "
                "through unchanged",
                m->name, pairing.vm_uid(), pairing.guest_events(), pairing.host_events(),
                clocksync::to_string(quality), config.window_ns / 1'000'000));
        }
        const auto& anomalies = pairing.anomalies();
        if (anomalies.duplicate_cnt + anomalies.out_of_order_cnt > 0) {
            const std::string message = fmt::format(
                "trace `{}`: {} duplicate and {} out-of-order vmsync cnt values; first: {}", m->name,
                anomalies.duplicate_cnt, anomalies.out_of_order_cnt, anomalies.first);
            (config.strict ? errors : warnings).push_back(message);
        }
        if (m->checked > 0 &&
            static_cast<double>(m->violations) > config.max_violation_ratio * static_cast<double>(m->checked)) {
            errors.push_back(fmt::format("trace `{}`: {} of {} checked events fall outside the host's guest-mode "
                                         "intervals of their vCPU; first: {}",
                                         m->name, m->violations, m->checked, m->first_violation));
        } else if (m->violations > 0) {
            warnings.push_back(fmt::format("trace `{}`: {} consistency violations; first: {}", m->name, m->violations,
                                           m->first_violation));
        }
    }
    for (const auto& orphan : stats["vm_uids_without_guest_trace"]) {
        warnings.push_back(fmt::format("the host records {} vmsync events of vm_uid {} but no input trace is that "
                                       "guest",
                                       orphan["host_events"].get<std::uint64_t>(),
                                       orphan["vm_uid"].get<std::string>()));
    }
    if (it.window_truncations > 0) {
        warnings.push_back(fmt::format("{} times the buffer limit ({} messages) cut the look-ahead window short",
                                       it.window_truncations, config.max_buffered));
    }
    for (const std::string& w : warnings) {
        text += fmt::format("  WARNING: {}\n", w);
    }
    for (const std::string& e : errors) {
        text += fmt::format("  ERROR: {}\n", e);
    }
    if (!config.quiet) {
        std::fputs(text.c_str(), stderr);
    }
    if (!config.stats_path.empty()) {
        nlohmann::json out = stats;
        out["warnings"] = warnings;
        out["errors"] = errors;
        std::ofstream file(config.stats_path);
        file << out.dump(2) << '\n';
        if (!file) {
            errors.push_back(fmt::format("cannot write statistics file `{}`", config.stats_path));
        }
    }
    return errors;
}

// Reads the first prefetch_ns of every input with its scout iterator and
// feeds the vmsync events to the pairings; everything else is dropped at
// once, so babeltrace2 recycles the objects.
void prefetch(SyncIterator& it) {
    const std::int64_t span = it.component->config.prefetch_ns;
    for (Input& input : it.inputs) {
        if (!input.scout) {
            continue;
        }
        std::int64_t stop_after = std::numeric_limits<std::int64_t>::max();
        bool done = false;
        while (!done) {
            bt_message_array_const messages = nullptr;
            std::uint64_t count = 0;
            const bt_message_iterator_next_status status = bt_message_iterator_next(input.scout.get(), &messages, &count);
            if (status == BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR) {
                throw std::bad_alloc();
            }
            if (status == BT_MESSAGE_ITERATOR_NEXT_STATUS_ERROR) {
                throw bt2::CallError(fmt::format("cannot read input port `{}`", input.port));
            }
            if (status != BT_MESSAGE_ITERATOR_NEXT_STATUS_OK) {
                break;  // END, or AGAIN from a live source: prefetch what came
            }
            for (std::uint64_t i = 0; i < count; ++i) {
                bt2::MessageRef msg = bt2::MessageRef::adopt(messages[i]);
                if (done) {
                    continue;
                }
                const bt_message_type type = bt_message_get_type(msg.get());
                if (type == BT_MESSAGE_TYPE_PACKET_BEGINNING) {
                    const bt_packet* packet = bt_message_packet_beginning_borrow_packet_const(msg.get());
                    it.stream_cpu[bt_packet_borrow_stream_const(packet)] = packet_cpu(packet);
                }
                if (type != BT_MESSAGE_TYPE_EVENT) {
                    continue;
                }
                Buffered item;
                const bt_event* event = bt_message_event_borrow_event_const(msg.get());
                const bt_stream* stream = bt_event_borrow_stream_const(event);
                Machine& machine = machine_of(it, stream);
                const bt_clock_snapshot* cs = bt_message_event_borrow_default_clock_snapshot_const(msg.get());
                if (machine.clock_class == nullptr ||
                    bt_clock_snapshot_get_ns_from_origin(cs, &item.time) != BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
                    done = true;
                    continue;
                }
                if (stop_after == std::numeric_limits<std::int64_t>::max()) {
                    stop_after = item.time + span;
                }
                if (item.time > stop_after) {
                    done = true;
                    continue;
                }
                auto cpu = it.stream_cpu.find(stream);
                item.cpu = cpu != it.stream_cpu.end() ? cpu->second : -1;
                const EventInfo& info = info_of(it, bt_event_borrow_class_const(event));
                static constexpr std::pair<EventKind, SyncHalf> kHalves[] = {
                    {EventKind::gh_guest, SyncHalf::gh_guest}, {EventKind::hg_guest, SyncHalf::hg_guest},
                    {EventKind::gh_host, SyncHalf::gh_host}, {EventKind::hg_host, SyncHalf::hg_host}};
                for (const auto& [kind, half] : kHalves) {
                    if (info.kind == kind) {
                        record_sync(it, machine, half, event, info, item, true);
                        ++input.prefetched_sync;
                    }
                }
            }
        }
        input.scout.reset();
    }
}

bt_message_iterator_class_next_method_status next(SyncIterator& it, bt_message_array_const messages,
                                                  std::uint64_t capacity, std::uint64_t* count) {
    if (!it.prefetched) {
        it.prefetched = true;
        prefetch(it);
        it.input_share = std::max<std::uint64_t>(it.component->config.max_buffered / it.inputs.size(), 1);
        for (Input& input : it.inputs) {
            it.to_fill.push_back(&input);
        }
    }
    std::uint64_t n = 0;
    while (n < capacity) {
        // Only the inputs that emitted since the last fill can need more.
        while (!it.to_fill.empty()) {
            Input& input = *it.to_fill.back();
            while (needs_more(it, input)) {
                if (!pull(it, input)) {
                    if (n > 0) {
                        *count = n;
                        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
                    }
                    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_AGAIN;
                }
            }
            if (!input.ended && input.queue.size() >= it.input_share &&
                input.last_time - input.queue.front().time < it.component->config.window_ns) {
                ++it.window_truncations;
            }
            it.to_fill.pop_back();
        }
        Input* best = nullptr;
        std::int64_t best_key = 0;
        for (Input& input : it.inputs) {
            if (input.queue.empty()) {
                continue;
            }
            const std::int64_t key = head_key(it, input);
            if (best == nullptr || key < best_key) {
                best = &input;
                best_key = key;
            }
        }
        if (best == nullptr) {
            if (!it.finished) {
                it.finished = true;
                const std::vector<std::string> errors = finish(it);
                if (!errors.empty()) {
                    std::string all;
                    for (const std::string& e : errors) {
                        all += (all.empty() ? "" : "; ") + e;
                    }
                    throw bt2::Error("the synchronised output cannot be trusted: " + all);
                }
            }
            break;
        }
        messages[n++] = emit(it, *best, best_key);
        it.to_fill.push_back(best);
        if (++it.emitted % kForgetEvery == 0 && it.last_emitted > kForgetLag) {
            // Guest events are never emitted before last_emitted, so older
            // guest-mode intervals are of no more use.
            it.tracker->forget_before(it.last_emitted - kForgetLag);
        }
    }
    *count = n;
    if (n == 0) {
        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
    }
    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
}

SyncConfig parse_config(const bt2::Params& params) {
    params.reject_unknown({"window-ms", "prefetch-ms", "max-buffered-messages", "host", "stats", "quiet", "strict",
                           "max-violation-ratio"});
    SyncConfig config;
    const std::int64_t window_ms = params.integer("window-ms").value_or(config.window_ns / 1'000'000);
    if (window_ms < 0 || window_ms > 3'600'000) {
        throw bt2::Error("filter.vmtrace.sync: parameter `window-ms` must be between 0 and 3600000");
    }
    config.window_ns = window_ms * 1'000'000;
    const std::int64_t prefetch_ms = params.integer("prefetch-ms").value_or(config.prefetch_ns / 1'000'000);
    if (prefetch_ms < 0 || prefetch_ms > 3'600'000) {
        throw bt2::Error("filter.vmtrace.sync: parameter `prefetch-ms` must be between 0 and 3600000");
    }
    config.prefetch_ns = prefetch_ms * 1'000'000;
    const std::int64_t max_buffered =
        params.integer("max-buffered-messages").value_or(static_cast<std::int64_t>(config.max_buffered));
    if (max_buffered < 1) {
        throw bt2::Error("filter.vmtrace.sync: parameter `max-buffered-messages` must be positive");
    }
    config.max_buffered = static_cast<std::uint64_t>(max_buffered);
    config.host = params.string("host").value_or("");
    config.stats_path = params.string("stats").value_or("");
    config.quiet = params.boolean("quiet").value_or(false);
    config.strict = params.boolean("strict").value_or(true);
    config.max_violation_ratio = params.real("max-violation-ratio").value_or(config.max_violation_ratio);
    if (config.max_violation_ratio < 0 || config.max_violation_ratio > 1) {
        throw bt2::Error("filter.vmtrace.sync: parameter `max-violation-ratio` must be between 0 and 1");
    }
    return config;
}

SyncComponent* component_of(bt_self_component_filter* self) {
    return static_cast<SyncComponent*>(bt_self_component_get_data(bt_self_component_filter_as_self_component(self)));
}

void add_input_port(bt_self_component_filter* self, SyncComponent& comp) {
    const std::string name = fmt::format("in{}", comp.next_port++);
    bt2::check_status(bt_self_component_filter_add_input_port(self, name.c_str(), nullptr, nullptr), "add input port");
}

}  // namespace
}  // namespace vmtrace::plugin

using namespace vmtrace;
using namespace vmtrace::plugin;

extern "C" bt_component_class_initialize_method_status vmtrace_sync_initialize(
    bt_self_component_filter* self, bt_self_component_filter_configuration*, const bt_value* params, void*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_filter_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_initialize_method_status>(append, [&] {
        auto comp = std::make_unique<SyncComponent>();
        comp->config = parse_config(bt2::Params(params, "filter.vmtrace.sync"));
        add_input_port(self, *comp);
        bt2::check_status(bt_self_component_filter_add_output_port(self, "out", nullptr, nullptr), "add output port");
        bt_self_component_set_data(bt_self_component_filter_as_self_component(self), comp.release());
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_sync_finalize(bt_self_component_filter* self) { delete component_of(self); }

extern "C" bt_component_class_port_connected_method_status vmtrace_sync_input_port_connected(
    bt_self_component_filter* self, bt_self_component_port_input*, const bt_port_output*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_filter_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_port_connected_method_status>(append, [&] {
        add_input_port(self, *component_of(self));
        return BT_COMPONENT_CLASS_PORT_CONNECTED_METHOD_STATUS_OK;
    });
}

extern "C" bt_message_iterator_class_initialize_method_status vmtrace_sync_iterator_initialize(
    bt_self_message_iterator* self, bt_self_message_iterator_configuration*, bt_self_component_port_output*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_initialize_method_status>(append, [&] {
        bt_self_component* self_comp = bt_self_message_iterator_borrow_component(self);
        auto* comp = static_cast<SyncComponent*>(bt_self_component_get_data(self_comp));
        auto it = std::make_unique<SyncIterator>();
        it->self = self;
        it->component = comp;
        it->tracker = std::make_unique<sync::GuestModeTracker>();
        // The iterator's component is this filter.
        auto* self_filter = reinterpret_cast<bt_self_component_filter*>(self_comp);
        const bt_component_filter* filter = bt_self_component_filter_as_component_filter(self_filter);
        for (std::uint64_t i = 0; i < bt_component_filter_get_input_port_count(filter); ++i) {
            bt_self_component_port_input* port = bt_self_component_filter_borrow_input_port_by_index(self_filter, i);
            const bt_port* as_port = bt_self_component_port_as_port(bt_self_component_port_input_as_self_component_port(port));
            if (!bt_port_is_connected(as_port)) {
                continue;
            }
            bt_message_iterator* upstream = nullptr;
            if (bt_message_iterator_create_from_message_iterator(self, port, &upstream) !=
                BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_OK) {
                throw bt2::CallError(fmt::format("cannot create a message iterator on input port `{}`",
                                                 bt_port_get_name(as_port)));
            }
            Input input;
            input.iterator = bt2::MessageIteratorRef::adopt(upstream);
            input.port = bt_port_get_name(as_port);
            if (comp->config.prefetch_ns > 0) {
                bt_message_iterator* scout = nullptr;
                if (bt_message_iterator_create_from_message_iterator(self, port, &scout) !=
                    BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_OK) {
                    throw bt2::CallError(fmt::format("cannot create a second message iterator on input port `{}`",
                                                     input.port));
                }
                input.scout = bt2::MessageIteratorRef::adopt(scout);
            }
            it->inputs.push_back(std::move(input));
        }
        if (it->inputs.empty()) {
            throw bt2::Error("filter.vmtrace.sync: no input port is connected");
        }
        bt_self_message_iterator_set_data(self, it.release());
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_sync_iterator_finalize(bt_self_message_iterator* self) {
    delete static_cast<SyncIterator*>(bt_self_message_iterator_get_data(self));
}

extern "C" bt_message_iterator_class_next_method_status vmtrace_sync_iterator_next(
    bt_self_message_iterator* self, bt_message_array_const messages, uint64_t capacity, uint64_t* count) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_next_method_status>(append, [&] {
        return next(*static_cast<SyncIterator*>(bt_self_message_iterator_get_data(self)), messages, capacity, count);
    });
}
