// SPDX-License-Identifier: MIT
#include "sync_options.hpp"

#include <unistd.h>

#include <cstdint>

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
