// SPDX-License-Identifier: MIT
// filter.vmtrace.isolate: splits a machine's memory trace into one trace
// per VM and one for the host (docs/isolation.md).
//
// Input: one port, fed by filter.vmtrace.sync's output (host, guests and
// the memory tracer, all on the host's time base, in time order).  The
// filter joins every vmtrace_mem_access with the host's KVM TDP MMU
// mappings, the guests' page-table events and the CPU chain host CPU ->
// vCPU -> guest thread (lib/isolate), and writes each access, annotated,
// into `vm-NAME` (the VM owns the host page) or `host`.  Nothing else
// passes: the output is the isolated memory traces.
//
// Records in = records out: every access of the memory trace is written
// exactly once, or the run fails.
#include <fmt/format.h>
#include <charconv>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bt2/error.hpp"
#include "bt2/kept_messages.hpp"
#include "bt2/params.hpp"
#include "isolate_filter/isolate_state.hpp"
#include "lib/isolate/contradictions.hpp"
#include "plugin/entry_points.h"

namespace vmtrace::plugin::isolatefilter {
namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream file(path);
    file << text;
    file.close();
    if (!file) {
        throw bt2::Error(fmt::format("filter.vmtrace.isolate: cannot write `{}`", path.string()));
    }
}

// The report, the checks that decide whether the output can be trusted,
// and the warnings that say why some accesses stayed unattributed.
void finish(IsolateIterator& it) {
    check_inputs(it);
    const IsolateConfig& config = it.component->config;
    const isolate::Counters& counters = it.join->counters();
    std::vector<std::string> problems;
    std::vector<std::string> warnings;
    if (counters.in != counters.out || counters.in != it.records_in || it.records_out != it.records_in) {
        problems.push_back(fmt::format("records in ({}) and out ({}) differ: the join handed out {} of {}",
                                       it.records_in, it.records_out, counters.out, counters.in));
    }
    if (!it.host->declares_tdp) {
        warnings.push_back(
            fmt::format("host `{}` declares no kvm_tdp_mmu_map (vmtrace's host module not loaded?): "
                        "no access can be given to a VM; they are all host or before-map",
                        it.host->name));
    }
    for (const auto& m : it.machines) {
        if (m->role == Role::guest && m->synchronised && m->vm < 0) {
            warnings.push_back(
                fmt::format("guest `{}` (vm_uid {:#x}) could not be tied to a VM: no vmsync host event "
                            "of its vm_uid on a vCPU thread the host trace names; its events are "
                            "not used",
                            m->name, m->vm_uid));
        } else if (m->role == Role::guest && m->unbound_events != 0) {
            warnings.push_back(fmt::format("guest `{}`: {} events came before it was tied to its VM and are not used",
                                           m->name, m->unbound_events));
        }
        if (m->role == Role::guest && m->vm >= 0 && m->mm_events == 0) {
            warnings.push_back(
                fmt::format("guest `{}` has no guest_mm_map events (vmtrace's guest module not "
                            "loaded?): its accesses are guest-kernel at best, never a process's",
                            m->name));
        }
    }
    const isolate::Contradictions& contradictions = it.join->contradictions();
    nlohmann::ordered_json contradiction_json = nlohmann::ordered_json::object();
    for (std::size_t k = 0; k < isolate::kContradictionCount; ++k) {
        const auto kind = static_cast<isolate::Contradiction>(k);
        if (contradictions.count(kind) != 0) {
            contradiction_json[std::string(isolate::to_string(kind))] = {{"count", contradictions.count(kind)},
                                                                         {"first", contradictions.first_example(kind)}};
            warnings.push_back(fmt::format("{} {} (first: {})", contradictions.count(kind), isolate::to_string(kind),
                                           contradictions.first_example(kind)));
        }
    }
    // Out-of-order records: the input is sorted by filter.vmtrace.sync, so
    // any are damage, tolerated up to 0.1 %.
    const std::uint64_t backwards = contradictions.count(isolate::Contradiction::time_backwards);
    if (backwards * 1000 > std::max<std::uint64_t>(it.records_in, 1)) {
        problems.push_back(
            fmt::format("{} events or records went back in time: the input is not in time order", backwards));
    }
    nlohmann::ordered_json report = it.report.to_json();
    report["memory_trace"] = {{"name", it.tracer->name}, {"sync_bound_ns", it.tracer->bound_ns}};
    report["records_in"] = it.records_in;
    report["records_out"] = it.records_out;
    nlohmann::ordered_json outputs = nlohmann::ordered_json::object();
    for (const auto& output : it.vm_outputs) {
        if (output) {
            outputs[output->name] = output->events;
        }
    }
    if (it.host_output) {
        outputs[it.host_output->name] = it.host_output->events;
    }
    report["outputs"] = outputs;
    report["contradictions"] = contradiction_json;
    if (it.truth) {
        const std::uint64_t missing = it.truth->missing();
        nlohmann::ordered_json accuracy = it.truth->to_json(it.tracer->bound_ns);
        accuracy["missing"] = missing;
        report["accuracy"] = accuracy;
        if (missing != 0) {
            problems.push_back(fmt::format("{} accesses of the ground truth never came out", missing));
        }
    }
    report["warnings"] = warnings;
    report["problems"] = problems;
    std::string text = it.report.to_text();
    text += fmt::format("records in {}, out {}\n", it.records_in, it.records_out);
    if (it.truth) {
        const auto& a = report["accuracy"];
        text += fmt::format(
            "against the ground truth: {} exact, {} mismatched, {} ambiguous, {} before-map; time "
            "error max {} ns (bound {} ns)\n",
            a["exact"].get<std::uint64_t>(), a["mismatched"].get<std::uint64_t>(), a["ambiguous"].get<std::uint64_t>(),
            a["before_map"].get<std::uint64_t>(), a["time_error_ns"]["max"].get<std::int64_t>(), it.tracer->bound_ns);
    }
    for (const std::string& w : warnings) {
        text += "warning: " + w + "\n";
    }
    if (!config.report_dir.empty()) {
        const std::filesystem::path dir(config.report_dir);
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        write_file(dir / "isolation.json", report.dump(2) + "\n");
        write_file(dir / "summary.txt", text);
    }
    if (!config.quiet) {
        for (const std::string& w : warnings) {
            fmt::print(stderr, "filter.vmtrace.isolate: warning: {}\n", w);
        }
    }
    if (!problems.empty()) {
        std::string all;
        for (const std::string& p : problems) {
            all += (all.empty() ? "" : "; ") + p;
        }
        throw bt2::Error("filter.vmtrace.isolate: the isolated output cannot be trusted: " + all);
    }
}

