// SPDX-License-Identifier: MIT
// `vmtrace isolate`: a machine's memory trace split per VM.
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "output_dir.hpp"
#include "pipeline.hpp"
#include "sync_options.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

// How an output of `vmtrace isolate` identifies itself (--force replaces
// only such a directory).
constexpr const char* kIsolateMarker = "isolation.json";

// The accuracy line of summary.txt, when the run was checked against a
// ground truth: what a user of the simulator wants to see at once.
void print_accuracy(const fs::path& report) {
    std::ifstream in(report);
    const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
    if (json.is_discarded() || !json.contains("accuracy")) {
        return;
    }
    const auto& a = json["accuracy"];
    std::cerr << fmt::format(
        "vmtrace isolate: against the ground truth: {} of {} accesses exact ({:.4f} of those decided), {} mismatched, "
        "{} ambiguous, {} before-map; time error max {} ns within the bound {} ns: {}\n",
        a["exact"].get<std::uint64_t>(), a["compared"].get<std::uint64_t>(), a["exact_ratio"].get<double>(),
        a["mismatched"].get<std::uint64_t>(), a["ambiguous"].get<std::uint64_t>(), a["before_map"].get<std::uint64_t>(),
        a["time_error_ns"]["max"].get<std::int64_t>(), a["time_error_ns"]["bound"].get<std::int64_t>(),
        a["time_error_ns"]["within_bound"].get<bool>() ? "yes" : "no");
}

// The sync filter writes, in each synchronised trace, one bound known
// before its events (from the first handshakes, extrapolated to the trace's
// start); the largest error it really applied to a trace's events is known
// only at the end: its sync-stats.json after a first pass. "NAME=NS" for
// every guest and memory tracer whose events all had a bound.
std::vector<std::string> applied_bounds(const fs::path& stats_path) {
    std::ifstream in(stats_path);
    const nlohmann::json stats = nlohmann::json::parse(in, nullptr, false);
    if (stats.is_discarded() || !stats.contains("machines")) {
        throw std::runtime_error(fmt::format("{}: no sync statistics after the first pass", stats_path.string()));
    }
    std::vector<std::string> bounds;
    for (const auto& m : stats["machines"]) {
        const std::string role = m.value("role", "");
        // Over the events the join reads: not the handshakes, of which the
        // last ones (a tracer's marks after the host stopped recording) are
        // extrapolated far.
        const std::int64_t bound = m.value("max_applied_bound_data_ns", std::int64_t{-1});
        if ((role != "guest" && role != "memory tracer") || m.value("unbounded_events", 1) != 0 || bound < 0 ||
            m.value("mode", "") != "synchronized") {
            continue;
        }
        bounds.push_back(fmt::format("{}={}", m["name"].get<std::string>(), bound));
    }
    return bounds;
}

}  // namespace

