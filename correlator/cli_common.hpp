// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmtrace::cli {

// Exit status of every command (docs/cli.md).
constexpr int kExitFailure = 1;   // processing failed or its output cannot be trusted
constexpr int kExitUsage = 2;     // bad command line or unreadable input
constexpr int kExitNoPlugin = 3;  // the vmtrace babeltrace2 plugin was not found
constexpr int kExitSystem = 4;    // the system refused: module absent or not loadable, no permission

// An error that ends a command, reported on one line.  Its exit status is
// part of its type, never read back from its text.
class CommandError : public std::runtime_error {
public:
    CommandError(const std::string& what, int status) : std::runtime_error(what), status_(status) {}
    [[nodiscard]] int status() const { return status_; }

private:
    int status_;
};

// Bad usage: exit status 2.
struct UsageError : CommandError {
    explicit UsageError(const std::string& what) : CommandError(what, kExitUsage) {}
};

// The system refused an operation (modules, sessions, permissions): exit
// status 4.
struct SystemError : CommandError {
    explicit SystemError(const std::string& what) : CommandError(what, kExitSystem) {}
};

// The processing failed or its output cannot be trusted: exit status 1.
struct ProcessingError : CommandError {
    explicit ProcessingError(const std::string& what) : CommandError(what, kExitFailure) {}
};

// Where babeltrace-plugin-vmtrace.so is: VMTRACE_PLUGIN_DIR, else the
// build tree's plugin directory, else empty (babeltrace2's system one).
std::string plugin_dir();

// The CTF traces of one machine given on the command line: the directory
// itself or the ones below it that hold a `metadata` file (LTTng writes
// HOST/SESSION/kernel/metadata).  Throws UsageError naming `arg`, and
// what check_trace_dir() throws for a trace that cannot be read safely.
std::vector<std::string> trace_dirs(const std::string& arg);

// Commands that run until their sources end (live ones) stop cleanly on
// SIGINT or SIGTERM: catch_stop_signals() makes those signals set the
// flag stop_requested() returns, which the command polls; the command may
// set it itself to stop the same way.
void catch_stop_signals();
std::atomic<bool>& stop_requested();

// One subcommand: `args` excludes the command's own name.
using CommandFunction = int (*)(const std::vector<std::string>& args);

int sync_command(const std::vector<std::string>& args);
int isolate_command(const std::vector<std::string>& args);
int analyze_command(const std::vector<std::string>& args);
int modules_command(const std::vector<std::string>& args);
int record_command(const std::vector<std::string>& args);
int export_command(const std::vector<std::string>& args);
int report_command(const std::vector<std::string>& args);
int top_command(const std::vector<std::string>& args);

}  // namespace vmtrace::cli