bt_message_iterator_class_next_method_status fill(IsolateIterator& it, bt_message_array_const messages,
                                                  std::uint64_t capacity, std::uint64_t& n) {
    if (!it.started) {
        it.started = true;
        scout(it);
    }
    auto write = [&it](const isolate::Access& a, const isolate::Result& r) { write_access(it, a, r); };
    while (it.pending.size() < capacity && !it.finished) {
        if (it.input_ended) {
            it.join->flush();
            it.join->drain(write);
            close_outputs(it);
            it.finished = true;
            finish(it);
            break;
        }
        bt_message_array_const in = nullptr;
        std::uint64_t count = 0;
        switch (bt_message_iterator_next(it.upstream.get(), &in, &count)) {
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_OK:
            break;
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_END:
            it.input_ended = true;
            continue;
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_AGAIN:
            if (it.pending.empty()) {
                return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_AGAIN;
            }
            goto hand_out;
        case BT_MESSAGE_ITERATOR_NEXT_STATUS_MEMORY_ERROR:
            throw std::bad_alloc();
        default:
            throw bt2::CallError(fmt::format("cannot read the input (fed by `{}`)", it.upstream_name));
        }
        {
            bt2::MessageBatch batch(in, count);
            while (!batch.empty()) {
                bt2::MessageRef msg = batch.take();
                consume(it, msg.get());
            }
        }
        it.join->drain(write);
        if (it.progress) {
            it.progress->update(it.records_out, 0, false);
        }
    }
hand_out:
    while (n < capacity && !it.pending.empty()) {
        messages[n++] = it.pending.front().release();
        it.pending.pop_front();
    }
    if (n == 0) {
        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
    }
    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
}

bt_message_iterator_class_next_method_status next(IsolateIterator& it, bt_message_array_const messages,
                                                  std::uint64_t capacity, std::uint64_t* count) {
    std::uint64_t n = 0;
    try {
        const auto status = fill(it, messages, capacity, n);
        *count = n;
        return status;
    } catch (...) {
        bt2::keep_after_error(messages, n);
        throw;
    }
}

IsolateConfig parse_config(const bt2::Params& params) {
    params.reject_unknown({"report-dir", "memory-truth", "default-bound-ns", "sync-bounds", "bin-ms", "packet-events",
                           "scout-ms", "quiet", "progress"});
    IsolateConfig config;
    config.report_dir = params.string("report-dir").value_or("");
    config.truth_path = params.string("memory-truth").value_or("");
    config.default_bound_ns = params.integer("default-bound-ns").value_or(-1);
    if (config.default_bound_ns < -1) {
        throw bt2::Error("filter.vmtrace.isolate: parameter `default-bound-ns` must not be negative");
    }
    for (const std::string& entry : params.string_list("sync-bounds")) {
        const auto eq = entry.rfind('=');
        std::int64_t ns = -1;
        if (eq != std::string::npos && eq > 0) {
            const char* begin = entry.c_str() + eq + 1;
            const auto [end, ec] = std::from_chars(begin, entry.c_str() + entry.size(), ns);
            if (ec != std::errc() || end != entry.c_str() + entry.size() || begin == end) {
                ns = -1;
            }
        }
        if (ns < 0) {
            throw bt2::Error(
                fmt::format("filter.vmtrace.isolate: parameter `sync-bounds`: `{}` is not TRACE=NANOSECONDS (a name "
                            "and a bound >= 0)",
                            entry));
        }
        config.sync_bounds[entry.substr(0, eq)] = ns;
    }
    config.bin_ns = params.integer_between("bin-ms", 1, 86'400'000).value_or(100) * 1'000'000;
    config.packet_events =
        static_cast<std::uint64_t>(params.integer_between("packet-events", 1, 1'000'000).value_or(4096));
    config.scout_ns = params.integer_between("scout-ms", 0, 86'400'000).value_or(86'400'000) * 1'000'000;
    config.quiet = params.boolean("quiet").value_or(false);
    config.progress = params.boolean("progress").value_or(false);
    return config;
}

