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

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bt2/error.hpp"
#include "bt2/kept_messages.hpp"
#include "bt2/params.hpp"
#include "plugin/entry_points.h"
#include "sync_filter/sync_state.hpp"

namespace vmtrace::plugin::syncfilter {
namespace {

// Fails the graph when finish() found problems that make the output
// untrustworthy.
void fail_on(const std::vector<std::string>& errors) {
    if (!errors.empty()) {
        std::string all;
        for (const std::string& e : errors) {
            all += (all.empty() ? "" : "; ") + e;
        }
        throw bt2::Error("the synchronised output cannot be trusted: " + all);
    }
}

// Fills `messages` and counts them in `n` as it goes, so that next() can
// keep them if an error cuts the batch short.
bt_message_iterator_class_next_method_status fill(SyncIterator& it, bt_message_array_const messages,
                                                  std::uint64_t capacity, std::uint64_t& n);

// Parameter `estimate-only`: every input read to its end, handshakes fed to
// the estimators in each input's order, nothing emitted; then the report.
bt_message_iterator_class_next_method_status estimate(SyncIterator& it) {
    for (Input& input : it.inputs) {
        while (!input.ended) {
            if (!pull(it, input)) {
                return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_AGAIN;
            }
        }
    }
    if (!it.finished) {
        it.finished = true;
        // The cnt order is checked in the order the per-event path would
        // emit the handshake events: host time, guests' under the final
        // transform.
        auto key = [](const Buffered& item) {
            const Machine& m = *item.machine;
            return m.role == Role::host ? item.time : m.pairing->estimator().transform().apply(item.time);
        };
        std::stable_sort(it.handshakes_read.begin(), it.handshakes_read.end(),
                         [&](const Buffered& a, const Buffered& b) { return key(a) < key(b); });
        for (const Buffered& item : it.handshakes_read) {
            item.pairing->check_order(item.half, item.cnt, item.time, item.lane, item.machine->name);
        }
        it.handshakes_read.clear();
        for (const auto& m : it.machines) {
            if (m->role != Role::host) {
                m->mode = can_rewrite(it, *m) ? GuestMode::rewrite : GuestMode::passthrough;
            }
        }
        fail_on(finish(it));
    }
    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
}

// How far an input with nothing queued is known to be, on the host's time
// base: nothing it delivers later is earlier.  None for an input the
// others need not wait for (ended, stale, a guest on its own clock or not
// decided yet).  An input that never delivered anything holds everything
// until it is stale.
std::optional<std::int64_t> covered_until(const Input& input) {
    const std::int64_t own = std::max(input.last_time, input.quiet_until);
    if (input.last_machine == nullptr) {
        return std::numeric_limits<std::int64_t>::min();
    }
    const Machine& m = *input.last_machine;
    if (m.role == Role::host) {
        return own;
    }
    if (m.mode != GuestMode::rewrite || own == std::numeric_limits<std::int64_t>::min()) {
        return std::nullopt;
    }
    return m.pairing->estimator().transform().apply(own);
}

// Appends the head of `input`, the earliest of all inputs at `key`, to
// the output messages[0..n).
void emit_in_order(SyncIterator& it, Input& input, std::int64_t key, bt_message_array_const messages,
                   std::uint64_t& n) {
    messages[n] = emit(it, input, key);
    ++n;
    if (++it.emitted % kForgetEvery == 0 && it.last_emitted > kForgetLag) {
        // Guest events are never emitted before last_emitted, so older
        // guest-mode intervals are of no more use.
        it.tracker->forget_before(it.last_emitted - kForgetLag);
    }
}

// Whether the host's inputs all ended: guests waiting for handshakes can
// get no more of them.
bool hosts_ended(const SyncIterator& it) {
    bool any = false;
    for (const Input& input : it.inputs) {
        if (input.last_machine != nullptr && input.last_machine->role == Role::host) {
            if (!input.ended) {
                return false;
            }
            any = true;
        }
    }
    return any;
}

// Parameter `live`: the inputs are live sources (src.ctf.lttng-live) that
// answer AGAIN while they have nothing.  Messages go out in time order as
// soon as every input that may still deliver an earlier one has told how
// far it is (a message, or an inactivity message); no prefetch (a live
// source has one iterator); an input silent for live_stale_ns is stale and
// the others go on (its late messages are clamped and counted).
bt_message_iterator_class_next_method_status fill_live(SyncIterator& it, bt_message_array_const messages,
                                                       std::uint64_t capacity, std::uint64_t& n) {
    const SyncConfig& config = it.component->config;
    if (!it.prefetched) {
        it.prefetched = true;
        it.input_share = std::max<std::uint64_t>(config.max_buffered / it.inputs.size(), 1);
        for (Input& input : it.inputs) {
            input.progress_at = std::chrono::steady_clock::now();
        }
    }
    if (it.finished) {
        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
    }
    const auto now = std::chrono::steady_clock::now();
    for (Input& input : it.inputs) {
        // A live source that had nothing is asked again only after a
        // pause: each question may be a round trip to the relay daemon
        // (a session not served yet is looked up anew), and asking every
        // input at every call, a few messages each, kept a remote view
        // seconds behind the host it could otherwise follow.
        input.again = input.again_at && now - *input.again_at < kLiveRetryPause;
        if (!input.queue.empty()) {
            input.progress_at = now;  // it has something: it holds no one
        }
        const bool stale =
            !input.ended && std::chrono::duration_cast<std::chrono::nanoseconds>(now - input.progress_at).count() >
                                config.live_stale_ns;
        if (stale && !input.stale) {
            ++input.stale_periods;
        }
        input.stale = stale;
    }
    if (!config.stats_path.empty() && now - it.stats_written_at >= std::chrono::nanoseconds(config.live_stats_ns)) {
        it.stats_written_at = now;
        write_live_statistics(it);
    }
    bool blocked = false;
    while (n < capacity) {
        bool ended = true;
        for (Input& input : it.inputs) {
            while (!input.again && needs_more(it, input)) {
                if (!pull(it, input)) {
                    input.again = true;
                    input.again_at = now;
                }
                if (it.guest_waiting) {
                    break;  // one batch each, then see whether the guest can be placed
                }
            }
            ended = ended && input.ended;
        }
        it.draining = ended || hosts_ended(it);
        Input* best = nullptr;
        std::int64_t best_key = 0;
        std::int64_t limit = std::numeric_limits<std::int64_t>::max();
        bool waiting = false;
        for (Input& input : it.inputs) {
            if (input.queue.empty()) {
                if (!input.ended && !input.stale) {
                    if (const auto covered = covered_until(input)) {
                        limit = std::min(limit, *covered);
                    }
                }
                continue;
            }
            const std::int64_t key = head_key(it, input);
            if (key == kNoKeyYet) {
                // A guest waiting for its handshakes holds everyone: its
                // events would otherwise come too late, and be clamped.
                waiting = true;
                continue;
            }
            if (best == nullptr || key < best_key) {
                best = &input;
                best_key = key;
            }
        }
        it.force_decide = false;
        if (waiting) {
            it.guest_waiting = true;
            bool can_read = false;
            for (Input& input : it.inputs) {
                can_read = can_read || (!input.again && needs_more(it, input));
            }
            if (can_read) {
                continue;
            }
            if (std::any_of(it.inputs.begin(), it.inputs.end(), [](const Input& i) { return i.again; })) {
                blocked = true;  // a source has nothing yet: later
                break;
            }
            it.force_decide = true;  // the shares are full: no more handshakes to wait for
            continue;
        }
        it.guest_waiting = false;
        if (best == nullptr) {
            if (ended && !it.finished) {
                bool queued = false;
                for (const Input& input : it.inputs) {
                    queued = queued || !input.queue.empty();
                }
                if (!queued) {
                    it.finished = true;
                    fail_on(finish(it));
                    break;
                }
            }
            blocked = true;
            break;
        }
        if (best_key > limit) {
            blocked = true;
            break;
        }
        emit_in_order(it, *best, best_key, messages, n);
    }
    if (n > 0) {
        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
    }
    return blocked || !it.finished ? BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_AGAIN
                                   : BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
}

bt_message_iterator_class_next_method_status next(SyncIterator& it, bt_message_array_const messages,
                                                  std::uint64_t capacity, std::uint64_t* count) {
    if (it.component->config.estimate_only) {
        *count = 0;
        return estimate(it);
    }
    std::uint64_t n = 0;
    try {
        const auto status =
            it.component->config.live ? fill_live(it, messages, capacity, n) : fill(it, messages, capacity, n);
        *count = n;
        return status;
    } catch (...) {
        bt2::keep_after_error(messages, n);
        throw;
    }
}

bt_message_iterator_class_next_method_status fill(SyncIterator& it, bt_message_array_const messages,
                                                  std::uint64_t capacity, std::uint64_t& n) {
    if (!it.prefetched) {
        it.prefetched = true;
        prefetch(it);
        it.input_share = std::max<std::uint64_t>(it.component->config.max_buffered / it.inputs.size(), 1);
        for (Input& input : it.inputs) {
            it.to_fill.push_back(&input);
        }
    }
    while (n < capacity) {
        // Only the inputs that emitted since the last fill can need more.
        while (!it.to_fill.empty()) {
            Input& input = *it.to_fill.back();
            while (needs_more(it, input)) {
                if (!pull(it, input)) {
                    if (n > 0) {
                        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
                    }
                    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_AGAIN;
                }
            }
            if (!input.ended && input.queue.size() >= it.input_share &&
                // In 128 bits: items without a time of their own carry the
                // minimum time, and the difference would overflow.
                static_cast<__int128>(input.last_time) - input.queue.front().time < it.component->config.window_ns) {
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
                fail_on(finish(it));
            }
            break;
        }
        emit_in_order(it, *best, best_key, messages, n);
        it.to_fill.push_back(best);
    }
    if (it.progress) {
        if (it.first_emitted < 0 && it.last_emitted != std::numeric_limits<std::int64_t>::min()) {
            it.first_emitted = it.last_emitted;
        }
        it.progress->update(it.emitted, it.first_emitted < 0 ? 0 : it.last_emitted - it.first_emitted, n == 0);
    }
    if (n == 0) {
        return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_END;
    }
    return BT_MESSAGE_ITERATOR_CLASS_NEXT_METHOD_STATUS_OK;
}

SyncConfig parse_config(const bt2::Params& params) {
    params.reject_unknown({"window-ms", "prefetch-ms", "max-buffered-messages", "host", "stats", "quiet", "progress",
                           "strict", "max-violation-ratio", "max-rejected-ratio", "prefetch-max-ms", "estimator",
                           "estimate-only", "ranges", "live", "live-stale-ms", "live-wait-ms"});
    SyncConfig config;
    config.window_ns =
        params.integer_between("window-ms", 0, 3'600'000).value_or(config.window_ns / 1'000'000) * 1'000'000;
    config.prefetch_ns =
        params.integer_between("prefetch-ms", 0, 3'600'000).value_or(config.prefetch_ns / 1'000'000) * 1'000'000;
    config.prefetch_max_ns =
        params.integer_between("prefetch-max-ms", 0, 86'400'000).value_or(config.prefetch_max_ns / 1'000'000) *
        1'000'000;
    const std::int64_t max_buffered =
        params.integer("max-buffered-messages").value_or(static_cast<std::int64_t>(config.max_buffered));
    if (max_buffered < 1) {
        throw bt2::Error("filter.vmtrace.sync: parameter `max-buffered-messages` must be positive");
    }
    config.max_buffered = static_cast<std::uint64_t>(max_buffered);
    if (const auto name = params.string("estimator")) {
        config.estimator = clocksync::find_estimator_method(*name);
        if (config.estimator == nullptr) {
            throw bt2::Error(
                fmt::format("filter.vmtrace.sync: parameter `estimator`: unknown clock estimator `{}` "
                            "(known: {})",
                            *name, clocksync::estimator_method_names()));
        }
    }
    config.estimate_only = params.boolean("estimate-only").value_or(false);
    config.live = params.boolean("live").value_or(false);
    if (config.live && config.estimate_only) {
        throw bt2::Error("filter.vmtrace.sync: parameters `live` and `estimate-only` exclude each other");
    }
    config.live_stale_ns =
        params.integer_between("live-stale-ms", 1, 3'600'000).value_or(config.live_stale_ns / 1'000'000) * 1'000'000;
    config.live_wait_ns =
        params.integer_between("live-wait-ms", 0, 3'600'000).value_or(config.live_wait_ns / 1'000'000) * 1'000'000;
    config.ranges = params.interval_map("ranges");
    config.host = params.string("host").value_or("");
    config.stats_path = params.string("stats").value_or("");
    config.quiet = params.boolean("quiet").value_or(false);
    config.progress = params.boolean("progress").value_or(false);
    config.strict = params.boolean("strict").value_or(true);
    config.max_violation_ratio = params.real("max-violation-ratio").value_or(config.max_violation_ratio);
    if (config.max_violation_ratio < 0 || config.max_violation_ratio > 1) {
        throw bt2::Error("filter.vmtrace.sync: parameter `max-violation-ratio` must be between 0 and 1");
    }
    config.max_rejected_ratio = params.real("max-rejected-ratio").value_or(config.max_rejected_ratio);
    if (config.max_rejected_ratio < 0 || config.max_rejected_ratio > 1) {
        throw bt2::Error("filter.vmtrace.sync: parameter `max-rejected-ratio` must be between 0 and 1");
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
}  // namespace vmtrace::plugin::syncfilter

using namespace vmtrace;
using namespace vmtrace::plugin::syncfilter;

extern "C" bt_component_class_initialize_method_status vmtrace_sync_initialize(bt_self_component_filter* self,
                                                                               bt_self_component_filter_configuration*,
                                                                               const bt_value* params, void*) {
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

extern "C" void vmtrace_sync_finalize(bt_self_component_filter* self) {
    delete component_of(self);
}

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
        if (comp->config.progress) {
            it->progress = std::make_unique<vmtrace::plugin::ProgressLine>("synchronising");
        }
        // The iterator's component is this filter.
        auto* self_filter = reinterpret_cast<bt_self_component_filter*>(self_comp);
        const bt_component_filter* filter = bt_self_component_filter_as_component_filter(self_filter);
        for (std::uint64_t i = 0; i < bt_component_filter_get_input_port_count(filter); ++i) {
            bt_self_component_port_input* port = bt_self_component_filter_borrow_input_port_by_index(self_filter, i);
            const bt_port* as_port =
                bt_self_component_port_as_port(bt_self_component_port_input_as_self_component_port(port));
            if (!bt_port_is_connected(as_port)) {
                continue;
            }
            bt_message_iterator* upstream = nullptr;
            if (bt_message_iterator_create_from_message_iterator(self, port, &upstream) !=
                BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_OK) {
                throw bt2::CallError(
                    fmt::format("cannot create a message iterator on input port `{}`", bt_port_get_name(as_port)));
            }
            Input input;
            input.iterator = bt2::MessageIteratorRef::adopt(upstream);
            input.port = bt_port_get_name(as_port);
            if (const bt_connection* connection = bt_port_borrow_connection_const(as_port)) {
                const bt_port* up = bt_port_output_as_port_const(bt_connection_borrow_upstream_port_const(connection));
                input.upstream_port = bt_port_get_name(up);
                input.upstream = bt_component_get_name(bt_port_borrow_component_const(up));
            }
            // Even with prefetch-ms=0: a guest's first handshakes must be
            // read before its first event is placed (see prefetch()).
            if (it->component->config.live) {
                it->inputs.push_back(std::move(input));
                continue;  // a live source allows one message iterator
            }
            bt_message_iterator* scout = nullptr;
            if (bt_message_iterator_create_from_message_iterator(self, port, &scout) !=
                BT_MESSAGE_ITERATOR_CREATE_FROM_MESSAGE_ITERATOR_STATUS_OK) {
                throw bt2::CallError(
                    fmt::format("cannot create a second message iterator on input port `{}`", input.port));
            }
            input.scout = bt2::MessageIteratorRef::adopt(scout);
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

extern "C" bt_message_iterator_class_next_method_status vmtrace_sync_iterator_next(bt_self_message_iterator* self,
                                                                                   bt_message_array_const messages,
                                                                                   uint64_t capacity, uint64_t* count) {
    auto append = [self](const char* message) {
        BT_CURRENT_THREAD_ERROR_APPEND_CAUSE_FROM_MESSAGE_ITERATOR(self, "%s", message);
    };
    return bt2::guard<bt_message_iterator_class_next_method_status>(append, [&] {
        return next(*static_cast<SyncIterator*>(bt_self_message_iterator_get_data(self)), messages, capacity, count);
    });
}
