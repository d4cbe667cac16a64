// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmtrace::cli::top {

// What one refresh of `vmtrace top` shows: the analysis sink's latest
// snapshot (one interval of host time, docs/analysis-output.md), joined
// with filter.vmtrace.sync's live statistics (each guest's sync quality,
// stale inputs) and the live delay.
struct Frame {
    nlohmann::json snapshot;               // sink.vmtrace.analysis's interval object
    nlohmann::json sync;                   // the sync filter's statistics, or null
    std::optional<std::int64_t> delay_ns;  // wall clock minus the latest event's time (live sources only)
};

// The frame as one JSON object (`vmtrace top --json`): the snapshot, each
// VM with its `sync` (quality, accuracy_ns, mode, stale), and `delay_ns`.
nlohmann::json frame_json(const Frame& frame);

enum class SortKey { vcpu, guest, hypervisor, preempted, idle, exits };
const char* to_string(SortKey key);
SortKey next(SortKey key);

struct ViewOptions {
    SortKey sort = SortKey::vcpu;
    std::string vm;  // the one VM shown; empty: all
    bool frozen = false;
};

struct Line {
    enum class Kind { title, alert, table_header, vm, row, text };
    Kind kind = Kind::text;
    std::string text;
};

// The frame as lines of text, as both the terminal view and `--batch`
// print them.
std::vector<Line> render(const Frame& frame, const ViewOptions& view);

// The names of the VMs of a frame, in the order shown.
std::vector<std::string> vm_names(const Frame& frame);

}  // namespace vmtrace::cli::top