IsolateComponent* component_of(bt_self_component_filter* self) {
    return static_cast<IsolateComponent*>(bt_self_component_get_data(bt_self_component_filter_as_self_component(self)));
}

}  // namespace
}  // namespace vmtrace::plugin::isolatefilter

using namespace vmtrace;
using namespace vmtrace::plugin::isolatefilter;

extern "C" bt_component_class_initialize_method_status vmtrace_isolate_initialize(
    bt_self_component_filter* self, bt_self_component_filter_configuration*, const bt_value* params, void*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_COMPONENT(bt_self_component_filter_as_self_component(self), "%s",
                                                            message);
    };
    return bt2::guard<bt_component_class_initialize_method_status>(append, [&] {
        auto comp = std::make_unique<IsolateComponent>();
        comp->config = parse_config(bt2::Params(params, "filter.vmtrace.isolate"));
        if (!comp->config.truth_path.empty()) {
            // Refused now, naming the parameter, rather than mid-run.
            isolate::TruthCheck probe(comp->config.truth_path);
        }
        bt2::check_status(bt_self_component_filter_add_input_port(self, "in", nullptr, nullptr), "add input port");
        bt2::check_status(bt_self_component_filter_add_output_port(self, "out", nullptr, nullptr), "add output port");
        bt_self_component_set_data(bt_self_component_filter_as_self_component(self), comp.release());
        return BT_COMPONENT_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_isolate_finalize(bt_self_component_filter* self) {
    delete component_of(self);
}

extern "C" bt_message_iterator_class_initialize_method_status vmtrace_isolate_iterator_initialize(
    bt_self_message_iterator* self, bt_self_message_iterator_configuration*, bt_self_component_port_output*) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_initialize_method_status>(append, [&] {
        bt_self_component* self_comp = bt_self_message_iterator_borrow_component(self);
        auto* comp = static_cast<IsolateComponent*>(bt_self_component_get_data(self_comp));
        auto it = std::make_unique<IsolateIterator>();
        it->self = self;
        it->component = comp;
        it->join = std::make_unique<isolate::Join>();
        it->report = isolate::IsolationReport(isolate::IsolationReport::Options{comp->config.bin_ns, 10});
        if (!comp->config.truth_path.empty()) {
            it->truth = std::make_unique<isolate::TruthCheck>(comp->config.truth_path);
        }
        if (comp->config.progress) {
            it->progress = std::make_unique<vmtrace::plugin::ProgressLine>("isolating");
        }
        auto* self_filter = reinterpret_cast<bt_self_component_filter*>(self_comp);
        bt_self_component_port_input* port = bt_self_component_filter_borrow_input_port_by_name(self_filter, "in");
        const bt_port* as_port =
            bt_self_component_port_as_port(bt_self_component_port_input_as_self_component_port(port));
        if (!bt_port_is_connected(as_port)) {
            throw bt2::Error(
                "filter.vmtrace.isolate: input port `in` is not connected (connect filter.vmtrace.sync's "
                "output)");
        }
        if (const bt_connection* connection = bt_port_borrow_connection_const(as_port)) {
            const bt_port* up = bt_port_output_as_port_const(bt_connection_borrow_upstream_port_const(connection));
            it->upstream_name = bt_component_get_name(bt_port_borrow_component_const(up));
        }
        for (bt2::MessageIteratorRef* target : {&it->upstream, &it->scout}) {
            bt_message_iterator* upstream = nullptr;
            if (bt_message_iterator_create_from_message_iterator(self, port, &upstream) !=
                BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_OK) {
                throw bt2::CallError("filter.vmtrace.isolate: cannot create a message iterator on input port `in`");
            }
            *target = bt2::MessageIteratorRef::adopt(upstream);
        }
        bt_self_message_iterator_set_data(self, it.release());
        return BT_MESSAGE_ITERATOR_CLASS_INITIALIZE_METHOD_STATUS_OK;
    });
}

extern "C" void vmtrace_isolate_iterator_finalize(bt_self_message_iterator* self) {
    delete static_cast<IsolateIterator*>(bt_self_message_iterator_get_data(self));
}

extern "C" bt_message_iterator_class_next_method_status vmtrace_isolate_iterator_next(bt_self_message_iterator* self,
                                                                                      bt_message_array_const messages,
                                                                                      uint64_t capacity,
                                                                                      uint64_t* count) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_next_method_status>(append, [&] {
        return next(*static_cast<IsolateIterator*>(bt_self_message_iterator_get_data(self)), messages, capacity, count);
    });
}
