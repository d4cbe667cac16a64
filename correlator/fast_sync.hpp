// SPDX-License-Identifier: MIT
#pragma once

#include <boost/program_options.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmtrace::cli {

// `vmtrace sync`'s fast path (docs/clock-sync.md): estimate each guest's
// transform from its handshakes only (the vmsync channel's stream files
// when the trace has one), then write every trace as its original stream
// files (hard links, else copies) with, for a synchronised guest, metadata
// whose clock carries the transform.
struct FastSyncRequest {
    // The command's options: the machine arguments ("traces"), --quiet,
    // --rewrite-events, --verify and filter.vmtrace.sync's.
    FastSyncRequest(const boost::program_options::variables_map& vm, std::vector<std::vector<std::string>> traces,
                    std::filesystem::path out, std::string shown, std::string stats);

    std::vector<std::vector<std::string>> traces;  // trace directories, per machine argument
    std::vector<std::string> machines;             // the machine arguments
    const boost::program_options::variables_map* options = nullptr;
    std::filesystem::path out;  // where to write (the staging directory)
    std::string shown;          // the output directory the user named
    std::string stats;          // the statistics file, or empty
    bool quiet = false;
};

struct FastSyncResult {
    bool served = false;                 // the output is written
    std::optional<std::string> refused;  // why not, when the fast path was tried
    std::size_t host_machine = 0;        // when served: the host's index in `traces`
};

// Runs the fast path for `vmtrace COMMAND`, unless --rewrite-events or
// --verify asks for the per-event one.  Served: the output is in
// request.out.  Refused: nothing is written, and stderr says why (even with
// --quiet: the command then takes the per-event path, at its cost).
// Throws what the per-event path would for traces that cannot be
// synchronised at all.
FastSyncResult fast_sync(std::string_view command, const FastSyncRequest& request);

// Adds to the statistics file the per-event path wrote which path ran
// (`path`: "rewrite-events") and, when the fast path was tried first, why it
// did not serve (`fast_path_refused`).
void note_per_event_path(const std::string& stats_file, const std::optional<std::string>& refused);

}  // namespace vmtrace::cli
