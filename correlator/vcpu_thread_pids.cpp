// SPDX-License-Identifier: MIT
#include "vcpu_thread_pids.hpp"

#include <deque>
#include <exception>
#include <new>
#include <string_view>

#include "pipeline.hpp"

namespace vmtrace::cli {
namespace {

// The filter's component data: where to report, and its one input port.
struct Component {
    VcpuThreadPids* watch = nullptr;
    bt_self_component_port_input* input = nullptr;
};

// One iterator: the upstream iterator and what it returned beyond the
// downstream's capacity.
struct Iterator {
    VcpuThreadPids* watch = nullptr;
    bt2::MessageIteratorRef upstream;
    std::deque<bt2::MessageRef> pending;
};

bt_component_class_initialize_method_status initialize(bt_self_component_filter* self,
                                                       bt_self_component_filter_configuration* /*config*/,
                                                       const bt_value* /*params*/, void* init_data) {
    auto* component = new (std::nothrow) Component{static_cast<VcpuThreadPids*>(init_data), nullptr};
    if (component == nullptr) {
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_MEMORY_ERROR;
    }
    bt_self_component_set_data(bt_self_component_filter_as_self_component(self), component);
    if (bt_self_component_filter_add_input_port(self, "in", nullptr, &component->input) !=
            BT_SELF_COMPONENT_ADD_PORT_STATUS_OK ||
        bt_self_component_filter_add_output_port(self, "out", nullptr, nullptr) !=
            BT_SELF_COMPONENT_ADD_PORT_STATUS_OK) {
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_ERROR;  // finalize frees the data
    }
    return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK;
}

void finalize(bt_self_component_filter* self) {
    delete static_cast<Component*>(bt_self_component_get_data(bt_self_component_filter_as_self_component(self)));
}

bt_message_iterator_class_initialize_method_status iterator_initialize(
    bt_self_message_iterator* self, bt_self_message_iterator_configuration* /*config*/,
    bt_self_component_port_output* /*port*/) {
    const auto* component =
        static_cast<const Component*>(bt_self_component_get_data(bt_self_message_iterator_borrow_component(self)));
    auto* it = new (std::nothrow) Iterator{component->watch, {}, {}};
    if (it == nullptr) {
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_MEMORY_ERROR;
    }
    bt_self_message_iterator_set_data(self, it);
    bt_message_iterator* upstream = nullptr;
    switch (bt_message_iterator_create_from_message_iterator(self, component->input, &upstream)) {
    case BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_OK:
        it->upstream = bt2::MessageIteratorRef::adopt(upstream);
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_OK;
    case BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_MEMORY_ERROR:
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_MEMORY_ERROR;
    default:
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_ERROR;
    }
}

void iterator_finalize(bt_self_message_iterator* self) {
    delete static_cast<Iterator*>(bt_self_message_iterator_get_data(self));
}

// Forwards every upstream message unchanged, noting what it tells first.
bt_message_iterator_class_next_method_status iterator_next(bt_self_message_iterator* self,
                                                           bt_message_array_const messages, std::uint64_t capacity,
                                                           std::uint64_t* count) {
    auto* it = static_cast<Iterator*>(bt_self_message_iterator_get_data(self));
    if (it->pending.empty()) {
        bt_message_array_const upstream = nullptr;
        std::uint64_t upstream_count = 0;
        switch (bt_message_iterator_next(it->upstream.get(), &upstream, &upstream_count)) {
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_OK:
            break;
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_END:
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_AGAIN;
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_MEMORY_ERROR;
        default:
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_ERROR;  // upstream's error, causes kept
        }
        bt2::MessageBatch batch(upstream, upstream_count);
        try {
            while (!batch.empty()) {
                it->pending.push_back(batch.take());
                it->watch->observe(it->pending.back().get());
            }
        } catch (const std::bad_alloc&) {
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_MEMORY_ERROR;
        } catch (const std::exception& e) {
            BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", e.what());
            return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_ERROR;
        }
    }
    *count = 0;
    while (*count < capacity && !it->pending.empty()) {
        messages[(*count)++] = it->pending.front().release();
        it->pending.pop_front();
    }
    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
}

// The filter's component class, created once for the process.
const bt_component_class_filter* component_class() {
    static const bt_component_class_filter* const cls = [] {
        bt_message_iterator_class* iterator = bt_message_iterator_class_create(iterator_next);
        if (iterator == nullptr) {
            throw std::bad_alloc();
        }
        bt_component_class_filter* filter = nullptr;
        if (bt_message_iterator_class_set_initialize_method(iterator, iterator_initialize) ==
                BT_MESSAGE_ITERATOR_CLASS_SET_METHOD_STATUS_OK &&
            bt_message_iterator_class_set_finalize_method(iterator, iterator_finalize) ==
                BT_MESSAGE_ITERATOR_CLASS_SET_METHOD_STATUS_OK) {
            filter = bt_component_class_filter_create("vcpu-thread-pids", iterator);
        }
        bt_message_iterator_class_put_ref(iterator);
        if (filter == nullptr ||
            bt_component_class_filter_set_initialize_method(filter, initialize) !=
                BT_COMPONENT_CLASS_SET_METHOD_STATUS_OK ||
            bt_component_class_filter_set_finalize_method(filter, finalize) !=
                BT_COMPONENT_CLASS_SET_METHOD_STATUS_OK) {
            throw std::bad_alloc();
        }
        return filter;
    }();
    return cls;
}

// The packet context's `cpu_id`, as LTTng writes it; -1 without one.
std::int64_t packet_cpu(const bt_event* event) {
    const bt_packet* packet = bt_event_borrow_packet_const(event);
    const bt_field* context = packet != nullptr ? bt_packet_borrow_context_field_const(packet) : nullptr;
    const bt_field* cpu =
        context != nullptr ? bt_field_structure_borrow_member_field_by_name_const(context, "cpu_id") : nullptr;
    if (cpu == nullptr || !bt_field_class_type_is(bt_field_get_class_type(cpu), BT_FIELD_CLASS_TYPE_INTEGER)) {
        return -1;
    }
    return bt_field_class_type_is(bt_field_get_class_type(cpu), BT_FIELD_CLASS_TYPE_SIGNED_INTEGER)
               ? bt_field_integer_signed_get_value(cpu)
               : static_cast<std::int64_t>(bt_field_integer_unsigned_get_value(cpu));
}

std::int64_t integer(const bt_field* payload, std::uint64_t index) {
    const bt_field* field = bt_field_structure_borrow_member_field_by_index_const(payload, index);
    return bt_field_class_type_is(bt_field_get_class_type(field), BT_FIELD_CLASS_TYPE_SIGNED_INTEGER)
               ? bt_field_integer_signed_get_value(field)
               : static_cast<std::int64_t>(bt_field_integer_unsigned_get_value(field));
}

}  // namespace

void VcpuThreadPids::add_to(Pipeline& pipeline, const std::string& name) {
    pipeline.add(component_class(), name, this);
}

const VcpuThreadPids::EventKind& VcpuThreadPids::kind_of(const bt_event_class* event_class) {
    const auto found = kinds_.find(event_class);
    if (found != kinds_.end()) {
        return found->second;
    }
    // The member each event contributes, by the names LTTng (and
    // docs/events.json) give them.
    static const struct {
        std::string_view event;
        EventKind::Kind kind;
        const char* field;
    } kEvents[] = {
        {"sched_switch", EventKind::sched_switch, "next_tid"},
        {"kvm_x86_entry", EventKind::kvm_entry, nullptr},
        {"kvm_entry", EventKind::kvm_entry, nullptr},
        {"vmsync_gh_host", EventKind::gh_host, "vm_uid"},
        {"lttng_statedump_process_state", EventKind::statedump, "tid"},
        {"sched_process_fork", EventKind::fork, "child_tid"},
    };
    EventKind kind;
    const char* name = bt_event_class_get_name(event_class);
    for (const auto& known : kEvents) {
        if (name == nullptr || known.event != name) {
            continue;
        }
        kind.kind = known.kind;
        kind.readable = known.field == nullptr;
        const bt_field_class* payload = bt_event_class_borrow_payload_field_class_const(event_class);
        for (std::uint64_t i = 0;
             known.field != nullptr && payload != nullptr && i < bt_field_class_structure_get_member_count(payload);
             ++i) {
            const bt_field_class_structure_member* member =
                bt_field_class_structure_borrow_member_by_index_const(payload, i);
            if (std::string_view(bt_field_class_structure_member_get_name(member)) == known.field &&
                bt_field_class_type_is(
                    bt_field_class_get_type(bt_field_class_structure_member_borrow_field_class_const(member)),
                    BT_FIELD_CLASS_TYPE_INTEGER)) {
                kind.field = i;
                kind.readable = true;
            }
        }
    }
    return kinds_.emplace(event_class, kind).first->second;
}

void VcpuThreadPids::observe(const bt_message* message) {
    if (bt_message_get_type(message) != BT_MESSAGE_TYPE_EVENT) {
        return;
    }
    const bt_event* event = bt_message_event_borrow_event_const(message);
    const EventKind& kind = kind_of(bt_event_borrow_class_const(event));
    if (kind.kind == EventKind::other || !kind.readable) {
        return;  // a field the schema requires is missing: the sync filter reports that
    }
    const bt_trace* trace = bt_stream_borrow_trace_const(bt_event_borrow_stream_const(event));
    TraceState& state = traces_[trace];
    if (state.name.empty()) {
        const bt_value* hostname = bt_trace_borrow_environment_entry_value_by_name_const(trace, "hostname");
        state.name = hostname != nullptr && bt_value_is_string(hostname) ? bt_value_string_get(hostname) : "?";
    }
    const bt_field* payload = bt_event_borrow_payload_field_const(event);
    const std::int64_t cpu = packet_cpu(event);
    const auto running = state.running.find(cpu);
    const std::int32_t tid = running != state.running.end() ? running->second : -1;
    switch (kind.kind) {
    case EventKind::sched_switch:
        state.running[cpu] = static_cast<std::int32_t>(integer(payload, kind.field));
        break;
    case EventKind::kvm_entry:
        if (tid > 0) {
            state.vcpu_threads[tid];
        }
        break;
    case EventKind::gh_host:
        if (tid > 0) {
            state.vcpu_threads[tid].insert(static_cast<std::uint64_t>(integer(payload, kind.field)));
        }
        break;
    case EventKind::statedump:
    case EventKind::fork:
        state.with_pid.insert(static_cast<std::int32_t>(integer(payload, kind.field)));
        break;
    case EventKind::other:
        break;
    }
}

std::vector<VcpuThreadPids::Host> VcpuThreadPids::hosts() const {
    std::vector<Host> hosts;
    for (const auto& [trace, state] : traces_) {
        if (state.vcpu_threads.empty()) {
            continue;
        }
        Host host{state.name, {}};
        for (const auto& [tid, vm_uids] : state.vcpu_threads) {
            host.vcpu_threads.push_back({tid, state.with_pid.count(tid) != 0, vm_uids});
        }
        hosts.push_back(std::move(host));
    }
    return hosts;
}

}  // namespace vmtrace::cli