int isolate_command(const std::vector<std::string>& args) {
    po::options_description options(
        "vmtrace isolate HOST_TRACE [GUEST_TRACE...] --memory MEMORY_TRACE -o DIR [options]");
    options.add_options()("help,h", "show this help")(
        "memory,m", po::value<std::vector<std::string>>()->multitoken(),
        "the memory tracer's trace (required; several directories make one trace)")(
        "output,o", po::value<std::string>(),
        "directory for vm-NAME/, host/, isolation.json and summary.txt (required)")(
        "truth", po::value<std::string>(), "check every access against this memory ground truth (the simulator's)")(
        "default-bound-ns", po::value<std::int64_t>(),
        "sync bound for synchronised traces that do not carry one (vmtrace_sync_bound_ns)")(
        "bin-ms", po::value<std::int64_t>()->default_value(100), "width of the working-set-over-time bins")(
        "tight-bounds",
        "synchronise once first, then isolate with the largest error the synchronisation applied to each trace "
        "instead of the bound it could announce (fewer ambiguous accesses; reads the traces twice)")(
        "force", "replace DIR whole when it holds an earlier `vmtrace isolate` output")("quiet,q",
                                                                                        "no summary on stderr");
    options.add(sync_filter_options());
    const po::variables_map vm = parse_with_traces(args, options);
    if (vm.count("help") != 0) {
        std::cout << options
                  << "\nJoins the memory tracer's accesses (host-physical addresses) with the host's KVM mappings\n"
                     "and the guests' page-table events, and writes one trace per VM (docs/isolation.md).\n";
        return 0;
    }
    if (vm.count("traces") == 0) {
        throw UsageError("isolate needs the host trace (and the guest traces, for processes and virtual addresses)");
    }
    if (vm.count("memory") == 0) {
        throw UsageError("isolate needs the memory tracer's trace (--memory DIR)");
    }
    if (vm.count("output") == 0) {
        throw UsageError("isolate needs an output directory (-o DIR)");
    }
    if (vm.count("default-bound-ns") != 0 && vm["default-bound-ns"].as<std::int64_t>() < 0) {
        throw UsageError("--default-bound-ns must not be negative");
    }
    const std::int64_t bin_ms = vm["bin-ms"].as<std::int64_t>();
    if (bin_ms < 1 || bin_ms > 86'400'000) {
        throw UsageError("--bin-ms must be between 1 and 86400000");
    }
    check_sync_options(vm);
    std::vector<std::vector<std::string>> traces;  // per machine
    std::vector<std::string> inputs;
    for (const std::string& t : vm["traces"].as<std::vector<std::string>>()) {
        traces.push_back(trace_dirs(t));
        inputs.push_back(t);
        inputs.insert(inputs.end(), traces.back().begin(), traces.back().end());
    }
    std::vector<std::string> memory;
    for (const std::string& t : vm["memory"].as<std::vector<std::string>>()) {
        const auto dirs = trace_dirs(t);
        memory.insert(memory.end(), dirs.begin(), dirs.end());
        inputs.push_back(t);
        inputs.insert(inputs.end(), dirs.begin(), dirs.end());
    }
    std::string truth;
    if (vm.count("truth") != 0) {
        truth = fs::absolute(vm["truth"].as<std::string>()).string();
        if (!fs::is_regular_file(truth)) {
            throw UsageError(fmt::format("--truth `{}` is not a file", vm["truth"].as<std::string>()));
        }
    }
    const fs::path out = vm["output"].as<std::string>();
    check_output_apart(out, inputs);
    StagedOutput staged(out, vm.count("force") != 0, kIsolateMarker);
    const bool quiet = vm.count("quiet") != 0;
    // Both passes read the same inputs through the same synchronisation.
    auto add_inputs = [&](Pipeline& pipeline, const std::string& stats) {
        pipeline.add("filter.vmtrace.sync", "sync", sync_filter_params(vm, stats, true, false).value());
        for (std::size_t i = 0; i < traces.size(); ++i) {
            const std::string name = fmt::format("trace{}", i);
            pipeline.add("source.ctf.fs", name, Params().set("inputs", traces[i]).value(),
                         fmt::format("{}", fmt::join(traces[i], ", ")));
            pipeline.connect_all(name, "sync");
        }
        pipeline.add("source.ctf.fs", "memory", Params().set("inputs", memory).value(),
                     fmt::format("{}", fmt::join(memory, ", ")));
        pipeline.connect_all("memory", "sync");
    };
    std::vector<std::string> sync_bounds;
    if (vm.count("tight-bounds") != 0) {
        const fs::path first = staged.dir() / "sync-stats.first-pass.json";
        {
            Pipeline pipeline(plugin_dir());
            add_inputs(pipeline, first.string());
            pipeline.add("sink.utils.dummy", "dummy", Params().value(), "the first pass");
            pipeline.connect_all("sync", "dummy");
            pipeline.run();
        }
        sync_bounds = applied_bounds(first);
        fs::remove(first);
        if (!quiet) {
            std::cerr << fmt::format("vmtrace isolate: bounds applied by the synchronisation: {}\n",
                                     sync_bounds.empty() ? "none" : fmt::format("{}", fmt::join(sync_bounds, ", ")));
        }
    }
    {
        Pipeline pipeline(plugin_dir());
        add_inputs(pipeline, (staged.dir() / "sync-stats.json").string());
        Params isolate;
        if (!sync_bounds.empty()) {
            isolate.set("sync-bounds", sync_bounds);
        }
        isolate.set("report-dir", staged.dir().string()).set("bin-ms", bin_ms).set("quiet", quiet);
        isolate.set("progress", !quiet && isatty(2) != 0);
        if (!truth.empty()) {
            isolate.set("memory-truth", truth);
        }
        if (vm.count("default-bound-ns") != 0) {
            isolate.set("default-bound-ns", vm["default-bound-ns"].as<std::int64_t>());
        }
        pipeline.add("filter.vmtrace.isolate", "isolate", isolate.value(), "the isolation of the memory trace");
        pipeline.add("sink.ctf.fs", "out", Params().set("path", staged.dir().string()).set("quiet", true).value(),
                     staged.out().string());
        pipeline.connect_all("sync", "isolate");
        pipeline.connect_all("isolate", "out");
        pipeline.run_writing(staged.dir(), staged.out().string());
    }  // sink.ctf.fs writes each trace's metadata when the graph is destroyed
    if (!quiet) {
        std::ifstream summary(staged.dir() / "summary.txt");
        std::cerr << summary.rdbuf();
        print_accuracy(staged.dir() / "isolation.json");
    }
    staged.commit();
    return 0;
}

}  // namespace vmtrace::cli
