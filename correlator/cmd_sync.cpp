// SPDX-License-Identifier: MIT
// `vmtrace sync`: guest traces onto the host's time base.
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include "cli_common.hpp"
#include "fast_sync.hpp"
#include "output_dir.hpp"
#include "pipeline.hpp"
#include "sync_marker.hpp"
#include "sync_options.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {

int sync_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace sync HOST_TRACE GUEST_TRACE... -o OUTPUT_DIR [options]");
    options.add_options()("help,h", "show this help")("output,o", po::value<std::string>(),
                                                      "directory for the synchronised CTF traces (required)")(
        "stats", po::value<std::string>(), "write the synchronisation statistics (JSON) to this file")(
        "force", "replace OUTPUT_DIR whole when it holds an earlier `vmtrace sync` output")("quiet,q",
                                                                                            "no summary on stderr");
    options.add(sync_path_options());
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
    check_sync_options(vm);
    std::vector<std::vector<std::string>> traces;  // per machine
    std::vector<std::string> inputs;               // every path read, for the output checks
    for (const std::string& t : vm["traces"].as<std::vector<std::string>>()) {
        traces.push_back(trace_dirs(t));
        inputs.push_back(t);
        inputs.insert(inputs.end(), traces.back().begin(), traces.back().end());
    }
    const fs::path out = vm["output"].as<std::string>();
    check_output_apart(out, inputs);
    const std::string stats = vm.count("stats") != 0 ? fs::absolute(vm["stats"].as<std::string>()).string() : "";
    if (!stats.empty()) {
        check_output_apart(stats, inputs);
        check_output_file(stats);
    }
    // Written whole or not at all: a failed run leaves no truncated traces
    // that would pass for synchronised ones.
    StagedOutput staged(out, vm.count("force") != 0, kSyncMarker);
    const bool quiet = vm.count("quiet") != 0;
    const FastSyncResult fast =
        fast_sync("sync", FastSyncRequest(vm, traces, staged.dir(), staged.out().string(), stats));
    if (fast.served) {
        write_sync_marker(staged.dir());
        staged.commit();
        return 0;
    }

    {
        Pipeline pipeline(plugin_dir());
        pipeline.add("filter.vmtrace.sync", "sync", sync_filter_params(vm, stats, quiet, !quiet).value());
        for (std::size_t i = 0; i < traces.size(); ++i) {
            const std::string name = fmt::format("trace{}", i);
            pipeline.add("source.ctf.fs", name, Params().set("inputs", traces[i]).value(),
                         fmt::format("{}", fmt::join(traces[i], ", ")));
            pipeline.connect_all(name, "sync");
        }
        pipeline.add("filter.utils.muxer", "mux", Params().value());
        pipeline.add("sink.ctf.fs", "out", Params().set("path", staged.dir().string()).set("quiet", true).value(),
                     staged.out().string());
        pipeline.connect_all("sync", "mux");
        pipeline.connect_all("mux", "out");
        pipeline.run_writing(staged.dir(), staged.out().string());
    }  // sink.ctf.fs writes each trace's metadata when the graph is destroyed
    if (!stats.empty()) {
        note_per_event_path(stats, fast.refused);
    }
    write_sync_marker(staged.dir());
    staged.commit();
    return 0;
}

}  // namespace vmtrace::cli
