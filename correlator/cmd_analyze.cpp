// SPDX-License-Identifier: MIT
// `vmtrace analyze`: the analyses of docs/analysis-output.md on a host
// trace and its guests, synchronised on the way (or already synchronised
// by `vmtrace sync`).
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "cli_common.hpp"
#include "output_dir.hpp"
#include "pipeline.hpp"
#include "sync_marker.hpp"
#include "sync_options.hpp"
#include "top/live_sessions.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {

int analyze_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace analyze HOST_TRACE [GUEST_TRACE...] -o OUTPUT_DIR [options]");
    options.add_options()("help,h", "show this help")("output,o", po::value<std::string>(),
                                                      "directory for analysis.json, the CSV files and summary.txt "
                                                      "(required; created if needed)")(
        "synchronized", "the traces are already on the host's time base (`vmtrace sync`'s output)")(
        "timeline-bins", po::value<std::int64_t>(), "bins of the state timelines in analysis.json (default 1000)")(
        "intervals",
        "also write vcpu_states.csv: every vCPU state interval, one row each (large: ~60 bytes per event)")(
        "snapshots", po::value<std::int64_t>(),
        "also write snapshots.jsonl: one JSON object per MS milliseconds of host time, aligned on multiples of MS "
        "(what "
        "`vmtrace top` shows, for comparing a live view with the recording)")("quiet,q", "no summary, no progress")(
        "live",
        "the arguments are live sessions of lttng-relayd (net://HOST[:PORT]/host/HOSTNAME/SESSION): analyse "
        "them as they record, until they end or Ctrl-C")(
        "wait", "with --live: wait for sessions the relay daemon does not serve yet");
    options.add(sync_filter_options());
    const po::variables_map vm = parse_with_traces(args, options);
    if (vm.count("help") != 0) {
        std::cout << options
                  << "\nPer VM and vCPU: time running guest code, in the hypervisor, preempted and idle; exits by\n"
                     "reason with latency percentiles; migrations and placement; co-scheduling; the log of\n"
                     "port/MMIO I/O, MSR accesses, interrupt injections and hypercalls (docs/analysis-output.md).\n"
                     "`vmtrace report OUTPUT_DIR` turns the result into an HTML page.\n";
        return 0;
    }
    if (vm.count("traces") == 0) {
        throw UsageError("analyze needs a host trace (and the guests' traces)");
    }
    if (vm.count("output") == 0) {
        throw UsageError("analyze needs an output directory (-o DIR)");
    }
    // One source per CTF trace: an argument may hold several machines'
    // traces (`vmtrace sync`'s output directory).
    check_sync_options(vm);
    check_range(vm, "timeline-bins", 2, 100'000);
    if (vm.count("timeline-bins") != 0 && vm["timeline-bins"].as<std::int64_t>() % 2 != 0) {
        throw UsageError(fmt::format("--timeline-bins {}: must be even", vm["timeline-bins"].as<std::int64_t>()));
    }
    if (vm.count("snapshots") != 0 &&
        (vm["snapshots"].as<std::int64_t>() < 1 || vm["snapshots"].as<std::int64_t>() > 3'600'000)) {
        throw UsageError(
            fmt::format("--snapshots {}: must be between 1 and 3600000 ms", vm["snapshots"].as<std::int64_t>()));
    }
    const bool live = vm.count("live") != 0;
    if (vm.count("wait") != 0 && !live) {
        throw UsageError("--wait needs --live");
    }
    if (live && vm.count("synchronized") != 0) {
        throw UsageError("--live and --synchronized exclude each other (live sessions are on their own clocks)");
    }
    std::vector<std::string> traces;
    std::vector<std::string> inputs;  // every path read, for the output checks
    for (const std::string& t : vm["traces"].as<std::vector<std::string>>()) {
        if (live) {
            traces.push_back(checked_session_url(t, vm.count("wait") != 0));
            continue;
        }
        inputs.push_back(t);
        for (std::string& dir : trace_dirs(t)) {
            inputs.push_back(dir);
            traces.push_back(std::move(dir));
        }
    }
    if (vm.count("synchronized") != 0) {
        // Traces on their own clocks would have every guest event dropped
        // as out of the host's range, and a half-written sync output would
        // look complete: read only what `vmtrace sync` finished writing.
        for (const std::string& trace : traces) {
            check_synchronized(trace);
        }
    }
    const fs::path out = fs::absolute(vm["output"].as<std::string>());
    check_output_apart(out, inputs);
    std::error_code ec;
    const auto out_status = fs::symlink_status(out, ec);
    if (fs::exists(out_status) && !fs::is_directory(fs::status(out, ec))) {
        throw UsageError(fmt::format("{}: exists and is not a directory", out.string()));
    }
    fs::create_directories(out, ec);
    if (ec) {
        const std::string text = fmt::format("{}: cannot create the output directory: {}", out.string(), ec.message());
        if (ec.value() == EACCES || ec.value() == EPERM || ec.value() == EROFS) {
            throw SystemError(text);
        }
        throw UsageError(text);
    }
    check_writable_dir(out);
    const bool quiet = vm.count("quiet") != 0;
    const bool synchronize = vm.count("synchronized") == 0 && (traces.size() > 1 || live);
    // The results appear together when the run succeeds; a failed run
    // leaves an earlier run's results as they were, and the two never mix.
    StagedFiles results(out, {"analysis.json", "vms.csv", "vcpu_states.csv", "exits.csv", "nondet.csv", "nondet.jsonl",
                              "migrations.csv", "summary.txt", "sync.json", "snapshots.jsonl"});
    const fs::path stats = results.dir() / "sync.json";

    auto owned = std::make_unique<Pipeline>(plugin_dir());
    Pipeline& pipeline = *owned;
    Params sink;
    sink.set("output-dir", results.dir().string());
    if (live) {
        sink.set("live", true);  // stopped early, it still writes what it read
    }
    if (synchronize) {
        sink.set("sync-stats", stats.string());
    }
    if (vm.count("timeline-bins") != 0) {
        sink.set("timeline-bins", vm["timeline-bins"].as<std::int64_t>());
    }
    if (vm.count("snapshots") != 0) {
        // the sink checks the period's range and names the parameter
        sink.set("snapshot-ms", vm["snapshots"].as<std::int64_t>());
        sink.set("snapshot-path", (results.dir() / "snapshots.jsonl").string());
    }
    sink.set("intervals", vm.count("intervals") != 0);
    sink.set("progress", !quiet && isatty(STDERR_FILENO) != 0);
    sink.set("quiet", true);  // this command reports unsynchronised guests itself
    pipeline.add("sink.vmtrace.analysis", "analysis", sink.value(), out.string());

    const std::string merge = synchronize ? "sync" : "mux";
    if (synchronize) {
        // the sink shows the progress and the command the summary
        Params sync = sync_filter_params(vm, stats.string(), true, false);
        if (live) {
            sync.set("live", true);
        }
        pipeline.add("filter.vmtrace.sync", merge, sync.value());
    } else {
        pipeline.add("filter.utils.muxer", merge, Params().value());
    }
    for (std::size_t i = 0; i < traces.size(); ++i) {
        const std::string name = fmt::format("trace{}", i);
        if (live) {
            pipeline.add("source.ctf.lttng-live", name,
                         Params()
                             .set("inputs", std::vector<std::string>{traces[i]})
                             .set("session-not-found-action", vm.count("wait") != 0 ? "continue" : "fail")
                             .value(),
                         traces[i]);
        } else {
            pipeline.add("source.ctf.fs", name, Params().set("inputs", std::vector<std::string>{traces[i]}).value(),
                         traces[i]);
        }
        pipeline.connect_all(name, merge);
    }
    pipeline.connect_all(merge, "analysis");
    if (live) {
        // Until the sessions end, or the user stops it: the sink, destroyed
        // before the end of its input, still writes what it read.
        catch_stop_signals();
        bool again = false;
        while (!stop_requested() && pipeline.step(again)) {
            if (again) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
        owned.reset();
        if (!fs::exists(results.dir() / "analysis.json")) {
            throw ProcessingError(
                fmt::format("{}: the live analysis wrote no results (see the messages above)", out.string()));
        }
    } else {
        pipeline.run_writing(results.dir(), out.string());
    }

    // A guest left on its own clock was not analysed: the results lack it.
    std::vector<std::string> unsynchronized;
    // (a live analysis stopped in its first second has no statistics yet)
    if (synchronize && (!live || fs::exists(stats))) {
        std::ifstream in(stats);
        const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
        if (json.is_discarded() || !json.contains("machines")) {
            throw std::runtime_error(fmt::format("{}: the synchronisation statistics are unreadable", stats.string()));
        }
        for (const auto& machine : json["machines"]) {
            // Live, traces that are neither host nor guest (a user-space
            // trace of the session) are counted, not analysed.
            if (machine.value("role", "") != "host" && machine.value("mode", "") != "synchronized" &&
                !(live && machine.value("role", "") != "guest")) {
                unsynchronized.push_back(fmt::format(
                    "guest `{}` is not on the host's time base (sync quality {}{}): its events were not analysed",
                    machine.value("name", "?"), machine.value("quality", "?"),
                    machine.value("quality", "") == "absent" ? ", it has no vmsync events" : ""));
            }
        }
    }
    results.commit();

    if (!quiet) {
        std::ifstream summary(out / "summary.txt");
        std::cout << summary.rdbuf();
        std::cout << "\nresults: " << (out / "analysis.json").string() << " and CSV files in " << out.string()
                  << "\nreport:  vmtrace report " << out.string() << "\n";
    }
    for (const std::string& line : unsynchronized) {
        std::cerr << "vmtrace analyze: " << line << "\n";
    }
    return unsynchronized.empty() ? 0 : kExitFailure;
}

}  // namespace vmtrace::cli
