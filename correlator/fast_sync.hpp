// SPDX-License-Identifier: MIT
#pragma once

#include <boost/program_options.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vmtrace::cli {

// `vmtrace sync`'s fast path (docs/clock-sync.md): estimate each guest's
// transform from its handshakes only (the vmsync channel's stream files
// when the trace has one), then write every trace as its original stream
// files (hard links, else copies) with, for a synchronised guest, metadata
// whose clock carries the transform.
struct FastSyncRequest {
    std::vector<std::vector<std::string>> traces;  // trace directories, per machine argument
    std::vector<std::string> machines;             // the machine arguments
    const boost::program_options::variables_map* options = nullptr;
    std::filesystem::path out;  // where to write (the staging directory)
    std::string shown;          // the output directory the user named
    std::string stats;          // the user's statistics file, or empty
    bool quiet = false;
};

// Writes the output into request.out and returns nullopt; or writes
// nothing and returns why the fast path cannot serve these traces (the
// command then synchronises event by event).  Throws what the per-event
// path would for traces that cannot be synchronised at all.
std::optional<std::string> fast_sync(const FastSyncRequest& request);

// Adds to the statistics file the per-event path wrote which path ran
// (`path`: "rewrite-events") and, when the fast path was tried first, why it
// did not serve (`fast_path_refused`).
void note_per_event_path(const std::string& stats_file, const std::optional<std::string>& refused);

}  // namespace vmtrace::cli
