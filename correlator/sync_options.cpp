// SPDX-License-Identifier: MIT
#include "sync_options.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>

#include "cli_common.hpp"

namespace po = boost::program_options;

namespace vmtrace::cli {

po::options_description sync_filter_options() {
    po::options_description options("synchronisation (filter.vmtrace.sync)");
    options.add_options()("window-ms", po::value<std::int64_t>(), "look-ahead while emitting (default 5)")(
        "prefetch-ms", po::value<std::int64_t>(), "handshakes read ahead before emitting (default 2000)")(
        "host", po::value<std::string>(), "hostname of the host trace, when roles are ambiguous")(
        "lenient", "repeated or out-of-order cnt values are warnings, not errors");
    return options;
}

po::variables_map parse_with_traces(const std::vector<std::string>& args, const po::options_description& options) {
    po::options_description hidden;
    hidden.add_options()("traces", po::value<std::vector<std::string>>(), "");
    po::options_description all;
    all.add(options).add(hidden);
    po::positional_options_description positional;
    positional.add("traces", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
    return vm;
}

void check_range(const po::variables_map& vm, const char* name, std::int64_t min, std::int64_t max, const char* why) {
    if (vm.count(name) == 0) {
        return;
    }
    const std::int64_t value = vm[name].as<std::int64_t>();
    if (value < min || value > max) {
        throw UsageError(fmt::format("--{} {}: must be between {} and {}{}", name, value, min, max,
                                     why != nullptr ? fmt::format(" ({})", why) : std::string()));
    }
}

void check_sync_options(const po::variables_map& vm) {
    constexpr std::int64_t kHourMs = 3'600'000;
    check_range(vm, "window-ms", 0, kHourMs);
    check_range(vm, "prefetch-ms", 1, kHourMs, "the handshakes read ahead of each guest before emitting");
    if (vm.count("host") != 0 && vm["host"].as<std::string>().empty()) {
        throw UsageError("--host: an empty hostname");
    }
}

po::options_description sync_path_options() {
    po::options_description options("synchronisation path");
    options.add_options()("rewrite-events",
                          "re-create every guest event on the host's time base (the per-event path) instead of "
                          "rewriting the guest's clock in its metadata")(
        "verify",
        "the per-event path, with every guest event checked against the host's guest-mode intervals (the same as "
        "--rewrite-events)");
    return options;
}

Params sync_filter_params(const po::variables_map& vm, const std::string& stats, bool quiet, bool progress) {
    Params sync;
    if (!stats.empty()) {
        sync.set("stats", stats);
    }
    if (vm.count("window-ms") != 0) {
        sync.set("window-ms", vm["window-ms"].as<std::int64_t>());
    }
    if (vm.count("prefetch-ms") != 0) {
        sync.set("prefetch-ms", vm["prefetch-ms"].as<std::int64_t>());
    }
    if (vm.count("host") != 0) {
        sync.set("host", vm["host"].as<std::string>());
    }
    sync.set("strict", vm.count("lenient") == 0);
    sync.set("quiet", quiet);
    sync.set("progress", progress && isatty(STDERR_FILENO) != 0);
    return sync;
}

}  // namespace vmtrace::cli
