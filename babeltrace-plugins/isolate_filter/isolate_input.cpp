// SPDX-License-Identifier: MIT
// filter.vmtrace.isolate: reading the synchronised traces.  Tells the
// host, the guests and the memory tracer apart, ties each guest to its VM
// and feeds the join.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "bt2/error.hpp"
#include "bt2/trace_ir_read.hpp"
#include "isolate_filter/isolate_state.hpp"
#include "schema/events.hpp"

namespace vmtrace::plugin::isolatefilter {
namespace ev = vmtrace::schema;

namespace {

// lttng-modules' names of KVM's entry and exit (hosts without the vmtrace
// host module); not in docs/events.json.
constexpr std::string_view kLttngKvmEntry = "kvm_entry";
constexpr std::string_view kLttngKvmExit = "kvm_exit";

// An integer environment entry (signed, or a string of digits), -1 when absent.
std::int64_t env_integer(const bt_trace* trace, const char* name) {
    const bt_value* value = bt_trace_borrow_environment_entry_value_by_name_const(trace, name);
    if (value == nullptr) {
        return -1;
    }
    if (bt_value_is_signed_integer(value)) {
        return bt_value_integer_signed_get(value);
    }
    if (bt_value_is_unsigned_integer(value)) {
        return static_cast<std::int64_t>(bt_value_integer_unsigned_get(value));
    }
    if (bt_value_is_string(value)) {
        char* end = nullptr;
        const std::string text = bt_value_string_get(value);
        const long long parsed = std::strtoll(text.c_str(), &end, 0);
        return end != text.c_str() && *end == '\0' && parsed >= 0 ? parsed : -1;
    }
    return -1;
}

std::unique_ptr<Machine> classify(const bt_trace* trace) {
    auto m = std::make_unique<Machine>();
    m->trace = trace;
    m->name = trace_display_name(trace);
    if (m->name.empty()) {
        m->name = "(unnamed trace)";
    }
    const bt_trace_class* tc = bt_trace_borrow_class_const(trace);
    m->declares_tdp = declares_event(tc, {ev::kvm_tdp_mmu_map::event_name});
    const std::string uid = env_string(trace, "vmtrace_vm_uid");
    // filter.vmtrace.sync copies a synchronised trace's event classes as
    // their events come: its environment tells the role before that.
    if (!env_string(trace, "vmtrace_memsync_hpa").empty() || declares_event(tc, {ev::vmtrace_mem_access::event_name})) {
        m->role = Role::tracer;
    } else if (declares_event(tc, {ev::kvm_x86_entry::event_name, kLttngKvmEntry, ev::vmsync_gh_host::event_name,
                                   ev::vmsync_hg_host::event_name, ev::kvm_tdp_mmu_map::event_name})) {
        m->role = Role::host;
    } else if (!uid.empty() || declares_event(tc, {ev::guest_mm_map::event_name, ev::vmsync_gh_guest::event_name,
                                                   ev::vmsync_hg_guest::event_name})) {
        m->role = Role::guest;
    }
    m->vm_uid = uid.empty() ? 0 : std::strtoull(uid.c_str(), nullptr, 0);
    m->synchronised = !env_string(trace, "vmtrace_time_base").empty();
    m->bound_ns = env_integer(trace, "vmtrace_sync_bound_ns");
    return m;
}

const EventInfo& info_of(IsolateIterator& it, const Machine& machine, const bt_event_class* ec) {
    auto found = it.event_info.find(ec);
    if (found != it.event_info.end()) {
        return found->second;
    }
    EventInfo info;
    const std::string_view name = event_class_name(ec);
    const bt_field_class* payload = bt_event_class_borrow_payload_field_class_const(ec);
    // By name, not by the schema's position: lttng-modules' events and
    // older recordings order their fields differently.
    auto find = [&](std::string_view field, bool string) -> std::optional<std::uint64_t> {
        if (payload != nullptr) {
            for (std::uint64_t i = 0; i < bt_field_class_structure_get_member_count(payload); ++i) {
                const auto* m = bt_field_class_structure_borrow_member_by_index_const(payload, i);
                if (std::string_view(bt_field_class_structure_member_get_name(m)) != field) {
                    continue;
                }
                const bt_field_class_type type =
                    bt_field_class_get_type(bt_field_class_structure_member_borrow_field_class_const(m));
                if (string ? type == BT_FIELD_CLASS_TYPE_STRING
                           : bt_field_class_type_is(type, BT_FIELD_CLASS_TYPE_INTEGER)) {
                    return i;
                }
            }
        }
        return std::nullopt;
    };
    auto member = [&](std::size_t slot, std::string_view field, bool string) {
        if (const auto index = find(field, string)) {
            info.member[slot] = *index;
            return;
        }
        throw bt2::Error(fmt::format("trace `{}`: event `{}` lacks the {} field `{}` that docs/events.json requires",
                                     machine.name, name, string ? "string" : "integer", field));
    };
    const bool host = machine.role == Role::host;
    const bool guest = machine.role == Role::guest;
    const bool tracer = machine.role == Role::tracer;
    if (name == ev::sched_switch::event_name && (host || guest)) {
        info.kind = Kind::sched_switch;
        member(0, ev::sched_switch::next_tid.name, false);
        member(1, ev::sched_switch::next_comm.name, true);
    } else if (host && (name == ev::kvm_x86_entry::event_name || name == kLttngKvmEntry)) {
        info.kind = Kind::kvm_entry;
    } else if (host && (name == ev::kvm_x86_exit::event_name || name == kLttngKvmExit)) {
        info.kind = Kind::kvm_exit;
    } else if (host && name == ev::kvm_tdp_mmu_map::event_name) {
        namespace f = ev::kvm_tdp_mmu_map;
        info.kind = Kind::tdp_mmu_map;
        member(0, f::vm_pid.name, false);
        member(1, f::as_id.name, false);
        member(2, f::gfn.name, false);
        member(3, f::pfn.name, false);
        member(4, f::old_pfn.name, false);
        member(5, f::level.name, false);
        member(6, f::op.name, false);
    } else if (host && (name == ev::kvm_vm_statedump_vcpu::event_name || name == ev::kvm_vm_vcpu_thread::event_name)) {
        static_assert(ev::kvm_vm_statedump_vcpu::tid.name == ev::kvm_vm_vcpu_thread::tid.name);
        info.kind = Kind::vcpu_thread;
        member(0, ev::kvm_vm_statedump_vcpu::vm_pid.name, false);
        member(1, ev::kvm_vm_statedump_vcpu::vcpu_id.name, false);
        member(2, ev::kvm_vm_statedump_vcpu::tid.name, false);
        if (name == ev::kvm_vm_vcpu_thread::event_name) {
            // A VM created while tracing is named by its vCPU threads alone.
            member(3, ev::kvm_vm_vcpu_thread::vm_comm.name, true);
            info.has_comm = true;
        }
    } else if (host && name == ev::kvm_vm_statedump_vm::event_name) {
        info.kind = Kind::statedump_vm;
        member(0, ev::kvm_vm_statedump_vm::vm_pid.name, false);
        member(1, ev::kvm_vm_statedump_vm::vm_comm.name, true);
    } else if (host && (name == ev::vmsync_gh_host::event_name || name == ev::vmsync_hg_host::event_name)) {
        info.kind = Kind::vmsync_host;
        member(0, ev::vmsync_gh_host::vm_uid.name, false);
    } else if (guest && name == ev::lttng_statedump_process_state::event_name) {
        namespace f = ev::lttng_statedump_process_state;
        info.kind = Kind::process_state;
        member(0, f::tid.name, false);
        member(1, f::pid.name, false);
        member(2, f::name.name, true);
    } else if (guest && name == ev::sched_process_fork::event_name) {
        namespace f = ev::sched_process_fork;
        info.kind = Kind::process_fork;
        member(0, f::parent_pid.name, false);
        member(1, f::child_pid.name, false);
        member(2, f::child_tid.name, false);
        member(3, f::child_comm.name, true);
    } else if (guest && name == ev::guest_mm_map::event_name) {
        namespace f = ev::guest_mm_map;
        info.kind = Kind::mm_map;
        member(0, f::pid.name, false);
        member(1, f::tid.name, false);
        member(2, f::gva.name, false);
        member(3, f::gpa.name, false);
    } else if (guest && name == ev::guest_mm_unmap::event_name) {
        namespace f = ev::guest_mm_unmap;
        info.kind = Kind::mm_unmap;
        member(0, f::pid.name, false);
        member(1, f::start.name, false);
        member(2, f::end.name, false);
        member(3, f::reason.name, false);
    } else if (tracer && name == ev::vmtrace_mem_access::event_name) {
        namespace f = ev::vmtrace_mem_access;
        info.kind = Kind::mem_access;
        member(0, f::cpu.name, false);
        member(1, f::hpa.name, false);
        member(2, f::size.name, false);
        member(3, f::kind.name, false);
        // Passed through to the output for validation; the join never sees it.
        if (const auto va = find(f::va.name, false)) {
            info.member[4] = *va;
            info.has_va = true;
        }
    } else if (tracer && name == ev::vmtrace_mem_lost::event_name) {
        info.kind = Kind::mem_lost;
        member(0, ev::vmtrace_mem_lost::count.name, false);
    }
    return it.event_info.emplace(ec, info).first->second;
}

std::uint64_t u64(const bt_field* payload, const EventInfo& info, std::size_t slot) {
    return static_cast<std::uint64_t>(integer_member(payload, info.member[slot]));
}

std::int32_t s32(const bt_field* payload, const EventInfo& info, std::size_t slot) {
    return static_cast<std::int32_t>(u64(payload, info, slot));
}

std::string_view text(const bt_field* payload, const EventInfo& info, std::size_t slot) {
    return bt_field_string_get_value(bt_field_structure_borrow_member_field_by_index_const(payload, info.member[slot]));
}

std::int64_t event_time(const Machine& machine, const bt_message* msg) {
    const bt_clock_snapshot* snapshot = bt_message_event_borrow_default_clock_snapshot_const(msg);
    std::int64_t ns = 0;
    if (bt_clock_snapshot_get_ns_from_origin(snapshot, &ns) != BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
        throw bt2::CallError(fmt::format("trace `{}`: a clock value overflows 64-bit ns from origin", machine.name));
    }
    return ns;
}

}  // namespace

std::string safe_name(std::string name) {
    for (char& c : name) {
        if (c == '/' || c == ' ' || c == '\0' || static_cast<unsigned char>(c) < 0x20) {
            c = '_';
        }
    }
    return name.empty() || name == "." || name == ".." ? "unnamed" : name;
}

namespace {

// Ties a guest to the VM whose vCPU thread made its handshakes.
void bind(IsolateIterator& it, Machine& guest) {
    if (guest.vm >= 0 || !guest.synchronised) {
        return;
    }
    const auto pid = it.vm_pid_of_uid.find(guest.vm_uid);
    if (pid == it.vm_pid_of_uid.end()) {
        return;
    }
    const int vm = it.join->vm_of_pid(pid->second);
    if (vm < 0) {
        throw bt2::Error(fmt::format("too many VMs: cannot follow guest `{}` (vm_pid {})", guest.name, pid->second));
    }
    for (const auto& other : it.machines) {
        if (other.get() != &guest && other->vm == vm) {
            throw bt2::Error(fmt::format("guests `{}` and `{}` both run in the VM of vm_pid {}", other->name,
                                         guest.name, pid->second));
        }
    }
    guest.vm = vm;
    const std::int64_t bound = guest.bound_ns >= 0 ? guest.bound_ns : it.component->config.default_bound_ns;
    it.join->bind_guest(vm, std::max<std::int64_t>(bound, 0));
    it.join->guest_thread(vm, 0, 0, "swapper");  // the idle task
    if (it.vm_names.size() <= static_cast<std::size_t>(vm)) {
        it.vm_names.resize(static_cast<std::size_t>(vm) + 1);
    }
    it.vm_names[static_cast<std::size_t>(vm)] = safe_name(guest.name);
    it.report.name_vm(vm, it.vm_names[static_cast<std::size_t>(vm)], pid->second);
}

Machine& machine_of(IsolateIterator& it, const bt_stream* stream) {
    const bt_trace* trace = bt_stream_borrow_trace_const(stream);
    auto found = it.machine_by_trace.find(trace);
    if (found != it.machine_by_trace.end()) {
        return *found->second;
    }
    auto machine = classify(trace);
    Machine* raw = machine.get();
    if (const auto bound = it.component->config.sync_bounds.find(raw->name);
        bound != it.component->config.sync_bounds.end() && raw->bound_ns >= 0) {
        // Only a trace the sync filter bounded, and only tighter: the
        // largest error the sync filter applied to its events.
        raw->bound_ns = std::min(raw->bound_ns, bound->second);
    }
    raw->clock_class = bt_stream_class_borrow_default_clock_class_const(bt_stream_borrow_class_const(stream));
    switch (raw->role) {
    case Role::host:
        if (it.host != nullptr) {
            throw bt2::Error(fmt::format("traces `{}` and `{}` both look like KVM hosts", it.host->name, raw->name));
        }
        it.host = raw;
        break;
    case Role::tracer:
        if (it.tracer != nullptr) {
            throw bt2::Error(
                fmt::format("traces `{}` and `{}` are both memory traces; give one memory tracer's "
                            "trace per run",
                            it.tracer->name, raw->name));
        }
        if (!raw->synchronised) {
            throw bt2::Error(fmt::format(
                "memory trace `{}` is not on the host's time base: filter.vmtrace.sync did not align it (no "
                "vmtrace_memsync_begin/end in the host trace, or no vmtrace_mem_sync in it); its accesses cannot "
                "be placed against the mappings",
                raw->name));
        }
        if (raw->bound_ns < 0) {
            if (it.component->config.default_bound_ns < 0) {
                throw bt2::Error(
                    fmt::format("memory trace `{}` carries no vmtrace_sync_bound_ns: give the filter's "
                                "`default-bound-ns` parameter",
                                raw->name));
            }
            raw->bound_ns = it.component->config.default_bound_ns;
        }
        it.tracer = raw;
        it.join->set_memory_bound(raw->bound_ns);
        break;
    case Role::guest:
        if (!raw->synchronised && !it.component->config.quiet) {
            fmt::print(stderr,
                       "filter.vmtrace.isolate: warning: guest `{}` is not on the host's time base (no vmsync "
                       "handshakes?): its threads and mappings are not used\n",
                       raw->name);
        }
        break;
    case Role::unknown:
        break;
    }
    it.machines.push_back(std::move(machine));
    it.machine_by_trace.emplace(trace, raw);
    if (raw->role == Role::guest) {
        bind(it, *raw);
    }
    return *raw;
}

void feed_event(IsolateIterator& it, Machine& machine, const bt_message* msg, std::int32_t cpu) {
    const bt_event* event = bt_message_event_borrow_event_const(msg);
    const EventInfo& info = info_of(it, machine, bt_event_borrow_class_const(event));
    if (info.kind == Kind::other) {
        return;
    }
    const bt_field* p = bt_event_borrow_payload_field_const(event);
    const std::int64_t t = event_time(machine, msg);
    isolate::Join& join = *it.join;
    const auto ucpu = static_cast<std::uint32_t>(cpu < 0 ? 0 : cpu);
    if (machine.role == Role::host) {
        switch (info.kind) {
        case Kind::sched_switch:
            it.host_tid_on_cpu[cpu] = s32(p, info, 0);
            join.host_sched_switch(t, ucpu, s32(p, info, 0));
            return;
        case Kind::kvm_entry:
            join.host_kvm_entry(t, ucpu);
            return;
        case Kind::kvm_exit:
            join.host_kvm_exit(t, ucpu);
            return;
        case Kind::tdp_mmu_map:
            join.host_tdp_map(t, s32(p, info, 0), static_cast<std::uint8_t>(u64(p, info, 1)), u64(p, info, 2),
                              u64(p, info, 3), u64(p, info, 4), static_cast<std::uint8_t>(u64(p, info, 5)),
                              static_cast<std::uint8_t>(u64(p, info, 6)));
            return;
        case Kind::vcpu_thread:
            it.vm_pid_of_tid[s32(p, info, 2)] = s32(p, info, 0);
            if (info.has_comm) {
                it.vm_comm.try_emplace(s32(p, info, 0), text(p, info, 3));
            }
            join.host_vcpu_thread(s32(p, info, 0), static_cast<std::uint32_t>(u64(p, info, 1)), s32(p, info, 2));
            return;
        case Kind::statedump_vm:
            it.vm_comm[s32(p, info, 0)] = std::string(text(p, info, 1));
            return;
        case Kind::vmsync_host: {
            const std::uint64_t uid = u64(p, info, 0);
            if (it.vm_pid_of_uid.count(uid) != 0) {
                return;
            }
            const auto tid = it.host_tid_on_cpu.find(cpu);
            if (tid == it.host_tid_on_cpu.end()) {
                return;
            }
            const auto pid = it.vm_pid_of_tid.find(tid->second);
            if (pid == it.vm_pid_of_tid.end()) {
                return;
            }
            it.vm_pid_of_uid[uid] = pid->second;
            for (const auto& m : it.machines) {
                if (m->role == Role::guest && m->vm_uid == uid) {
                    bind(it, *m);
                }
            }
            return;
        }
        default:
            return;
        }
    }
    if (machine.role == Role::guest) {
        if (machine.vm < 0) {
            ++machine.unbound_events;
            return;
        }
        const int vm = machine.vm;
        switch (info.kind) {
        case Kind::sched_switch:
            join.guest_sched_switch(t, vm, ucpu, s32(p, info, 0), text(p, info, 1));
            return;
        case Kind::process_state:
            join.guest_thread(vm, s32(p, info, 0), s32(p, info, 1), text(p, info, 2));
            return;
        case Kind::process_fork:
            join.guest_fork(t, vm, s32(p, info, 0), s32(p, info, 1), s32(p, info, 2), text(p, info, 3));
            return;
        case Kind::mm_map:
            ++machine.mm_events;
            join.guest_mm_map(t, vm, s32(p, info, 0), s32(p, info, 1), u64(p, info, 2), u64(p, info, 3));
            return;
        case Kind::mm_unmap:
            join.guest_mm_unmap(t, vm, s32(p, info, 0), u64(p, info, 1), u64(p, info, 2),
                                static_cast<std::uint8_t>(u64(p, info, 3)));
            return;
        default:
            return;
        }
    }
    if (machine.role == Role::tracer) {
        if (info.kind == Kind::mem_lost) {
            it.report.add_tracer_lost(u64(p, info, 0));
            return;
        }
        isolate::Access access;
        access.time = t;
        access.cpu = static_cast<std::uint32_t>(u64(p, info, 0));
        access.hpa = u64(p, info, 1);
        access.size = static_cast<std::uint8_t>(u64(p, info, 2));
        access.kind = static_cast<std::uint8_t>(u64(p, info, 3));
        access.user = it.records_in++;
        // The join releases accesses in input order: a queue carries each
        // one's va to its output.
        it.va_in_flight.emplace_back(access.user, info.has_va ? u64(p, info, 4) : 0);
        join.access(access);
    }
}

}  // namespace

void consume(IsolateIterator& it, const bt_message* msg) {
    const bt_message_type type = bt_message_get_type(msg);
    const bt_stream* stream = message_stream(msg);
    if (stream == nullptr) {
        return;
    }
    Machine& machine = machine_of(it, stream);
    switch (type) {
    case BT_MESSAGE_TYPE_STREAM_BEGINNING:
        ++machine.open_streams;
        return;
    case BT_MESSAGE_TYPE_STREAM_END:
        // A guest whose session stopped while its VM ran on: from here on
        // its trace no longer says which thread runs (seen in the lab: a
        // guest's accesses 28 s after its session stopped were given to
        // the lttng-sessiond thread that ran last, at another process's
        // address).
        // The same for the host's trace, whose end leaves the memory
        // tracer's later records (a window the tracer still records) to
        // nobody known.
        if (machine.open_streams > 0 && --machine.open_streams == 0 && it.join) {
            if (machine.role == Role::guest && machine.vm >= 0) {
                it.join->guest_trace_end(machine.vm);
            } else if (machine.role == Role::host) {
                it.join->host_trace_end();
            }
        }
        return;
    case BT_MESSAGE_TYPE_PACKET_BEGINNING:
        it.stream_cpu[stream] = packet_cpu_id(bt_message_packet_beginning_borrow_packet_const(msg));
        return;
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS:
        if (machine.role == Role::tracer) {
            std::uint64_t count = 0;
            if (bt_message_discarded_events_get_count(msg, &count) == BT_PROPERTY_AVAILABILITY_AVAILABLE) {
                it.report.add_discarded(count);
            }
        }
        return;
    case BT_MESSAGE_TYPE_EVENT: {
        if (machine.role == Role::unknown || (machine.role == Role::guest && !machine.synchronised)) {
            return;
        }
        const auto cpu = it.stream_cpu.find(stream);
        feed_event(it, machine, msg, cpu != it.stream_cpu.end() ? cpu->second : -1);
        return;
    }
    default:
        return;
    }
}

// Reads the start of the input with a second iterator, for the vmsync
// host events that tie each guest to its VM: a guest's first events (its
// statedump) come before the host's first handshake with it, and the join
// must know whose they are.  Keeps only the ties.
void scout(IsolateIterator& it) {
    if (!it.scout) {
        return;
    }
    IsolateComponent quiet{it.component->config};
    quiet.config.quiet = true;  // the main pass warns
    IsolateIterator local;
    local.component = &quiet;
    local.join = std::make_unique<isolate::Join>();
    std::int64_t first = -1;
    bool done = false;
    while (!done) {
        bt_message_array_const messages = nullptr;
        std::uint64_t count = 0;
        const auto status = bt_message_iterator_next(it.scout.get(), &messages, &count);
        if (status == BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR) {
            throw std::bad_alloc();
        }
        if (status == BT_MESSAGE_ITERATOR_NEXT_STATUS_ERROR) {
            throw bt2::CallError("cannot read the input ahead (to tie guests to their VMs)");
        }
        if (status != BT_MESSAGE_ITERATOR_NEXT_STATUS_OK) {
            break;
        }
        bt2::MessageBatch batch(messages, count);
        while (!batch.empty()) {
            bt2::MessageRef msg = batch.take();
            const bt_stream* stream = message_stream(msg.get());
            if (stream == nullptr) {
                continue;
            }
            Machine& machine = machine_of(local, stream);
            if (bt_message_get_type(msg.get()) == BT_MESSAGE_TYPE_PACKET_BEGINNING) {
                local.stream_cpu[stream] = packet_cpu_id(bt_message_packet_beginning_borrow_packet_const(msg.get()));
                continue;
            }
            if (bt_message_get_type(msg.get()) != BT_MESSAGE_TYPE_EVENT || machine.role != Role::host) {
                continue;
            }
            const std::int64_t t = event_time(machine, msg.get());
            first = first < 0 ? t : first;
            const auto cpu = local.stream_cpu.find(stream);
            feed_event(local, machine, msg.get(), cpu != local.stream_cpu.end() ? cpu->second : -1);
            if (t - first > it.component->config.scout_ns) {
                done = true;
            }
        }
        const bool all_bound = std::all_of(local.machines.begin(), local.machines.end(), [&](const auto& m) {
            return m->role != Role::guest || !m->synchronised || local.vm_pid_of_uid.count(m->vm_uid) != 0;
        });
        done = done || (first >= 0 && all_bound && local.host != nullptr);
    }
    it.vm_pid_of_uid = local.vm_pid_of_uid;
    it.scout.reset();
}

void check_inputs(IsolateIterator& it) {
    if (it.tracer == nullptr) {
        throw bt2::Error("no memory trace among the inputs (a trace that declares vmtrace_mem_access)");
    }
    if (it.host == nullptr) {
        throw bt2::Error(
            fmt::format("memory trace `{}` has no host trace beside it: nothing says which VM owns a "
                        "host page",
                        it.tracer->name));
    }
}

}  // namespace vmtrace::plugin::isolatefilter
