// SPDX-License-Identifier: MIT
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace vmtrace::cli {

// Exit status of every command (docs/cli.md).
constexpr int kExitFailure = 1;   // processing failed or its output cannot be trusted
constexpr int kExitUsage = 2;     // bad command line or unreadable input
constexpr int kExitNoPlugin = 3;  // the vmtrace babeltrace2 plugin was not found
constexpr int kExitSystem = 4;    // the system refused: module absent or not loadable, no permission

// Bad usage: reported on one line, exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The system refused an operation (modules, sessions): exit status 4.
struct SystemError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Where babeltrace-plugin-vmtrace.so is: VMTRACE_PLUGIN_DIR, else the
// build tree's plugin directory, else empty (babeltrace2's system one).
std::string plugin_dir();

// The CTF traces of one machine given on the command line: the directory
// itself or the ones below it that hold a `metadata` file (LTTng writes
// HOST/SESSION/kernel/metadata).  Throws UsageError naming `arg`.
std::vector<std::string> trace_dirs(const std::string& arg);

// One subcommand: `args` excludes the command's own name.
using CommandFunction = int (*)(const std::vector<std::string>& args);

int sync_command(const std::vector<std::string>& args);
int analyze_command(const std::vector<std::string>& args);
int modules_command(const std::vector<std::string>& args);
int record_command(const std::vector<std::string>& args);
int export_command(const std::vector<std::string>& args);
int report_command(const std::vector<std::string>& args);

}  // namespace vmtrace::cli
