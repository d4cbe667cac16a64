// SPDX-License-Identifier: MIT
// source.vmtrace.scenario: the simulator as a babeltrace2 source.  One
// output port per machine ("host", "guest0", ...); each port's iterator
// runs its own copy of the deterministic simulation and keeps that
// machine's events, so that every port is ordered in its own clock and no
// iterator buffers another machine's events.
#include <fmt/format.h>

#include <unistd.h>

#include <array>
#include <deque>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bt2/error.hpp"
#include "bt2/params.hpp"
#include "bt2/schema_field_class.hpp"
#include "bt2/shared_object.hpp"
#include "lib/scenario/ground_truth_writer.hpp"
#include "lib/scenario/memory_scenario.hpp"
#include "lib/scenario/scenario_simulator.hpp"
#include "plugin/entry_points.h"
#include "schema/events.hpp"

namespace vmtrace::plugin {
namespace {

using scenario::EventType;
using scenario::SimEvent;

// The schema event each simulated event type is written as.  Names,
// field order, types and display bases all come from docs/events.json
// (schema/events.hpp): a change there changes what the simulator writes,
// and the static_asserts below break the build when fill_payload() no
// longer matches.
constexpr std::array<schema::EventId, scenario::kEventTypeCount> kSchemaEvent = [] {
    std::array<schema::EventId, scenario::kEventTypeCount> ids{};
    ids[static_cast<unsigned>(EventType::sched_switch)] = schema::sched_switch::event_id;
    ids[static_cast<unsigned>(EventType::sched_migrate_task)] = schema::sched_migrate_task::event_id;
    ids[static_cast<unsigned>(EventType::kvm_entry)] = schema::kvm_x86_entry::event_id;
    ids[static_cast<unsigned>(EventType::kvm_exit)] = schema::kvm_x86_exit::event_id;
    ids[static_cast<unsigned>(EventType::vmsync_gh_guest)] = schema::vmsync_gh_guest::event_id;
    ids[static_cast<unsigned>(EventType::vmsync_hg_guest)] = schema::vmsync_hg_guest::event_id;
    ids[static_cast<unsigned>(EventType::vmsync_gh_host)] = schema::vmsync_gh_host::event_id;
    ids[static_cast<unsigned>(EventType::vmsync_hg_host)] = schema::vmsync_hg_host::event_id;
    ids[static_cast<unsigned>(EventType::kvm_pio)] = schema::kvm_x86_pio::event_id;
    ids[static_cast<unsigned>(EventType::kvm_mmio)] = schema::kvm_x86_mmio::event_id;
    ids[static_cast<unsigned>(EventType::kvm_msr)] = schema::kvm_x86_msr::event_id;
    ids[static_cast<unsigned>(EventType::kvm_inj_virq)] = schema::kvm_x86_inj_virq::event_id;
    ids[static_cast<unsigned>(EventType::kvm_hypercall)] = schema::kvm_x86_hypercall::event_id;
    ids[static_cast<unsigned>(EventType::vm_statedump_vm)] = schema::kvm_vm_statedump_vm::event_id;
    ids[static_cast<unsigned>(EventType::vm_statedump_vcpu)] = schema::kvm_vm_statedump_vcpu::event_id;
    ids[static_cast<unsigned>(EventType::process_statedump)] = schema::lttng_statedump_process_state::event_id;
    ids[static_cast<unsigned>(EventType::process_fork)] = schema::sched_process_fork::event_id;
    ids[static_cast<unsigned>(EventType::tdp_mmu_map)] = schema::kvm_tdp_mmu_map::event_id;
    ids[static_cast<unsigned>(EventType::guest_mm_map)] = schema::guest_mm_map::event_id;
    ids[static_cast<unsigned>(EventType::guest_mm_unmap)] = schema::guest_mm_unmap::event_id;
    ids[static_cast<unsigned>(EventType::memsync_begin)] = schema::vmtrace_memsync_begin::event_id;
    ids[static_cast<unsigned>(EventType::memsync_end)] = schema::vmtrace_memsync_end::event_id;
    ids[static_cast<unsigned>(EventType::mem_access)] = schema::vmtrace_mem_access::event_id;
    ids[static_cast<unsigned>(EventType::mem_lost)] = schema::vmtrace_mem_lost::event_id;
    ids[static_cast<unsigned>(EventType::mem_sync)] = schema::vmtrace_mem_sync::event_id;
    return ids;
}();

constexpr bool scenario_emits_all() {
    for (schema::EventId id : kSchemaEvent) {
        if (!schema::event(id).by_scenario) {
            return false;
        }
    }
    unsigned listed = 0;
    for (const schema::Event& e : schema::kEvents) {
        listed += e.by_scenario ? 1 : 0;
    }
    return listed == scenario::kEventTypeCount;
}
static_assert(scenario_emits_all(), "docs/events.json's `scenario` emitters and the simulator's event types differ");

// The kvm_x86_* handler events carry vcpu_id then SimEvent::args in order.
constexpr bool vcpu_then_args(schema::EventId id) {
    const schema::Event& e = schema::event(id);
    return !e.fields.empty() && e.fields.size() <= 1 + std::size(SimEvent{}.args) && e.fields[0].name == "vcpu_id";
}
static_assert(vcpu_then_args(schema::EventId::kvm_x86_pio) && vcpu_then_args(schema::EventId::kvm_x86_mmio) &&
              vcpu_then_args(schema::EventId::kvm_x86_msr) && vcpu_then_args(schema::EventId::kvm_x86_inj_virq) &&
              vcpu_then_args(schema::EventId::kvm_x86_hypercall));

// Events of the memory side, declared only by scenarios that have one, so
// that the traces of the others stay as they were.
bool is_memory_side(EventType type) {
    return type >= EventType::vm_statedump_vm;
}

// The memory tracer's events: the vmtrace_mem provider.
bool on_tracer(const schema::Event& spec) {
    return spec.provider == schema::vmtrace_mem_access::provider;
}

enum class MachineKind { host, guest, tracer };

bool is_handler(EventType type) {
    return type == EventType::kvm_pio || type == EventType::kvm_mmio || type == EventType::kvm_msr ||
           type == EventType::kvm_inj_virq || type == EventType::kvm_hypercall;
}

bool is_vmsync(EventType type) {
    return type == EventType::vmsync_gh_guest || type == EventType::vmsync_hg_guest ||
           type == EventType::vmsync_gh_host || type == EventType::vmsync_hg_host;
}

// One simulated machine's metadata.
struct MachineMeta {
    std::string name;
    bt2::TraceClassRef trace_class;
    bt2::ClockClassRef clock_class;
    bt2::StreamClassRef stream_class;
    std::array<bt2::EventClassRef, scenario::kEventTypeCount> event_classes;  // empty: not declared
    scenario::MachineClock clock;
    // Cycles per clock second: 1 GHz (a clock counting ns, as LTTng's), or a
    // guest's `guest-clock-hz`.
    std::uint64_t freq = 1'000'000'000;
    unsigned cpus = 0;
    std::array<std::uint8_t, 16> uuid{};
    // One trace and its streams, shared by every iterator on the machine's
    // port (a filter may read a port twice): each iterator's messages then
    // describe the same trace.
    bt2::TraceRef trace;
    std::vector<bt2::StreamRef> streams;
};

struct ScenarioComponent {
    scenario::ScenarioConfig config;
    std::string ground_truth_path;
    std::string memory_truth_path;
    std::vector<std::string> guest_names;  // the guests' hostnames, for the memory truth
    bool ground_truth_intervals = true;
    bool ground_truth_claimed = false;
    // Parameter `sync-channel`: the vmsync and VM identity events in
    // streams of their own, named vmsync_CPU (as `vmtrace record` puts them
    // in a channel `vmsync`; sink.ctf.fs names the files after them).
    bool sync_channel = false;
    // Parameter `guest-clock-hz`: the guests' clocks count cycles of this
    // frequency (their values in ns are the same, rounded down to a cycle).
    std::uint64_t guest_clock_hz = 1'000'000'000;
    std::vector<MachineMeta> machines;
};

void build_machine(bt_self_component_source* self, ScenarioComponent& comp, MachineMeta& meta, MachineKind kind,
                   std::uint64_t uuid_seed) {
    const bool host = kind == MachineKind::host;
    bt_self_component* self_comp = bt_self_component_source_as_self_component(self);
    meta.trace_class = bt2::TraceClassRef::adopt(bt2::check(bt_trace_class_create(self_comp), "trace class"));
    bt_trace_class_set_assigns_automatic_stream_class_id(meta.trace_class.get(), BT_FALSE);

    meta.clock_class = bt2::ClockClassRef::adopt(bt2::check(bt_clock_class_create(self_comp), "clock class"));
    bt_clock_class* cc = meta.clock_class.get();
    bt2::check_status(bt_clock_class_set_name(cc, "monotonic"), "set clock class name");
    bt2::check_status(bt_clock_class_set_description(cc, "Monotonic Clock"), "set clock class description");
    meta.freq = kind == MachineKind::guest ? comp.guest_clock_hz : 1'000'000'000;
    bt_clock_class_set_frequency(cc, meta.freq);
    std::int64_t seconds = meta.clock.offset_ns / 1'000'000'000;
    std::int64_t sub_ns = meta.clock.offset_ns % 1'000'000'000;
    if (sub_ns < 0) {
        sub_ns += 1'000'000'000;
        --seconds;
    }
    const auto cycles = static_cast<std::uint64_t>(static_cast<__int128>(sub_ns) * meta.freq / 1'000'000'000);
    bt_clock_class_set_offset(cc, seconds, cycles);
    bt_clock_class_set_origin_is_unix_epoch(cc, BT_TRUE);
    // A random-looking boot_id per machine (RFC 4122 version 4 layout).
    std::uint64_t state = uuid_seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    for (auto& byte : meta.uuid) {
        state ^= state >> 33;
        state *= 0xff51afd7ed558ccdULL;
        state ^= state >> 29;
        byte = static_cast<std::uint8_t>(state);
    }
    meta.uuid[6] = static_cast<std::uint8_t>((meta.uuid[6] & 0x0f) | 0x40);
    meta.uuid[8] = static_cast<std::uint8_t>((meta.uuid[8] & 0x3f) | 0x80);
    bt_clock_class_set_uuid(cc, meta.uuid.data());

    bt_trace_class* tc = meta.trace_class.get();
    meta.stream_class = bt2::StreamClassRef::adopt(bt2::check(bt_stream_class_create_with_id(tc, 0), "stream class"));
    bt_stream_class* sc = meta.stream_class.get();
    bt2::check_status(bt_stream_class_set_default_clock_class(sc, cc), "set default clock class");
    bt_stream_class_set_supports_packets(sc, BT_TRUE, BT_TRUE, BT_TRUE);
    bt_stream_class_set_assigns_automatic_stream_id(sc, BT_FALSE);

    bt2::FieldClassRef packet_context =
        bt2::FieldClassRef::adopt(bt2::check(bt_field_class_structure_create(tc), "packet context"));
    bt2::FieldClassRef cpu_id = bt2::schema_field_class(tc, schema::FieldType::u32, 10);
    bt2::check_status(bt_field_class_structure_append_member(packet_context.get(), "cpu_id", cpu_id.get()),
                      "append cpu_id");
    bt2::check_status(bt_stream_class_set_packet_context_field_class(sc, packet_context.get()), "set packet context");

    const scenario::ScenarioConfig& config = comp.config;
    for (unsigned type = 0; type < scenario::kEventTypeCount; ++type) {
        const schema::Event& spec = schema::event(kSchemaEvent[type]);
        const bool declared = kind == MachineKind::tracer ? on_tracer(spec)
                              : host                      ? spec.on_host
                                                          : spec.on_guest && !on_tracer(spec);
        if (!declared || (is_memory_side(static_cast<EventType>(type)) && !config.memory.enabled)) {
            continue;
        }
        // A module that is not loaded declares nothing.
        const auto t = static_cast<EventType>(type);
        if ((t == EventType::tdp_mmu_map && !config.memory.host_mappings) ||
            ((t == EventType::guest_mm_map || t == EventType::guest_mm_unmap) && !config.memory.guest_mappings) ||
            ((t == EventType::memsync_begin || t == EventType::memsync_end) && !config.memory.memsync)) {
            continue;
        }
        if (!config.handler_events && is_handler(t)) {
            continue;
        }
        // An unloaded vmsync module declares no vmsync events.
        if (is_vmsync(static_cast<EventType>(type)) && (host ? !config.host_sync_events : !config.guest_sync_events)) {
            continue;
        }
        auto ec = bt2::EventClassRef::adopt(bt2::check(bt_event_class_create(sc), "event class"));
        const std::string name(spec.name);
        bt2::check_status(bt_event_class_set_name(ec.get(), name.c_str()), "set event class name");
        bt2::FieldClassRef payload =
            bt2::FieldClassRef::adopt(bt2::check(bt_field_class_structure_create(tc), "payload"));
        for (const schema::Field& field : spec.fields) {
            bt2::FieldClassRef member = bt2::schema_field_class(tc, field.type, field.base);
            const std::string member_name(field.name);
            bt2::check_status(bt_field_class_structure_append_member(payload.get(), member_name.c_str(), member.get()),
                              "append payload member");
        }
        bt2::check_status(bt_event_class_set_payload_field_class(ec.get(), payload.get()), "set payload");
        meta.event_classes[type] = std::move(ec);
    }
}

void set_unsigned(bt_field* payload, std::uint64_t index, std::uint64_t value) {
    bt_field_integer_unsigned_set_value(bt_field_structure_borrow_member_field_by_index(payload, index), value);
}
void set_signed(bt_field* payload, std::uint64_t index, std::int64_t value) {
    bt_field_integer_signed_set_value(bt_field_structure_borrow_member_field_by_index(payload, index), value);
}
void set_string(bt_field* payload, std::uint64_t index, const char* value) {
    bt2::check_status(bt_field_string_set_value(bt_field_structure_borrow_member_field_by_index(payload, index), value),
                      "set string field");
}

// The memory side's events (SimEvent's comments say which member is what).
void fill_memory_payload(bt_field* payload, const SimEvent& e) {
    switch (e.type) {
    case EventType::vm_statedump_vm: {
        namespace f = schema::kvm_vm_statedump_vm;
        set_signed(payload, f::vm_pid.index, e.pid);
        set_signed(payload, f::owner_pid.index, e.tid);
        set_unsigned(payload, f::nr_vcpus.index, e.count);
        set_string(payload, f::vm_comm.index, e.comm);
        return;
    }
    case EventType::vm_statedump_vcpu: {
        namespace f = schema::kvm_vm_statedump_vcpu;
        set_signed(payload, f::vm_pid.index, e.pid);
        set_unsigned(payload, f::vcpu_id.index, e.count);
        set_signed(payload, f::tid.index, e.tid);
        return;
    }
    case EventType::process_statedump: {
        namespace f = schema::lttng_statedump_process_state;
        set_signed(payload, f::tid.index, e.tid);
        set_signed(payload, f::pid.index, e.pid);
        set_string(payload, f::name.index, e.comm);
        return;
    }
    case EventType::process_fork: {
        namespace f = schema::sched_process_fork;
        set_string(payload, f::parent_comm.index, e.prev_comm);
        set_signed(payload, f::parent_tid.index, e.prev_tid);
        set_signed(payload, f::parent_pid.index, e.pid);
        set_string(payload, f::child_comm.index, e.comm);
        set_signed(payload, f::child_tid.index, e.tid);
        set_signed(payload, f::child_pid.index, e.child_pid);
        return;
    }
    case EventType::tdp_mmu_map: {
        namespace f = schema::kvm_tdp_mmu_map;
        set_signed(payload, f::vm_pid.index, e.pid);
        set_unsigned(payload, f::as_id.index, 0);
        set_unsigned(payload, f::gfn.index, e.addr);
        set_unsigned(payload, f::pfn.index, e.addr2);
        set_unsigned(payload, f::old_pfn.index, e.addr3);
        set_unsigned(payload, f::level.index, e.level);
        set_unsigned(payload, f::op.index, e.op);
        return;
    }
    case EventType::guest_mm_map: {
        namespace f = schema::guest_mm_map;
        set_signed(payload, f::pid.index, e.pid);
        set_signed(payload, f::tid.index, e.tid);
        set_unsigned(payload, f::gva.index, e.addr);
        set_unsigned(payload, f::gpa.index, e.addr2);
        set_unsigned(payload, f::access.index, e.op);
        return;
    }
    case EventType::guest_mm_unmap: {
        namespace f = schema::guest_mm_unmap;
        set_signed(payload, f::pid.index, e.pid);
        set_signed(payload, f::tid.index, e.tid);
        set_unsigned(payload, f::start.index, e.addr);
        set_unsigned(payload, f::end.index, e.addr2);
        set_unsigned(payload, f::reason.index, e.op);
        return;
    }
    case EventType::memsync_begin:
    case EventType::memsync_end: {
        static_assert(schema::vmtrace_memsync_begin::cnt.index == schema::vmtrace_memsync_end::cnt.index &&
                      schema::vmtrace_memsync_begin::hpa.index == schema::vmtrace_memsync_end::hpa.index);
        set_unsigned(payload, schema::vmtrace_memsync_begin::cnt.index, e.cnt);
        set_unsigned(payload, schema::vmtrace_memsync_begin::hpa.index, e.addr);
        return;
    }
    case EventType::mem_access: {
        namespace f = schema::vmtrace_mem_access;
        set_unsigned(payload, f::cpu.index, e.count);
        set_unsigned(payload, f::hpa.index, e.addr);
        set_unsigned(payload, f::size.index, e.level);
        set_unsigned(payload, f::kind.index, e.op);
        set_unsigned(payload, f::va.index, e.addr2);
        return;
    }
    case EventType::mem_lost:
        set_unsigned(payload, schema::vmtrace_mem_lost::count.index, e.addr);
        return;
    case EventType::mem_sync: {
        namespace f = schema::vmtrace_mem_sync;
        set_unsigned(payload, f::cnt.index, e.cnt);
        set_unsigned(payload, f::hpa.index, e.addr);
        set_unsigned(payload, f::cpu.index, e.count);
        return;
    }
    default:
        return;
    }
}

// Writes `e` into `payload`, each value at its schema field's position.
void fill_payload(bt_field* payload, const SimEvent& e) {
    namespace ss = schema::sched_switch;
    namespace sm = schema::sched_migrate_task;
    namespace entry = schema::kvm_x86_entry;
    namespace exit = schema::kvm_x86_exit;
    switch (e.type) {
    case EventType::sched_switch:
        set_string(payload, ss::prev_comm.index, e.prev_comm);
        set_signed(payload, ss::prev_tid.index, e.prev_tid);
        set_signed(payload, ss::prev_prio.index, e.prev_prio);
        set_signed(payload, ss::prev_state.index, e.prev_state);
        set_string(payload, ss::next_comm.index, e.next_comm);
        set_signed(payload, ss::next_tid.index, e.next_tid);
        set_signed(payload, ss::next_prio.index, e.next_prio);
        return;
    case EventType::sched_migrate_task:
        set_string(payload, sm::comm.index, e.prev_comm);
        set_signed(payload, sm::tid.index, e.prev_tid);
        set_signed(payload, sm::prio.index, e.prev_prio);
        set_signed(payload, sm::orig_cpu.index, e.orig_cpu);
        set_signed(payload, sm::dest_cpu.index, e.dest_cpu);
        return;
    case EventType::kvm_entry:
        set_unsigned(payload, entry::vcpu_id.index, e.vcpu_id);
        set_unsigned(payload, entry::rip.index, e.rip);
        return;
    case EventType::kvm_exit:
        set_unsigned(payload, exit::vcpu_id.index, e.vcpu_id);
        set_unsigned(payload, exit::exit_reason.index, e.exit_reason);
        set_unsigned(payload, exit::guest_rip.index, e.rip);
        set_unsigned(payload, exit::isa.index, e.isa);
        set_unsigned(payload, exit::info1.index, e.info1);
        set_unsigned(payload, exit::info2.index, e.info2);
        set_unsigned(payload, exit::intr_info.index, e.intr_info);
        set_unsigned(payload, exit::error_code.index, e.error_code);
        return;
    case EventType::vmsync_gh_guest:
    case EventType::vmsync_hg_guest:
        static_assert(schema::vmsync_gh_guest::cnt.index == schema::vmsync_hg_guest::cnt.index &&
                      schema::vmsync_gh_guest::vm_uid.index == schema::vmsync_hg_guest::vm_uid.index);
        set_unsigned(payload, schema::vmsync_gh_guest::cnt.index, e.cnt);
        set_unsigned(payload, schema::vmsync_gh_guest::vm_uid.index, e.vm_uid);
        return;
    case EventType::vmsync_gh_host:
    case EventType::vmsync_hg_host:
        static_assert(schema::vmsync_gh_host::cnt.index == schema::vmsync_hg_host::cnt.index &&
                      schema::vmsync_gh_host::vm_uid.index == schema::vmsync_hg_host::vm_uid.index &&
                      schema::vmsync_gh_host::vcpu_id.index == schema::vmsync_hg_host::vcpu_id.index);
        set_unsigned(payload, schema::vmsync_gh_host::cnt.index, e.cnt);
        set_unsigned(payload, schema::vmsync_gh_host::vm_uid.index, e.vm_uid);
        set_unsigned(payload, schema::vmsync_gh_host::vcpu_id.index, e.vcpu_id);
        return;
    case EventType::kvm_pio:
    case EventType::kvm_mmio:
    case EventType::kvm_msr:
    case EventType::kvm_inj_virq:
    case EventType::kvm_hypercall: {
        // vcpu_id, then SimEvent::args in schema order (vcpu_then_args()).
        set_unsigned(payload, 0, e.vcpu_id);
        const std::uint64_t members = bt_field_class_structure_get_member_count(bt_field_borrow_class_const(payload));
        for (std::uint64_t i = 1; i < members; ++i) {
            set_unsigned(payload, i, e.args[i - 1]);
        }
        return;
    }
    default:
        fill_memory_payload(payload, e);
        return;
    }
}

struct StreamState {
    bt2::StreamRef stream;
    bt2::PacketRef packet;
    unsigned events_in_packet = 0;
};

struct ScenarioIterator {
    ScenarioIterator(ScenarioComponent& comp, unsigned machine_index)
        : component(comp), machine(machine_index), meta(comp.machines[machine_index]) {
        // Only the host port's first iterator writes the ground truth: a
        // filter may open a second one to read ahead.
        if (machine == 0 && !comp.ground_truth_path.empty() && !comp.ground_truth_claimed) {
            comp.ground_truth_claimed = true;
            truth = std::make_unique<scenario::GroundTruthWriter>(comp.ground_truth_path, comp.ground_truth_intervals);
            if (comp.config.memory.enabled) {
                memory_truth = std::make_unique<scenario::MemoryTruth>(
                    comp.memory_truth_path, comp.machines[0].clock.ns_from_origin_at(0), comp.guest_names);
            }
        }
        simulator = std::make_unique<scenario::MemoryScenario>(comp.config, truth.get(), memory_truth.get());
        if (truth) {
            const scenario::GroundTruthWriter::TracerIdentity tracer{
                simulator->tracer_hostname(), simulator->tracer_clock(), simulator->memsync_page()};
            truth->begin(simulator->base(), comp.config.memory.enabled ? &tracer : nullptr);
        }
    }

    ScenarioComponent& component;
    unsigned machine;
    MachineMeta& meta;
    std::unique_ptr<scenario::GroundTruthWriter> truth;
    std::unique_ptr<scenario::MemoryTruth> memory_truth;
    std::unique_ptr<scenario::MemoryScenario> simulator;
    std::vector<StreamState> streams;
    std::deque<bt2::MessageRef> pending;
    std::uint64_t last_value = 0;
    bool started = false;
    bool finished = false;
};

void open_packet(bt_self_message_iterator* self, ScenarioIterator& it, StreamState& stream, unsigned cpu,
                 std::uint64_t value) {
    stream.packet = bt2::PacketRef::adopt(bt2::check(bt_packet_create(stream.stream.get()), "packet"));
    bt_field* context = bt_packet_borrow_context_field(stream.packet.get());
    bt_field_integer_unsigned_set_value(bt_field_structure_borrow_member_field_by_index(context, 0), cpu);
    it.pending.push_back(bt2::MessageRef::adopt(
        bt2::check(bt_message_packet_beginning_create_with_default_clock_snapshot(self, stream.packet.get(), value),
                   "packet beginning message")));
    stream.events_in_packet = 0;
}

void close_packet(bt_self_message_iterator* self, ScenarioIterator& it, StreamState& stream, std::uint64_t value) {
    it.pending.push_back(bt2::MessageRef::adopt(
        bt2::check(bt_message_packet_end_create_with_default_clock_snapshot(self, stream.packet.get(), value),
                   "packet end message")));
    stream.packet.reset();
}

// The clock value (cycles) of `meta`'s clock at simulation time `true_time`.
std::uint64_t clock_value(const MachineMeta& meta, std::int64_t true_time) {
    const std::int64_t ns = meta.clock.value_at(true_time);
    if (meta.freq == 1'000'000'000) {
        return static_cast<std::uint64_t>(ns);
    }
    return static_cast<std::uint64_t>(static_cast<__int128>(ns) * meta.freq / 1'000'000'000);
}

void create_trace(ScenarioIterator& it) {
    const scenario::ScenarioSimulator& sim = it.simulator->base();
    it.meta.trace = bt2::TraceRef::adopt(bt2::check(bt_trace_create(it.meta.trace_class.get()), "trace"));
    bt_trace* trace = it.meta.trace.get();
    const bool host = it.machine == 0;
    const bool tracer = it.machine == it.simulator->tracer_machine();
    const std::string hostname = host     ? sim.host_hostname()
                                 : tracer ? it.simulator->tracer_hostname()
                                          : sim.guests()[it.machine - 1].hostname;
    bt2::check_status(bt_trace_set_name(trace, hostname.c_str()), "set trace name");
    bt_trace_set_uuid(trace, it.meta.uuid.data());
    auto env_string = [&](const char* name, const std::string& value) {
        bt2::check_status(bt_trace_set_environment_entry_string(trace, name, value.c_str()), "set environment entry");
    };
    auto env_integer = [&](const char* name, std::int64_t value) {
        bt2::check_status(bt_trace_set_environment_entry_integer(trace, name, value), "set environment entry");
    };
    if (tracer) {
        // What lttng-ust writes for the memory tracer's session.
        env_string("domain", "ust");
        env_string("tracer_name", "lttng-ust");
        env_integer("tracer_major", 2);
        env_integer("tracer_minor", 13);
        env_integer("tracer_patchlevel", 5);
        env_string("hostname", hostname);
        env_string("trace_name", hostname);
        env_string("trace_creation_datetime", "20260101T000000+0000");
        env_string("vmtrace_memsync_page", fmt::format("{:#x}", it.simulator->memsync_page()));
        env_integer("vmtrace_scenario_seed", static_cast<std::int64_t>(sim.config().seed));
        for (unsigned cpu = 0; cpu < it.meta.cpus; ++cpu) {
            it.meta.streams.push_back(bt2::StreamRef::adopt(
                bt2::check(bt_stream_create_with_id(it.meta.stream_class.get(), trace, cpu), "stream")));
        }
        return;
    }
    env_string("domain", "kernel");
    env_string("tracer_name", "lttng-modules");
    env_integer("tracer_major", 2);
    env_integer("tracer_minor", 13);
    env_integer("tracer_patchlevel", 9);
    env_string("tracer_buffering_scheme", "global");
    env_string("hostname", hostname);
    env_string("sysname", "Linux");
    env_string("kernel_release", "6.1.0-vmtrace-sim-amd64");
    env_string("kernel_version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1 (vmtrace scenario)");
    env_string("trace_name", hostname);
    env_string("trace_creation_datetime", "20260101T000000+0000");
    if (!host) {
        env_string("vmtrace_vm_uid", fmt::format("{:#x}", sim.guests()[it.machine - 1].vm_uid));
    }
    env_integer("vmtrace_scenario_seed", static_cast<std::int64_t>(sim.config().seed));
    for (unsigned cpu = 0; cpu < it.meta.cpus; ++cpu) {
        it.meta.streams.push_back(bt2::StreamRef::adopt(
            bt2::check(bt_stream_create_with_id(it.meta.stream_class.get(), trace, cpu), "stream")));
    }
    if (it.component.sync_channel) {
        for (unsigned cpu = 0; cpu < it.meta.cpus; ++cpu) {
            bt_stream* stream =
                bt2::check(bt_stream_create_with_id(it.meta.stream_class.get(), trace, it.meta.cpus + cpu), "stream");
            it.meta.streams.push_back(bt2::StreamRef::adopt(stream));
            bt2::check_status(bt_stream_set_name(stream, fmt::format("vmsync_{}", cpu).c_str()), "set stream name");
        }
    }
}

void start(bt_self_message_iterator* self, ScenarioIterator& it) {
    if (!it.meta.trace) {
        create_trace(it);
    }

    const std::uint64_t first_value = clock_value(it.meta, 0);
    it.last_value = first_value;
    for (unsigned index = 0; index < it.meta.streams.size(); ++index) {
        const unsigned cpu = index % it.meta.cpus;
        StreamState stream;
        stream.stream = it.meta.streams[index];
        it.pending.push_back(bt2::MessageRef::adopt(
            bt2::check(bt_message_stream_beginning_create(self, stream.stream.get()), "stream beginning message")));
        it.streams.push_back(std::move(stream));
        open_packet(self, it, it.streams.back(), cpu, first_value);
    }
}

void finish(bt_self_message_iterator* self, ScenarioIterator& it) {
    const std::uint64_t end_value = std::max(it.last_value, clock_value(it.meta, it.simulator->config().duration_ns));
    for (StreamState& stream : it.streams) {
        close_packet(self, it, stream, end_value);
        it.pending.push_back(bt2::MessageRef::adopt(
            bt2::check(bt_message_stream_end_create(self, stream.stream.get()), "stream end message")));
    }
    if (it.truth) {
        it.truth->finish(it.memory_truth ? it.memory_truth->finish(it.simulator->guest_names()) : "");
    }
}

// Produces the messages of the next event of this machine, if any.
bool step(bt_self_message_iterator* self, ScenarioIterator& it) {
    SimEvent event;
    while (it.simulator->next(event)) {
        if (it.truth) {
            it.truth->on_event(event);
        }
        if (event.machine != it.machine) {
            continue;
        }
        bt_event_class* ec = it.meta.event_classes[static_cast<unsigned>(event.type)].get();
        if (ec == nullptr) {
            continue;  // an event class this machine does not record
        }
        const std::uint64_t value = clock_value(it.meta, event.time);
        it.last_value = value;
        const bool sync_stream = it.component.sync_channel && it.streams.size() > it.meta.cpus &&
                                 (is_vmsync(event.type) || event.type == EventType::vm_statedump_vm ||
                                  event.type == EventType::vm_statedump_vcpu);
        StreamState& stream = it.streams.at(sync_stream ? it.meta.cpus + event.cpu : event.cpu);
        if (stream.events_in_packet >= it.component.config.packet_events) {
            close_packet(self, it, stream, value);
            open_packet(self, it, stream, event.cpu, value);
        }
        ++stream.events_in_packet;
        bt_message* msg = bt2::check(
            bt_message_event_create_with_packet_and_default_clock_snapshot(self, ec, stream.packet.get(), value),
            "event message");
        it.pending.push_back(bt2::MessageRef::adopt(msg));
        fill_payload(bt_event_borrow_payload_field(bt_message_event_borrow_event(msg)), event);
        return true;
    }
    return false;
}

scenario::ScenarioConfig parse_config(const bt2::Params& params, ScenarioComponent& comp) {
    params.reject_unknown({"seed",
                           "guests",
                           "vcpus",
                           "host-cpus",
                           "duration-ms",
                           "max-guest-offset-s",
                           "max-drift-ppm",
                           "guest-offsets-s",
                           "guest-drifts-ppm",
                           "sync-period-us",
                           "latency-min-ns",
                           "latency-mean-ns",
                           "latency-max-ns",
                           "mean-guest-run-us",
                           "mean-guest-switch-us",
                           "preempt-probability",
                           "migrate-probability",
                           "packet-events",
                           "host-sync",
                           "guest-sync",
                           "handler-events",
                           "host-receive-delay-ns",
                           "corrupt-cnt",
                           "corrupt-cnt-every",
                           "guest-clock-step-ns",
                           "sync-channel",
                           "guest-clock-hz",
                           "ground-truth",
                           "ground-truth-intervals",
                           "memory",
                           "memory-truth",
                           "memory-guest-ram-mb",
                           "memory-processes",
                           "memory-pages-per-process",
                           "memory-shared-pages",
                           "memory-accesses-per-us",
                           "memory-huge-share",
                           "memory-premapped-kernel-share",
                           "memory-statedump",
                           "memory-remap-us",
                           "memory-munmap-us",
                           "memory-exec-us",
                           "memory-host-on-behalf-share",
                           "memory-cross-process-share",
                           "memory-sync-period-us",
                           "memory-tracer-drift-ppm",
                           "memory-tracer-offset-s",
                           "memory-lost-every",
                           "memory-lost-burst",
                           "memory-host-mappings",
                           "memory-guest-mappings",
                           "memory-sync",
                           "memory-drop-host-mapping-every"});
    scenario::ScenarioConfig config;
    // An integer parameter in [0, max]; a value that would overflow once
    // scaled to ns, or be cut by a narrower field, is refused by name
    // rather than wrapped.
    auto bounded = [&](std::string_view name, std::int64_t fallback, std::int64_t max) {
        const std::int64_t value = params.integer(name).value_or(fallback);
        if (value < 0) {
            throw bt2::Error(fmt::format("source.vmtrace.scenario: parameter `{}` must not be negative", name));
        }
        if (value > max) {
            throw bt2::Error(
                fmt::format("source.vmtrace.scenario: parameter `{}` is {}, at most {}", name, value, max));
        }
        return value;
    };
    constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kMaxUnsigned = std::numeric_limits<unsigned>::max();
    auto non_negative = [&](std::string_view name, std::int64_t fallback) { return bounded(name, fallback, kMaxInt); };
    auto count = [&](std::string_view name, std::int64_t fallback) {
        return static_cast<unsigned>(bounded(name, fallback, kMaxUnsigned));
    };
    // Scaled to ns: bounded so that the product fits.
    auto scaled = [&](std::string_view name, std::int64_t fallback_ns, std::int64_t unit_ns) {
        return bounded(name, fallback_ns / unit_ns, kMaxInt / unit_ns) * unit_ns;
    };
    config.seed = static_cast<std::uint64_t>(non_negative("seed", 1));
    config.guests = count("guests", config.guests);
    config.vcpus_per_guest = count("vcpus", config.vcpus_per_guest);
    config.host_cpus = count("host-cpus", 0);
    config.duration_ns = scaled("duration-ms", config.duration_ns, 1'000'000);
    config.max_guest_offset_s = params.real("max-guest-offset-s").value_or(config.max_guest_offset_s);
    config.max_drift_ppm = params.real("max-drift-ppm").value_or(config.max_drift_ppm);
    config.guest_offsets_s = params.real_list("guest-offsets-s");
    config.guest_drifts_ppm = params.real_list("guest-drifts-ppm");
    config.sync_period_ns = scaled("sync-period-us", config.sync_period_ns, 1'000);
    config.latency_min_ns = non_negative("latency-min-ns", config.latency_min_ns);
    config.latency_mean_ns = non_negative("latency-mean-ns", config.latency_mean_ns);
    config.latency_max_ns = non_negative("latency-max-ns", config.latency_max_ns);
    config.mean_guest_run_ns = scaled("mean-guest-run-us", config.mean_guest_run_ns, 1'000);
    config.mean_guest_switch_ns = scaled("mean-guest-switch-us", config.mean_guest_switch_ns, 1'000);
    config.preempt_probability = params.real("preempt-probability").value_or(config.preempt_probability);
    config.migrate_probability = params.real("migrate-probability").value_or(config.migrate_probability);
    config.packet_events = count("packet-events", config.packet_events);
    config.host_sync_events = params.boolean("host-sync").value_or(true);
    config.guest_sync_events = params.boolean("guest-sync").value_or(true);
    config.handler_events = params.boolean("handler-events").value_or(true);
    config.host_receive_delay_ns = non_negative("host-receive-delay-ns", 0);
    config.cnt_corruption = scenario::parse_cnt_corruption(params.string("corrupt-cnt").value_or("none"));
    config.cnt_corruption_every = count("corrupt-cnt-every", config.cnt_corruption_every);
    config.guest_clock_step_ns = non_negative("guest-clock-step-ns", 0);
    comp.ground_truth_path = params.string("ground-truth").value_or("");
    if (!comp.ground_truth_path.empty()) {
        // Its directory is made now, when an error can name the parameter;
        // the file itself is written by the host port's first iterator.
        std::error_code ec;
        const std::filesystem::path dir = std::filesystem::absolute(comp.ground_truth_path, ec).parent_path();
        if (!ec) {
            std::filesystem::create_directories(dir, ec);
        }
        if (ec || ::access(dir.c_str(), W_OK) != 0) {
            throw bt2::Error(fmt::format(
                "source.vmtrace.scenario: parameter `ground-truth`: cannot write into the directory of `{}`",
                comp.ground_truth_path));
        }
    }
    comp.ground_truth_intervals = params.boolean("ground-truth-intervals").value_or(true);
    comp.sync_channel = params.boolean("sync-channel").value_or(false);
    const std::int64_t guest_hz = params.integer("guest-clock-hz").value_or(1'000'000'000);
    if (guest_hz < 1'000'000 || guest_hz > 10'000'000'000) {
        throw bt2::Error(fmt::format(
            "source.vmtrace.scenario: parameter `guest-clock-hz` is {}, must be 1000000..10000000000", guest_hz));
    }
    comp.guest_clock_hz = static_cast<std::uint64_t>(guest_hz);
    scenario::MemoryConfig& mem = config.memory;
    mem.enabled = params.boolean("memory").value_or(false);
    mem.guest_ram_mb = count("memory-guest-ram-mb", mem.guest_ram_mb);
    mem.processes_per_guest = count("memory-processes", 0);
    mem.pages_per_process = count("memory-pages-per-process", mem.pages_per_process);
    mem.shared_pages = count("memory-shared-pages", mem.shared_pages);
    mem.accesses_per_us = params.real("memory-accesses-per-us").value_or(mem.accesses_per_us);
    mem.huge_share = params.real("memory-huge-share").value_or(mem.huge_share);
    mem.premapped_kernel_share = params.real("memory-premapped-kernel-share").value_or(mem.premapped_kernel_share);
    mem.mean_remap_ns = scaled("memory-remap-us", mem.mean_remap_ns, 1'000);
    mem.mean_munmap_ns = scaled("memory-munmap-us", mem.mean_munmap_ns, 1'000);
    mem.mean_exec_ns = scaled("memory-exec-us", mem.mean_exec_ns, 1'000);
    mem.host_on_behalf_share = params.real("memory-host-on-behalf-share").value_or(mem.host_on_behalf_share);
    mem.cross_process_share = params.real("memory-cross-process-share").value_or(mem.cross_process_share);
    mem.memsync_period_ns = scaled("memory-sync-period-us", mem.memsync_period_ns, 1'000);
    mem.tracer_drift_ppm = params.real("memory-tracer-drift-ppm").value_or(mem.tracer_drift_ppm);
    mem.tracer_offset_s = params.real("memory-tracer-offset-s").value_or(mem.tracer_offset_s);
    mem.lost_every = static_cast<std::uint64_t>(non_negative("memory-lost-every", 0));
    mem.lost_burst = count("memory-lost-burst", mem.lost_burst);
    mem.statedump = params.boolean("memory-statedump").value_or(false);
    mem.host_mappings = params.boolean("memory-host-mappings").value_or(true);
    mem.guest_mappings = params.boolean("memory-guest-mappings").value_or(true);
    mem.memsync = params.boolean("memory-sync").value_or(true);
    mem.drop_host_mapping_every = count("memory-drop-host-mapping-every", 0);
    comp.memory_truth_path = params.string("memory-truth").value_or("");
    if (!comp.memory_truth_path.empty() && (!mem.enabled || comp.ground_truth_path.empty())) {
        throw bt2::Error("source.vmtrace.scenario: parameter `memory-truth` needs `memory=yes` and `ground-truth`");
    }
    try {
        config.validate();
    } catch (const std::invalid_argument& e) {
        throw bt2::Error(fmt::format("source.vmtrace.scenario: {}", e.what()));
    }
    return config;
}

ScenarioComponent* component_of(bt_self_component_source* self) {
    return static_cast<ScenarioComponent*>(
        bt_self_component_get_data(bt_self_component_source_as_self_component(self)));
}

}  // namespace
}  // namespace vmtrace::plugin

using namespace vmtrace;
using namespace vmtrace::plugin;

extern "C" bt_component_class_initialize_method_status vmtrace_scenario_initialize(
    bt_self_component_source* self, bt_self_component_source_configuration*, const bt_value* params, void*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_source_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_initialize_method_status>(append, [&] {
        auto comp = std::make_unique<ScenarioComponent>();
        comp->config = parse_config(bt2::Params(params, "source.vmtrace.scenario"), *comp);
        // The machines' clocks come from a simulator built with the same
        // configuration, so that metadata and events agree.
        const scenario::MemoryScenario memory_probe(comp->config, nullptr, nullptr);
        const scenario::ScenarioSimulator& probe = memory_probe.base();
        comp->guest_names = memory_probe.guest_names();
        const unsigned guests = comp->config.guests;
        comp->machines.resize(guests + 1 + (comp->config.memory.enabled ? 1 : 0));
        for (unsigned m = 0; m < comp->machines.size(); ++m) {
            MachineMeta& meta = comp->machines[m];
            const MachineKind kind = m == 0        ? MachineKind::host
                                     : m <= guests ? MachineKind::guest
                                                   : MachineKind::tracer;
            switch (kind) {
            case MachineKind::host:
                meta.name = "host";
                meta.clock = probe.host_clock();
                meta.cpus = probe.host_cpus();
                break;
            case MachineKind::guest:
                meta.name = fmt::format("guest{}", m - 1);
                meta.clock = probe.guests()[m - 1].clock;
                meta.cpus = comp->config.vcpus_per_guest;
                break;
            case MachineKind::tracer:
                meta.name = "memtracer";
                meta.clock = memory_probe.tracer_clock();
                meta.cpus = probe.host_cpus();  // one stream per CPU it records
                break;
            }
            build_machine(self, *comp, meta, kind, comp->config.seed * 131 + m);
        }
        for (unsigned m = 0; m < comp->machines.size(); ++m) {
            bt2::check_status(bt_self_component_source_add_output_port(
                                  self, comp->machines[m].name.c_str(),
                                  reinterpret_cast<void*>(static_cast<std::uintptr_t>(m)), nullptr),
                              "add output port");
        }
        bt_self_component_set_data(bt_self_component_source_as_self_component(self), comp.release());
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_scenario_finalize(bt_self_component_source* self) {
    delete component_of(self);
}

extern "C" bt_message_iterator_class_initialize_method_status vmtrace_scenario_iterator_initialize(
    bt_self_message_iterator* self, bt_self_message_iterator_configuration*, bt_self_component_port_output* port) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_initialize_method_status>(append, [&] {
        auto* comp = static_cast<ScenarioComponent*>(
            bt_self_component_get_data(bt_self_message_iterator_borrow_component(self)));
        const auto machine = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(
            bt_self_component_port_get_data(bt_self_component_port_output_as_self_component_port(port))));
        bt_self_message_iterator_set_data(self, new ScenarioIterator(*comp, machine));
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_scenario_iterator_finalize(bt_self_message_iterator* self) {
    delete static_cast<ScenarioIterator*>(bt_self_message_iterator_get_data(self));
}

extern "C" bt_message_iterator_class_next_method_status vmtrace_scenario_iterator_next(bt_self_message_iterator* self,
                                                                                       bt_message_array_const messages,
                                                                                       uint64_t capacity,
                                                                                       uint64_t* count) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_next_method_status>(append, [&] {
        auto& it = *static_cast<ScenarioIterator*>(bt_self_message_iterator_get_data(self));
        if (!it.started) {
            it.started = true;
            start(self, it);
        }
        while (it.pending.size() < capacity && !it.finished) {
            if (!step(self, it)) {
                it.finished = true;
                finish(self, it);
            }
        }
        if (it.pending.empty()) {
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
        }
        uint64_t n = 0;
        while (n < capacity && !it.pending.empty()) {
            messages[n++] = it.pending.front().release();
            it.pending.pop_front();
        }
        *count = n;
        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
    });
}
