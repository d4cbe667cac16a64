// SPDX-License-Identifier: MIT
#include "sync_marker.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "cli_common.hpp"

namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

constexpr const char* kFormat = "vmtrace-sync-output";
constexpr int kVersion = 1;

// Every file of one trace directory (index/ included) and its size.
nlohmann::json files_of(const fs::path& trace) {
    nlohmann::json files = nlohmann::json::object();
    for (const auto& entry : fs::recursive_directory_iterator(trace)) {
        if (entry.is_regular_file()) {
            files[fs::relative(entry.path(), trace).generic_string()] = entry.file_size();
        }
    }
    return files;
}

}  // namespace

void write_sync_marker(const fs::path& dir) {
    nlohmann::json traces = nlohmann::json::object();
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (entry.path().filename() == "metadata") {
            const fs::path trace = entry.path().parent_path();
            traces[fs::relative(trace, dir).generic_string()] = files_of(trace);
        }
    }
    const nlohmann::json marker = {{"format", kFormat}, {"version", kVersion}, {"traces", traces}};
    std::ofstream out(dir / kSyncMarker, std::ios::binary | std::ios::trunc);
    out << marker.dump(1) << "\n";
    if (!out.flush()) {
        throw ProcessingError(fmt::format("{}: cannot write", (dir / kSyncMarker).string()));
    }
}

void check_synchronized(const std::string& trace_dir) {
    std::error_code ec;
    const fs::path trace = fs::canonical(trace_dir, ec);
    for (fs::path dir = trace; !ec && !dir.empty(); dir = dir.parent_path()) {
        const fs::path file = dir / kSyncMarker;
        if (fs::exists(file, ec)) {
            std::ifstream in(file, std::ios::binary);
            const nlohmann::json marker = nlohmann::json::parse(in, nullptr, false);
            const std::string name = fs::relative(trace, dir).generic_string();
            if (marker.is_discarded() || !marker.is_object() || marker.value("format", "") != kFormat ||
                !marker.contains("traces") || !marker["traces"].is_object()) {
                throw ProcessingError(fmt::format("{}: not a `vmtrace sync` marker (damaged?)", file.string()));
            }
            const auto listed = marker["traces"].find(name);
            if (listed == marker["traces"].end()) {
                throw ProcessingError(fmt::format(
                    "{}: not written by the `vmtrace sync` run of {} (it does not list it): --synchronized reads "
                    "only that command's output",
                    trace_dir, dir.string()));
            }
            if (*listed != files_of(trace)) {
                throw ProcessingError(fmt::format(
                    "{}: its files changed since `vmtrace sync` wrote them (sizes differ from {}): a damaged or "
                    "incomplete copy",
                    trace_dir, file.string()));
            }
            return;
        }
        if (dir == dir.parent_path()) {
            break;
        }
    }
    throw ProcessingError(fmt::format(
        "{}: not synchronised by `vmtrace sync` (no {} above it): give the recorded traces without --synchronized, "
        "`vmtrace analyze` synchronises them",
        trace_dir, kSyncMarker));
}

}  // namespace vmtrace::cli
