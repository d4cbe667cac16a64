// SPDX-License-Identifier: MIT
// The state of filter.vmtrace.sync, shared by its parts: sync_observe.cpp
// reads the inputs, sync_emit.cpp orders and rewrites, sync_report.cpp
// reports, sync_filter.cpp is the babeltrace2 component.
#pragma once

#include <babeltrace2/babeltrace.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bt2/progress_line.hpp"
#include "bt2/shared_object.hpp"
#include "bt2/trace_ir_copy.hpp"
#include "lib/sync/estimator_registry.hpp"
#include "lib/sync/guest_mode_tracker.hpp"
#include "lib/sync/sync_quality.hpp"
#include "lib/sync/vm_pairing.hpp"

namespace vmtrace::plugin::syncfilter {

using clocksync::SyncQuality;
using sync::SyncHalf;

struct SyncConfig {
    // Look-ahead of every input while emitting.  Each buffered message
    // costs babeltrace2 its object pools (a malloc per field), so it stays
    // small.
    std::int64_t window_ns = 5'000'000;
    // Before emitting anything, a second iterator on every input reads the
    // first `prefetch_ns` of it for vmsync events only, so that the
    // earliest guest events are converted with many handshakes around
    // them.  It decodes that much of each trace twice, but keeps nothing.
    // Guests without handshakes by then are read further (prefetch_max_ns).
    std::int64_t prefetch_ns = 2'000'000'000;
    // How far the prefetch may read a host trace for the first handshakes
    // of a guest whose tracing started late.
    std::int64_t prefetch_max_ns = 3'600'000'000'000;
    std::uint64_t max_buffered = 4'000'000;
    // The clock estimator of every VM (parameter `estimator`).
    const clocksync::EstimatorMethod* estimator = clocksync::find_estimator_method(clocksync::kDefaultEstimator);
    std::string host;
    std::string stats_path;
    bool quiet = false;
    bool progress = false;  // a progress line on stderr
    bool strict = true;
    double max_violation_ratio = 0.01;
    // Matched messages the estimator may reject as outliers (clock steps,
    // mis-recorded timestamps) before the guest's sync counts as failed.
    double max_rejected_ratio = 0.01;
    // Parameter `estimate-only`: read every input to its end to estimate
    // the transforms and report them, emit nothing (`vmtrace sync`'s fast
    // path rewrites the clock classes instead of the events).
    bool estimate_only = false;
    // Parameter `ranges`: the time range (own clock, ns from origin) of the
    // traces an upstream component delivers, by component name, when the
    // filter does not read all of them (only their vmsync streams): the
    // reported bound covers that range.
    std::unordered_map<std::string, std::pair<std::int64_t, std::int64_t>> ranges;
    // Parameter `live`: inputs that have nothing yet (src.ctf.lttng-live)
    // do not stop the others for longer than they must (see fill_live()).
    bool live = false;
    // An input that delivered nothing (no message, no inactivity message)
    // for this long, in wall-clock time, is stale: the others go on
    // without it, and what it delivers later is clamped and counted.
    std::int64_t live_stale_ns = 5'000'000'000;
    // How much host time a guest that declares vmsync events may hold its
    // events back while it lacks the handshakes to be synchronised; past
    // this it passes through unchanged.
    std::int64_t live_wait_ns = 10'000'000'000;
    // How often, in wall-clock time, the statistics file is rewritten while
    // live (a live view reads each guest's sync quality from it).
    std::int64_t live_stats_ns = 1'000'000'000;
};

// A memory tracer (Role::tracer) is synchronised like a guest, by the
// memsync marks it sees the host store (docs/clock-sync.md), but its events
// are not checked against guest mode: it records every CPU in every mode.
enum class Role { host, guest, tracer, other };
enum class GuestMode { undecided, rewrite, passthrough };

enum class EventKind : std::uint8_t {
    other,
    sched_switch,
    kvm_entry,
    kvm_exit,
    gh_guest,
    hg_guest,
    gh_host,
    hg_host,
    mem_sync,       // the tracer saw a memsync mark: both tracer halves
    memsync_begin,  // the host's clock read before storing a mark
    memsync_end,    // and after
};

struct EventInfo {
    EventKind kind = EventKind::other;
    std::uint64_t cnt = 0;  // payload member indexes
    std::uint64_t vm_uid = 0;
    std::uint64_t vcpu_id = 0;
    std::uint64_t next_tid = 0;
    std::uint64_t hpa = 0;      // memsync events
    std::uint64_t mem_cpu = 0;  // vmtrace_mem_sync's cpu
    bool has_vcpu_id = false;
};

struct Machine {
    const bt_trace* trace = nullptr;
    std::string name;
    // The upstream component that delivered the trace (the command maps
    // component names back to the paths the user gave).
    std::string source;
    Role role = Role::other;
    bool declares_sync = false;  // vmsync guest events (a tracer: vmtrace_mem_sync) in its metadata
    const bt_clock_class* clock_class = nullptr;
    // guests and tracers
    sync::VmPairing* pairing = nullptr;
    // The vmtrace_sync_bound_ns written into the output trace's environment
    // (-1: not written yet, or no bound known).
    std::int64_t env_bound_ns = -1;
    // The earliest time of its messages read so far (own clock).
    std::int64_t first_time = std::numeric_limits<std::int64_t>::max();
    std::int64_t last_time = std::numeric_limits<std::int64_t>::min();
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
    // Events held back by more than kMaxClampNs: their clock went back
    // against an event of the same guest emitted before them (a clock jump,
    // a damaged timestamp).  Counted as consistency violations too.
    std::uint64_t displaced = 0;
    std::int64_t max_applied_bound_ns = -1;
    std::int64_t max_applied_bound_data_ns = -1;  // the same over the events that are no handshake
    std::uint64_t unbounded_events = 0;
    // live: the host time read when its first message came (-1: not yet)
    std::int64_t live_first_host = -1;
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
    bt2::MessageIteratorRef scout;      // reads ahead for prefetch(), then dropped
    std::uint64_t prefetched_sync = 0;  // vmsync events the scout fed
    std::uint64_t seen_sync = 0;        // vmsync events the main pass saw
    std::string port;
    std::string upstream;       // component that feeds the port
    std::string upstream_port;  // its output port
    bool saw_stream = false;    // a stream beginning came through
    std::deque<Buffered> queue;
    bool ended = false;
    std::int64_t last_time = std::numeric_limits<std::int64_t>::min();
    // live: nothing earlier than this will come (an inactivity message's
    // time, own clock); when it last delivered anything; whether it is
    // stale (config.live_stale_ns); whether it said AGAIN in this fill,
    // and when it last did.
    std::int64_t quiet_until = std::numeric_limits<std::int64_t>::min();
    std::chrono::steady_clock::time_point progress_at = std::chrono::steady_clock::now();
    bool stale = false;
    std::uint64_t stale_periods = 0;
    bool again = false;
    std::optional<std::chrono::steady_clock::time_point> again_at;
    // Key of the queue's head, valid while head_generation matches the
    // estimator's (guests) and the head is unchanged.
    bool head_key_valid = false;
    std::int64_t head_key = 0;
    std::uint64_t head_generation = 0;
    // The stream of the previous message, to skip the map lookups.
    const bt_stream* last_stream = nullptr;
    Machine* last_machine = nullptr;
    std::int32_t last_cpu = -1;
    const bt_event_class* last_event_class = nullptr;
    const EventInfo* last_event_info = nullptr;  // points into SyncIterator::event_info
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
    std::unordered_map<std::uint64_t, std::unique_ptr<sync::VmPairing>> pairings;  // by vm_uid
    // Memory tracers' marks, by the hpa of the reserved page: a map of its
    // own, so that an hpa can never be taken for a vm_uid.
    std::unordered_map<std::uint64_t, std::unique_ptr<sync::VmPairing>> memsync_pairings;
    std::unordered_map<const bt_event_class*, EventInfo> event_info;
    std::unordered_map<const bt_stream*, std::int32_t> stream_cpu;
    std::unique_ptr<sync::GuestModeTracker> tracker;
    Machine* host = nullptr;
    std::uint64_t buffered = 0;
    std::uint64_t window_truncations = 0;
    std::uint64_t dropped_inactivity = 0;
    std::int64_t last_emitted = std::numeric_limits<std::int64_t>::min();
    std::uint64_t emitted = 0;
    std::int64_t first_emitted = -1;         // time of the first timed message out
    std::unique_ptr<ProgressLine> progress;  // when the component asks for one
    std::vector<Input*> to_fill;             // inputs whose look-ahead may have shrunk
    std::uint64_t input_share = 1;           // of max_buffered, per input
    std::vector<std::string> empty_inputs;   // inputs that ended without a stream
    bool prefetched = false;
    bool finished = false;
    // live: the latest host time read; whether every input ended (guests
    // still undecided are decided then); when the statistics were written.
    std::int64_t host_read = std::numeric_limits<std::int64_t>::min();
    bool draining = false;
    // live: a guest's head waits for its handshakes (the host reads on
    // for them); force_decide: no input can read on, decide it now.
    bool guest_waiting = false;
    bool force_decide = false;
    std::chrono::steady_clock::time_point stats_written_at{};
    // Parameter `estimate-only`: the handshake events read (their messages
    // dropped), for the cnt order check at the end.
    std::vector<Buffered> handshakes_read;
};

inline constexpr std::uint64_t kForgetEvery = 4096;

// Handshakes each way a live guest waits for before its events are placed
// (the prefetch's 8): its own halves of them come first, then it waits for
// the host's.
inline constexpr std::uint64_t kLiveMatches = 8;
inline constexpr std::int64_t kForgetLag = 10'000'000;  // 10 ms of slack
// live: how long an input that had nothing is left alone (fill_live)
inline constexpr std::chrono::milliseconds kLiveRetryPause{100};

// A guest event whose host time lies more than this before an event of
// its guest already emitted is displaced: no transform refinement moves an
// event that far (the clamps of a clean trace stay below the estimator's
// bound, microseconds), only a clock that went back does.
inline constexpr std::int64_t kMaxClampNs = 1'000'000;

// CPU numbers index the guest-mode tracker's table; Linux's NR_CPUS tops
// out at 8192 (x86 MAXSMP), so a larger cpu_id is damage, not a machine.
inline constexpr std::int32_t kMaxCpus = 8192;

std::string_view role_name(Role role);

// "trace `NAME` (from `COMPONENT`)": how every message names a trace.
std::string trace_ref(const Machine& machine);

// "input port `in2` (fed by `COMPONENT`'s port `PORT`)".
std::string input_description(const Input& input);

// The quality of a guest's sync as reported: the estimator's, or fail when
// it had to reject more than max_rejected_ratio of the messages.
SyncQuality reported_quality(const SyncConfig& config, const Machine& guest);

// sync_observe.cpp
Machine& machine_of(SyncIterator& it, const Input& input, const bt_stream* stream);
bool pull(SyncIterator& it, Input& input);
bool needs_more(const SyncIterator& it, const Input& input);
void prefetch(SyncIterator& it);
// Whether a guest (or tracer) can be put on the host's time base: a host
// was found and its estimate is accurate or approximate.
bool can_rewrite(const SyncIterator& it, const Machine& guest);

// sync_emit.cpp
// A guest's head while it is still undecided (live): no key yet.
inline constexpr std::int64_t kNoKeyYet = std::numeric_limits<std::int64_t>::max();
std::int64_t head_key(SyncIterator& it, Input& input);
const bt_message* emit(SyncIterator& it, Input& input, std::int64_t key);

// sync_report.cpp: the statistics file while live (no summary, no checks).
void write_live_statistics(SyncIterator& it);
// sync_report.cpp: prints the summary, writes the statistics and returns
// the problems that make the output untrustworthy (empty when none).
std::vector<std::string> finish(SyncIterator& it);

}  // namespace vmtrace::plugin::syncfilter
