// SPDX-License-Identifier: MIT
#include "cli_common.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "trace_check.hpp"

namespace fs = std::filesystem;

namespace vmtrace::cli {

std::string plugin_dir() {
    if (const char* env = std::getenv("VMTRACE_PLUGIN_DIR")) {
        return env;
    }
#ifdef VMTRACE_BUILD_PLUGIN_DIR
    if (fs::exists(fs::path(VMTRACE_BUILD_PLUGIN_DIR) / "babeltrace-plugin-vmtrace.so")) {
        return VMTRACE_BUILD_PLUGIN_DIR;
    }
#endif
    return {};
}

std::vector<std::string> trace_dirs(const std::string& arg) {
    std::error_code ec;
    if (!fs::is_directory(arg, ec)) {
        throw UsageError(fmt::format("{}: not a directory", arg));
    }
    std::vector<std::string> found;
    if (fs::exists(fs::path(arg) / "metadata", ec)) {
        found.push_back(fs::absolute(arg).string());
        check_trace_dir(found.back());
        return found;
    }
    for (auto it = fs::recursive_directory_iterator(arg, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (it->path().filename() == "metadata") {
            found.push_back(fs::absolute(it->path().parent_path()).string());
        }
    }
    if (ec) {
        const std::string text = fmt::format("{}: cannot read: {}", arg, ec.message());
        if (ec.value() == EACCES || ec.value() == EPERM) {
            throw SystemError(text);
        }
        throw UsageError(text);
    }
    if (found.empty()) {
        throw UsageError(fmt::format("{}: no CTF trace in it (no `metadata` file)", arg));
    }
    for (const std::string& dir : found) {
        check_trace_dir(dir);
    }
    return found;
}

namespace {

std::atomic<bool> g_stop_requested{false};

extern "C" void on_stop_signal(int) {
    g_stop_requested = true;
}

}  // namespace

void catch_stop_signals() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

std::atomic<bool>& stop_requested() {
    return g_stop_requested;
}

}  // namespace vmtrace::cli
