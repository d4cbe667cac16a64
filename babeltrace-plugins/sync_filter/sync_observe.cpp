// SPDX-License-Identifier: MIT
// filter.vmtrace.sync: reading the inputs. Tells machines and their roles apart,
// feeds vmsync events to the pairings and host events to the guest-mode
// tracker, and keeps each input `window` ahead.
#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <optional>

#include "bt2/error.hpp"
#include "bt2/trace_ir_read.hpp"
#include "schema/events.hpp"
#include "sync_filter/sync_state.hpp"

namespace vmtrace::plugin::syncfilter {
namespace ev = vmtrace::schema;

// lttng-modules' names of KVM's entry and exit, recorded by hosts without
// the vmtrace host module; not in docs/events.json, which names the
// module's kvm_x86_* events.
constexpr std::string_view kLttngKvmEntry = "kvm_entry";
constexpr std::string_view kLttngKvmExit = "kvm_exit";

std::string_view role_name(Role role) {
    switch (role) {
    case Role::host:
        return "host";
    case Role::guest:
        return "guest";
    case Role::tracer:
        return "memory tracer";
    case Role::other:
        return "other";
    }
    return "?";
}

std::string trace_ref(const Machine& machine) {
    if (machine.source.empty()) {
        return fmt::format("trace `{}`", machine.name);
    }
    return fmt::format("trace `{}` (from `{}`)", machine.name, machine.source);
}

std::string input_description(const Input& input) {
    std::string text = fmt::format("input port `{}`", input.port);
    if (!input.upstream.empty()) {
        text += fmt::format(" (fed by `{}`'s port `{}`)", input.upstream, input.upstream_port);
    }
    for (const Buffered& b : input.queue) {
        if (b.machine != nullptr) {
            return text + fmt::format(", {}", trace_ref(*b.machine));
        }
    }
    return text;
}

Machine& machine_of(SyncIterator& it, const Input& input, const bt_stream* stream) {
    const bt_trace* trace = bt_stream_borrow_trace_const(stream);
    auto found = it.machine_by_trace.find(trace);
    if (found != it.machine_by_trace.end()) {
        return *found->second;
    }
    auto machine = std::make_unique<Machine>();
    machine->trace = trace;
    machine->name = trace_display_name(trace);
    if (machine->name.empty()) {
        machine->name = "(unnamed trace)";
    }
    machine->source = input.upstream;
    // Guests started from one image often share a hostname ("(none)" in
    // an initramfs): keep names unique, reports are useless otherwise.
    auto taken = [&](const std::string& name) {
        return std::any_of(it.machines.begin(), it.machines.end(),
                           [&](const auto& other) { return other->name == name; });
    };
    if (taken(machine->name)) {
        const char* trace_name = bt_trace_get_name(trace);
        std::string candidate = trace_name != nullptr && machine->name != trace_name
                                    ? fmt::format("{} [{}]", machine->name, trace_name)
                                    : "";
        for (unsigned n = 2; candidate.empty() || taken(candidate); ++n) {
            candidate = fmt::format("{} #{}", machine->name, n);
        }
        machine->name = candidate;
    }
    machine->clock_class = bt_stream_class_borrow_default_clock_class_const(bt_stream_borrow_class_const(stream));
    const bt_trace_class* tc = bt_trace_borrow_class_const(trace);
    const SyncConfig& config = it.component->config;
    // A memory tracer is known by its own events, whatever else it
    // declares; a host that records one of them is refused when it does.
    const bool tracer = declares_event(tc, {ev::vmtrace_mem_sync::event_name, ev::vmtrace_mem_access::event_name});
    if (!config.host.empty()) {
        machine->role = machine->name == config.host ? Role::host : tracer ? Role::tracer : Role::guest;
    } else if (tracer) {
        machine->role = Role::tracer;
    } else if (declares_event(
                   tc, {ev::vmsync_gh_host::event_name, ev::vmsync_hg_host::event_name, ev::kvm_x86_entry::event_name,
                        kLttngKvmEntry, ev::kvm_x86_exit::event_name, kLttngKvmExit,
                        ev::vmtrace_memsync_begin::event_name, ev::vmtrace_memsync_end::event_name})) {
        machine->role = Role::host;
    }
    machine->declares_sync =
        machine->role == Role::tracer
            ? declares_event(tc, {ev::vmtrace_mem_sync::event_name})
            : declares_event(tc, {ev::vmsync_gh_guest::event_name, ev::vmsync_hg_guest::event_name});
    if (machine->role == Role::other && machine->declares_sync) {
        machine->role = Role::guest;
    }
    if (machine->role == Role::host) {
        if (it.host != nullptr) {
            throw bt2::Error(
                fmt::format("{} and {} both look like KVM hosts (they declare kvm or vmsync host events); "
                            "name the host with the `host` parameter",
                            trace_ref(*it.host), trace_ref(*machine)));
        }
        if (machine->clock_class == nullptr) {
            throw bt2::Error(fmt::format("host {} has no clock: nothing to synchronise to", trace_ref(*machine)));
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

static const EventInfo& info_of(SyncIterator& it, const Machine& machine, const bt_event_class* ec) {
    auto found = it.event_info.find(ec);
    if (found != it.event_info.end()) {
        return found->second;
    }
    EventInfo info;
    const std::string_view name = event_class_name(ec);
    static constexpr std::pair<std::string_view, EventKind> kKinds[] = {
        {ev::sched_switch::event_name, EventKind::sched_switch},
        {ev::kvm_x86_entry::event_name, EventKind::kvm_entry},
        {kLttngKvmEntry, EventKind::kvm_entry},
        {ev::kvm_x86_exit::event_name, EventKind::kvm_exit},
        {kLttngKvmExit, EventKind::kvm_exit},
        {ev::vmsync_gh_guest::event_name, EventKind::gh_guest},
        {ev::vmsync_hg_guest::event_name, EventKind::hg_guest},
        {ev::vmsync_gh_host::event_name, EventKind::gh_host},
        {ev::vmsync_hg_host::event_name, EventKind::hg_host},
        {ev::vmtrace_mem_sync::event_name, EventKind::mem_sync},
        {ev::vmtrace_memsync_begin::event_name, EventKind::memsync_begin},
        {ev::vmtrace_memsync_end::event_name, EventKind::memsync_end},
    };
    for (const auto& [event_name, kind] : kKinds) {
        if (name == event_name) {
            info.kind = kind;
        }
    }
    const bt_field_class* payload = bt_event_class_borrow_payload_field_class_const(ec);
    // Found by name, not by the schema's position: lttng-modules' kvm
    // events and older recordings order their fields differently.
    auto member = [&](const ev::Field& field, std::uint64_t& index) {
        if (payload == nullptr) {
            return false;
        }
        for (std::uint64_t i = 0; i < bt_field_class_structure_get_member_count(payload); ++i) {
            const auto* m = bt_field_class_structure_borrow_member_by_index_const(payload, i);
            if (std::string_view(bt_field_class_structure_member_get_name(m)) == field.name &&
                bt_field_class_type_is(
                    bt_field_class_get_type(bt_field_class_structure_member_borrow_field_class_const(m)),
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
        complete = member(ev::sched_switch::next_tid, info.next_tid);
        break;
    case EventKind::gh_guest:
    case EventKind::hg_guest:
    case EventKind::gh_host:
    case EventKind::hg_host:
        // The four halves share cnt and vm_uid; the host's also vcpu_id.
        static_assert(ev::vmsync_gh_guest::cnt.name == ev::vmsync_hg_host::cnt.name &&
                      ev::vmsync_gh_guest::vm_uid.name == ev::vmsync_hg_host::vm_uid.name &&
                      ev::vmsync_gh_host::vcpu_id.name == ev::vmsync_hg_host::vcpu_id.name);
        complete = member(ev::vmsync_gh_host::cnt, info.cnt) && member(ev::vmsync_gh_host::vm_uid, info.vm_uid);
        info.has_vcpu_id = member(ev::vmsync_gh_host::vcpu_id, info.vcpu_id);
        break;
    case EventKind::mem_sync:
        complete = member(ev::vmtrace_mem_sync::cnt, info.cnt) && member(ev::vmtrace_mem_sync::hpa, info.hpa) &&
                   member(ev::vmtrace_mem_sync::cpu, info.mem_cpu);
        break;
    case EventKind::memsync_begin:
    case EventKind::memsync_end:
        static_assert(ev::vmtrace_memsync_begin::cnt.name == ev::vmtrace_memsync_end::cnt.name &&
                      ev::vmtrace_memsync_begin::hpa.name == ev::vmtrace_memsync_end::hpa.name);
        complete = member(ev::vmtrace_memsync_begin::cnt, info.cnt) && member(ev::vmtrace_memsync_begin::hpa, info.hpa);
        break;
    default:
        break;
    }
    if (!complete) {
        throw bt2::Error(fmt::format("{}: event class `{}` lacks an integer field that docs/events.json requires",
                                     trace_ref(machine), name));
    }
    return it.event_info.emplace(ec, info).first->second;
}

static sync::VmPairing& pairing_of(SyncIterator& it, std::uint64_t vm_uid) {
    auto& slot = it.pairings[vm_uid];
    if (!slot) {
        slot = std::make_unique<sync::VmPairing>(vm_uid, it.component->config.estimator->create());
    }
    return *slot;
}

// The vmsync half an event kind records, if it is one.
static std::optional<SyncHalf> sync_half(EventKind kind) {
    switch (kind) {
    case EventKind::gh_guest:
        return SyncHalf::gh_guest;
    case EventKind::hg_guest:
        return SyncHalf::hg_guest;
    case EventKind::gh_host:
        return SyncHalf::gh_host;
    case EventKind::hg_host:
        return SyncHalf::hg_host;
    default:
        return std::nullopt;
    }
}

// Pairs a vmsync event (unless `feed` is false: the prefetch already did)
// and notes what it tells about its machine and vCPU thread.
static void record_sync(SyncIterator& it, Machine& machine, SyncHalf half, const bt_event* event, const EventInfo& info,
                        Buffered& item, bool feed) {
    const std::int64_t time = item.time;
    const std::int32_t cpu = item.cpu;
    const bt_field* payload = bt_event_borrow_payload_field_const(event);
    const auto cnt = static_cast<std::uint32_t>(integer_member(payload, info.cnt));
    const auto vm_uid = static_cast<std::uint64_t>(integer_member(payload, info.vm_uid));
    const bool host_side = half == SyncHalf::gh_host || half == SyncHalf::hg_host;
    if (host_side ? machine.role != Role::host : machine.role != Role::guest) {
        throw bt2::Error(fmt::format("{} ({}) records {}, which only a {} records", trace_ref(machine),
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
                throw bt2::Error(fmt::format("{} and {} both record vmsync events of vm_uid {:#x}", trace_ref(*other),
                                             trace_ref(machine), vm_uid));
            }
        }
        machine.pairing = &pairing;
    } else if (machine.pairing != &pairing) {
        throw bt2::Error(fmt::format("{}: event {} at {} ns has vm_uid {:#x}, but earlier events had {:#x}",
                                     trace_ref(machine), sync::event_name(half), time, vm_uid,
                                     machine.pairing->vm_uid()));
    }
    if (feed) {
        pairing.add(half, cnt, time, lane, machine.name);
    }
    item.pairing = &pairing;
    item.half = half;
    item.cnt = cnt;
    item.lane = lane;
}

static sync::VmPairing& memsync_pairing_of(SyncIterator& it, std::uint64_t hpa) {
    auto& slot = it.memsync_pairings[hpa];
    if (!slot) {
        slot = std::make_unique<sync::VmPairing>(hpa, it.component->config.estimator->create(), 65536,
                                                 sync::kMemsyncHandshake);
    }
    return *slot;
}

// Pairs a memsync event (unless `feed` is false: the prefetch already did).
// The host's begin and end are the host halves of the mark's two messages;
// the tracer's vmtrace_mem_sync is both tracer halves: the receipt of the
// host->tracer message and the sending of the tracer->host one.
static void record_memsync(SyncIterator& it, Machine& machine, EventKind kind, const bt_event* event,
                           const EventInfo& info, Buffered& item, bool feed) {
    const bt_field* payload = bt_event_borrow_payload_field_const(event);
    const auto cnt = static_cast<std::uint32_t>(integer_member(payload, info.cnt));
    const auto hpa = static_cast<std::uint64_t>(integer_member(payload, info.hpa));
    const bool host_side = kind != EventKind::mem_sync;
    const std::string_view name = bt_event_class_get_name(bt_event_borrow_class_const(event));
    if (host_side && machine.role != Role::host) {
        throw bt2::Error(
            fmt::format("{} ({}) records {} at {} ns (cnt {}, hpa {:#x}), which only the host records: "
                        "the host stores the memory tracer's clock marks",
                        trace_ref(machine), role_name(machine.role), name, item.time, cnt, hpa));
    }
    if (!host_side && machine.role != Role::tracer) {
        throw bt2::Error(
            fmt::format("{} ({}) records {} at {} ns (cnt {}, hpa {:#x}), which only a memory tracer "
                        "records",
                        trace_ref(machine), role_name(machine.role), name, item.time, cnt, hpa));
    }
    sync::VmPairing& pairing = memsync_pairing_of(it, hpa);
    item.pairing = &pairing;
    item.cnt = cnt;
    if (host_side) {
        // The host CPU that stored the mark: the tracer's `cpu`.
        item.lane = item.cpu < 0 ? 0 : static_cast<std::uint32_t>(item.cpu);
        item.half = kind == EventKind::memsync_begin ? SyncHalf::hg_host : SyncHalf::gh_host;
        if (feed) {
            pairing.add(item.half, cnt, item.time, item.lane, machine.name);
        }
        return;
    }
    if (machine.pairing == nullptr) {
        for (const auto& other : it.machines) {
            if (other->pairing == &pairing) {
                throw bt2::Error(
                    fmt::format("{} and {} both record {} marks of the reserved page at hpa {:#x}: two memory "
                                "tracers cannot share one page (give each its own)",
                                trace_ref(*other), trace_ref(machine), name, hpa));
            }
        }
        machine.pairing = &pairing;
    } else if (machine.pairing != &pairing) {
        throw bt2::Error(fmt::format("{}: event {} at {} ns (cnt {}) has hpa {:#x}, but its earlier marks had {:#x}",
                                     trace_ref(machine), name, item.time, cnt, hpa, machine.pairing->vm_uid()));
    }
    item.lane = static_cast<std::uint32_t>(integer_member(payload, info.mem_cpu));
    item.half = SyncHalf::gh_guest;  // the half whose cnt order emit() checks
    if (feed) {
        pairing.add(SyncHalf::hg_guest, cnt, item.time, item.lane, machine.name);
        pairing.add(SyncHalf::gh_guest, cnt, item.time, item.lane, machine.name);
    }
}

// Pairs a vmsync or memsync event; false when `kind` is neither.
static bool record_handshake(SyncIterator& it, Machine& machine, EventKind kind, const bt_event* event,
                             const EventInfo& info, Buffered& item, bool feed) {
    if (const auto half = sync_half(kind)) {
        record_sync(it, machine, *half, event, info, item, feed);
        return true;
    }
    if (kind == EventKind::mem_sync || kind == EventKind::memsync_begin || kind == EventKind::memsync_end) {
        record_memsync(it, machine, kind, event, info, item, feed);
        return true;
    }
    return false;
}

// The CPU of a packet's stream (-1: none), refused when no machine has it:
// CPU numbers index the guest-mode tracker's table.
static std::int32_t checked_cpu(const Input& input, const bt_packet* packet) {
    const std::int32_t cpu = packet_cpu_id(packet);
    if (cpu < -1 || cpu >= kMaxCpus) {
        throw bt2::Error(fmt::format("{}: a packet's cpu_id {} is not a CPU number (Linux has at most {} CPUs)",
                                     input_description(input), static_cast<std::uint32_t>(cpu), kMaxCpus));
    }
    return cpu;
}

// Learns what a freshly pulled message tells about the machines.
static void observe(SyncIterator& it, Input& input, Buffered& item) {
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
        it.stream_cpu[stream] = checked_cpu(input, packet);
        input.last_stream = nullptr;  // the CPU may have changed
        break;
    }
    case BT_MESSAGE_TYPE_PACKET_END:
        stream = bt_packet_borrow_stream_const(bt_message_packet_end_borrow_packet_const(msg));
        break;
    case BT_MESSAGE_TYPE_STREAM_BEGINNING:
        stream = bt_message_stream_beginning_borrow_stream_const(msg);
        input.saw_stream = true;
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
        input.last_machine = &machine_of(it, input, stream);
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
        if (bt_clock_snapshot_get_ns_from_origin(snapshot, &item.time) !=
            BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
            // babeltrace2 appended its cause: propagate it with ours.
            throw bt2::CallError(fmt::format("{}: a clock value (message {} of {}) overflows 64-bit ns from origin",
                                             trace_ref(machine), machine.messages_in, input_description(input)));
        }
        item.has_time = true;
        machine.first_time = std::min(machine.first_time, item.time);
        machine.last_time = std::max(machine.last_time, item.time);
    }
    if (bt_message_get_type(msg) != BT_MESSAGE_TYPE_EVENT) {
        return;
    }
    ++machine.events_in;
    const bt_event* event = bt_message_event_borrow_event_const(msg);
    const bt_event_class* event_class = bt_event_borrow_class_const(event);
    if (event_class != input.last_event_class) {
        input.last_event_info = &info_of(it, machine, event_class);
        input.last_event_class = event_class;
    }
    const EventInfo& info = *input.last_event_info;
    if (info.kind == EventKind::other) {
        return;
    }
    const std::int64_t time = item.time;
    // The guest-mode intervals serve the consistency check of emitted
    // events: an estimate emits none.
    const bool host = machine.role == Role::host && !it.component->config.estimate_only;
    switch (info.kind) {
    case EventKind::sched_switch:
        if (host && item.cpu >= 0) {
            it.tracker->on_sched_switch(
                static_cast<std::uint32_t>(item.cpu),
                static_cast<std::int32_t>(integer_member(bt_event_borrow_payload_field_const(event), info.next_tid)),
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
    case EventKind::hg_guest:
    case EventKind::gh_host:
    case EventKind::hg_host:
    case EventKind::mem_sync:
    case EventKind::memsync_begin:
    case EventKind::memsync_end:
        record_handshake(it, machine, info.kind, event, info, item, input.seen_sync++ >= input.prefetched_sync);
        break;
    case EventKind::other:
        break;
    }
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
        if (!input.saw_stream) {
            // A trace with metadata but no data streams, for one: the user
            // gave it, so its absence from the output must be told.
            it.empty_inputs.push_back(input_description(input));
        }
        return true;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
        return false;
    case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
        throw std::bad_alloc();
    default:
        throw bt2::CallError(fmt::format("cannot read {}", input_description(input)));
    }
    input.progress_at = std::chrono::steady_clock::now();
    input.stale = false;
    bt2::MessageBatch batch(messages, count);
    while (!batch.empty()) {
        Buffered item;
        item.message = batch.take();
        if (bt_message_get_type(item.message.get()) == BT_MESSAGE_TYPE_MESSAGE_ITERATOR_INACTIVITY) {
            // Nothing to keep, but live it tells how far the input is.
            ++it.dropped_inactivity;
            std::int64_t ns = 0;
            if (it.component->config.live &&
                bt_clock_snapshot_get_ns_from_origin(
                    bt_message_message_iterator_inactivity_borrow_clock_snapshot_const(item.message.get()), &ns) ==
                    BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
                input.quiet_until = std::max(input.quiet_until, ns);
            }
            continue;
        }
        observe(it, input, item);
        if (it.component->config.estimate_only) {
            // Nothing is emitted: only a handshake's time and cnt are kept,
            // for the cnt order check at the end.
            if (item.pairing != nullptr) {
                item.message = bt2::MessageRef();
                it.handshakes_read.push_back(std::move(item));
            }
            continue;
        }
        if (item.has_time) {
            input.last_time = std::max(input.last_time, item.time);
        } else {
            item.time = input.last_time;
        }
        if (it.component->config.live && item.machine != nullptr) {
            if (item.machine->role == Role::host && item.has_time) {
                it.host_read = std::max(it.host_read, item.time);
            } else if (item.machine->role != Role::host && item.machine->live_first_host < 0 &&
                       it.host_read != std::numeric_limits<std::int64_t>::min()) {
                item.machine->live_first_host = it.host_read;
            }
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
    if (config.live) {
        const Machine* head = input.queue.front().machine;
        // A guest waiting for its handshakes reads on, and so does the
        // host, whose halves of them match: within their shares.
        if (head != nullptr && head->role != Role::host && head->mode == GuestMode::undecided) {
            // its halves of the handshakes it waits for, not more: the host's
            // come at the host's pace
            const bool has_halves = head->pairing != nullptr && head->pairing->guest_events() >= 2 * kLiveMatches;
            return !has_halves && input.queue.size() < it.input_share;
        }
        if (head != nullptr && head->role == Role::host && it.guest_waiting) {
            return input.queue.size() < it.input_share;
        }
    }
    if (first == nullptr || input.last_time - first->time < config.window_ns) {
        // Each input gets its share of the buffer, so that a busy host
        // cannot starve the guests of the look-ahead their sync needs.
        return input.queue.size() < it.input_share;
    }
    return false;
}

namespace {

// What a scout iterator has read of its input.  Scouts process whole
// batches, so what they fed is always a prefix of the input's vmsync
// events, and the main pass skips exactly that many.
struct ScoutState {
    Input* input;
    Machine* machine = nullptr;
    std::int64_t first = std::numeric_limits<std::int64_t>::min();
    std::int64_t last = std::numeric_limits<std::int64_t>::min();
    bool exhausted = false;

    [[nodiscard]] std::int64_t span() const {
        return first == std::numeric_limits<std::int64_t>::min() ? 0 : last - first;
    }
};

// Handshakes each direction a guest needs before the prefetch stops
// reading the host further.
constexpr std::uint64_t kPrefetchMatches = 8;

}  // namespace

// Reads one batch with the scout of state.input and feeds its vmsync
// events to the pairings; everything else is dropped at once, so
// babeltrace2 recycles the objects.
static void scout_batch(SyncIterator& it, ScoutState& state) {
    Input& input = *state.input;
    bt_message_array_const messages = nullptr;
    std::uint64_t count = 0;
    const bt_message_iterator_next_status status = bt_message_iterator_next(input.scout.get(), &messages, &count);
    if (status == BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR) {
        throw std::bad_alloc();
    }
    if (status == BT_MESSAGE_ITERATOR_NEXT_STATUS_ERROR) {
        throw bt2::CallError(fmt::format("cannot read {}", input_description(input)));
    }
    if (status != BT_MESSAGE_ITERATOR_NEXT_STATUS_OK) {
        state.exhausted = true;  // END, or AGAIN from a live source: prefetch what came
        return;
    }
    bt2::MessageBatch batch(messages, count);
    while (!batch.empty()) {
        bt2::MessageRef msg = batch.take();
        const bt_message_type type = bt_message_get_type(msg.get());
        if (type == BT_MESSAGE_TYPE_PACKET_BEGINNING) {
            const bt_packet* packet = bt_message_packet_beginning_borrow_packet_const(msg.get());
            it.stream_cpu[bt_packet_borrow_stream_const(packet)] = checked_cpu(input, packet);
        }
        if (type != BT_MESSAGE_TYPE_EVENT) {
            continue;
        }
        const bt_event* event = bt_message_event_borrow_event_const(msg.get());
        const bt_stream* stream = bt_event_borrow_stream_const(event);
        Machine& machine = machine_of(it, input, stream);
        state.machine = &machine;
        if (machine.clock_class == nullptr) {
            state.exhausted = true;  // nothing to synchronise in a trace without a clock
            return;
        }
        Buffered item;
        if (bt_clock_snapshot_get_ns_from_origin(bt_message_event_borrow_default_clock_snapshot_const(msg.get()),
                                                 &item.time) != BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
            // babeltrace2 appended its cause, so this thread must not call
            // it again before the error is taken: propagate it now.
            throw bt2::CallError(fmt::format("{}: a clock value overflows 64-bit ns from origin (read ahead on {})",
                                             trace_ref(machine), input_description(input)));
        }
        if (state.first == std::numeric_limits<std::int64_t>::min()) {
            state.first = item.time;
        }
        machine.first_time = std::min(machine.first_time, item.time);
        state.last = std::max(state.last, item.time);
        auto cpu = it.stream_cpu.find(stream);
        item.cpu = cpu != it.stream_cpu.end() ? cpu->second : -1;
        const EventInfo& info = info_of(it, machine, bt_event_borrow_class_const(event));
        if (record_handshake(it, machine, info.kind, event, info, item, true)) {
            ++input.prefetched_sync;
        }
    }
}

// True while a guest that declares vmsync events has too few matched
// handshakes to be synchronised (none at all when its first handshake
// lies beyond what the prefetch read of it).
static bool lacks_matches(const Machine& m) {
    return m.role != Role::host && m.declares_sync &&
           (m.pairing == nullptr || m.pairing->guest_to_host_matches() < kPrefetchMatches ||
            m.pairing->host_to_guest_matches() < kPrefetchMatches);
}

// True while the host has been read less than prefetch_ns past a guest's
// first matched handshake.  A guest whose tracing started late (a VM
// started or migrated in while the host recorded) then gets the look-ahead
// of a guest traced from the host's start: a migrated guest's first events,
// its statedump under a burst of nested page faults, were converted with
// its first 8 handshakes only and 96 of 8271 fell outside its vCPU's
// guest-mode intervals; with 2 s of handshakes after them, none did.
static bool lacks_look_ahead(const Machine& m, std::int64_t host_read_until, std::int64_t prefetch_ns) {
    if (m.role == Role::host || m.pairing == nullptr) {
        return false;
    }
    const std::optional<std::int64_t> first = m.pairing->first_match_host_time();
    return first && host_read_until - *first < prefetch_ns;
}

// Before the first message is emitted, reads the first prefetch_ns of
// every input for vmsync events, so that the earliest guest events are
// converted with many handshakes after them.  A guest whose tracing
// started late has its first handshakes far into the host trace, and a
// short prefetch (even 0) may end before a guest's first handshake: the
// host and such guests are then read further, in time order, up to
// prefetch_max_ns, until every guest has a few handshakes each way and
// the host was read prefetch_ns past each guest's first handshake.
void prefetch(SyncIterator& it) {
    const SyncConfig& config = it.component->config;
    std::vector<ScoutState> scouts;
    for (Input& input : it.inputs) {
        if (input.scout) {
            scouts.push_back(ScoutState{&input});
        }
    }
    for (ScoutState& state : scouts) {
        while (!state.exhausted && state.span() <= config.prefetch_ns) {
            scout_batch(it, state);
        }
    }
    for (;;) {
        std::int64_t host_read_until = std::numeric_limits<std::int64_t>::max();
        for (const ScoutState& state : scouts) {
            if (state.machine != nullptr && state.machine->role == Role::host && !state.exhausted) {
                host_read_until = state.last;
            }
        }
        bool host_wanted = false;
        for (const auto& m : it.machines) {
            host_wanted = host_wanted || lacks_matches(*m) || lacks_look_ahead(*m, host_read_until, config.prefetch_ns);
        }
        if (!host_wanted) {
            break;
        }
        ScoutState* next = nullptr;
        for (ScoutState& state : scouts) {
            const bool wanted =
                state.machine != nullptr && (state.machine->role == Role::host || lacks_matches(*state.machine));
            if (wanted && !state.exhausted && state.span() <= config.prefetch_max_ns &&
                (next == nullptr || state.last < next->last)) {
                next = &state;
            }
        }
        if (next == nullptr) {
            break;
        }
        scout_batch(it, *next);
    }
    for (Input& input : it.inputs) {
        input.scout.reset();
    }
}

}  // namespace vmtrace::plugin::syncfilter
