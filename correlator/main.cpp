// SPDX-License-Identifier: MIT
// The vmtrace command.  Subcommands each parse their own options; the
// pipelines run in-process through the libbabeltrace2 graph API.
//
// Exit status: 0 success; 1 the processing failed or its output cannot be
// trusted (the message says why); 2 bad usage (unknown subcommand or
// option, missing argument, unreadable trace directory); 3 the vmtrace
// babeltrace2 plugin cannot be found.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "pipeline.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoPlugin = 3;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string plugin_dir() {
    if (const char* env = std::getenv("VMTRACE_PLUGIN_DIR")) {
        return env;
    }
#ifdef VMTRACE_BUILD_PLUGIN_DIR
    if (fs::exists(fs::path(VMTRACE_BUILD_PLUGIN_DIR) / "babeltrace-plugin-vmtrace.so")) {
        return VMTRACE_BUILD_PLUGIN_DIR;
    }
#endif
    return {};  // the system plugin directory
}

// The CTF traces of one machine given on the command line: the directory
// itself or the ones below it that hold a `metadata` file (LTTng writes
// HOST/SESSION/kernel/metadata).
std::vector<std::string> trace_dirs(const std::string& arg) {
    std::error_code ec;
    if (!fs::is_directory(arg, ec)) {
        throw UsageError(fmt::format("{}: not a directory", arg));
    }
    std::vector<std::string> found;
    if (fs::exists(fs::path(arg) / "metadata", ec)) {
        found.push_back(fs::absolute(arg).string());
        return found;
    }
    for (auto it = fs::recursive_directory_iterator(arg, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (it->path().filename() == "metadata") {
            found.push_back(fs::absolute(it->path().parent_path()).string());
        }
    }
    if (ec) {
        throw UsageError(fmt::format("{}: cannot read: {}", arg, ec.message()));
    }
    if (found.empty()) {
        throw UsageError(fmt::format("{}: no CTF trace in it (no `metadata` file)", arg));
    }
    return found;
}

int sync_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace sync HOST_TRACE GUEST_TRACE... -o OUTPUT_DIR [options]");
    options.add_options()("help,h", "show this help")("output,o", po::value<std::string>(),
                                                      "directory for the synchronised CTF traces (required)")(
        "stats", po::value<std::string>(), "write the synchronisation statistics (JSON) to this file")(
        "window-ms", po::value<std::int64_t>(), "look-ahead while emitting (default 5)")(
        "prefetch-ms", po::value<std::int64_t>(), "handshakes read ahead before emitting (default 2000)")(
        "host", po::value<std::string>(), "hostname of the host trace, when roles are ambiguous")(
        "lenient", "repeated or out-of-order cnt values are warnings, not errors")("quiet,q", "no summary on stderr");
    po::options_description hidden;
    hidden.add_options()("traces", po::value<std::vector<std::string>>(), "");
    po::options_description all;
    all.add(options).add(hidden);
    po::positional_options_description positional;
    positional.add("traces", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
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
    Params sync;
    if (vm.count("stats") != 0) {
        sync.set("stats", fs::absolute(vm["stats"].as<std::string>()).string());
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
    sync.set("quiet", vm.count("quiet") != 0);
    pipeline.add("filter.vmtrace.sync", "sync", sync.value());
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

void usage(std::ostream& out) {
    out << "usage: vmtrace COMMAND [options]\n\n"
           "commands:\n"
           "  sync HOST_TRACE GUEST_TRACE... -o DIR   place guest traces on the host's time base\n\n"
           "`vmtrace COMMAND --help` describes a command; docs/cli.md describes them all.\n"
           "exit status: 0 success, 1 processing failed or untrusted output, 2 bad usage,\n"
           "3 the vmtrace babeltrace2 plugin was not found\n";
}

}  // namespace
}  // namespace vmtrace::cli

int main(int argc, char** argv) {
    using namespace vmtrace::cli;
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        usage(args.empty() ? std::cerr : std::cout);
        return args.empty() ? kExitUsage : 0;
    }
    try {
        const std::vector<std::string> rest(args.begin() + 1, args.end());
        if (args[0] == "sync") {
            return sync_command(rest);
        }
        throw UsageError(fmt::format("unknown command `{}`", args[0]));
    } catch (const UsageError& e) {
        std::cerr << "vmtrace: " << e.what() << "\n";
        return kExitUsage;
    } catch (const po::error& e) {
        std::cerr << "vmtrace " << args[0] << ": " << e.what() << "\n";
        return kExitUsage;
    } catch (const Pipeline::Failure& e) {
        const bool no_plugin = std::string(e.what()).find("cannot find the babeltrace2 plugin") == 0;
        std::cerr << "vmtrace " << args[0] << ": " << e.what();
        // The deepest cause says what went wrong; the others where.
        if (!e.causes().empty()) {
            std::cerr << ": " << e.causes().front();
        }
        std::cerr << "\n";
        if (std::getenv("VMTRACE_VERBOSE") != nullptr) {
            for (const std::string& cause : e.causes()) {
                std::cerr << "  caused by: " << cause << "\n";
            }
        }
        return no_plugin ? kExitNoPlugin : kExitFailure;
    } catch (const std::exception& e) {
        std::cerr << "vmtrace " << args[0] << ": " << e.what() << "\n";
        return kExitFailure;
    }
}
