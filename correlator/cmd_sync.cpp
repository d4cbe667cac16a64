// SPDX-License-Identifier: MIT
// `vmtrace sync`: guest traces onto the host's time base.
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include "cli_common.hpp"
#include "pipeline.hpp"
#include "sync_options.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {

int sync_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace sync HOST_TRACE GUEST_TRACE... -o OUTPUT_DIR [options]");
    options.add_options()("help,h", "show this help")("output,o", po::value<std::string>(),
                                                      "directory for the synchronised CTF traces (required)")(
        "stats", po::value<std::string>(), "write the synchronisation statistics (JSON) to this file")(
        "quiet,q", "no summary on stderr");
    options.add(sync_filter_options());
    const po::variables_map vm = parse_with_traces(args, options);
    if (vm.count("help") != 0) {
        std::cout << options << "\nPlaces every guest trace on the host's time base (docs/clock-sync.md).\n"
                  << "The host is the trace with KVM or vmsync host events; each guest needs vmsync events.\n";
        return 0;
    }
    if (vm.count("traces") == 0 || vm["traces"].as<std::vector<std::string>>().size() < 2) {
        throw UsageError("sync needs a host trace and at least one guest trace");
    }
    if (vm.count("output") == 0) {
        throw UsageError("sync needs an output directory (-o DIR)");
    }
    std::vector<std::vector<std::string>> traces;  // per machine
    for (const std::string& t : vm["traces"].as<std::vector<std::string>>()) {
        traces.push_back(trace_dirs(t));
    }

    Pipeline pipeline(plugin_dir());
    const bool quiet = vm.count("quiet") != 0;
    const std::string stats = vm.count("stats") != 0 ? fs::absolute(vm["stats"].as<std::string>()).string() : "";
    pipeline.add("filter.vmtrace.sync", "sync", sync_filter_params(vm, stats, quiet, !quiet).value());
    for (std::size_t i = 0; i < traces.size(); ++i) {
        const std::string name = fmt::format("trace{}", i);
        pipeline.add("source.ctf.fs", name, Params().set("inputs", traces[i]).value());
        pipeline.connect_all(name, "sync");
    }
    pipeline.add("filter.utils.muxer", "mux", Params().value());
    pipeline.add("sink.ctf.fs", "out", Params().set("path", vm["output"].as<std::string>()).set("quiet", true).value());
    pipeline.connect_all("sync", "mux");
    pipeline.connect_all("mux", "out");
    pipeline.run();
    return 0;
}

}  // namespace vmtrace::cli
