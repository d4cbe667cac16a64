// SPDX-License-Identifier: MIT
#pragma once

#include <filesystem>
#include <string>

namespace vmtrace::cli {

// How an output of `vmtrace sync` identifies itself: the file
// `vmtrace-sync.json` in the output directory, written by the command once
// every trace is complete (the traces' own CTF env does not say that a run
// finished).  It lists each trace directory and the size of each of its
// files, so that a trace changed or cut short afterwards is caught too.
inline constexpr const char* kSyncMarker = "vmtrace-sync.json";

// Writes the marker into `dir`, listing the traces below it.
void write_sync_marker(const std::filesystem::path& dir);

// Refuses (ProcessingError) a trace directory that no marker above it lists
// as it was written: `analyze --synchronized` reads only `vmtrace sync`'s
// complete output.
void check_synchronized(const std::string& trace_dir);

}  // namespace vmtrace::cli
