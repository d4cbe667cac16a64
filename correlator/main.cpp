// SPDX-License-Identifier: MIT
// The vmtrace command.  Subcommands each parse their own options; the
// pipelines run in-process through the libbabeltrace2 graph API.  Exit
// status: see cli_common.hpp and docs/cli.md.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "pipeline.hpp"

namespace po = boost::program_options;

namespace vmtrace::cli {
namespace {

struct Command {
    const char* name;
    const char* synopsis;
    CommandFunction run;
};

constexpr Command kCommands[] = {
    {"sync", "sync HOST_TRACE GUEST_TRACE... -o DIR   place guest traces on the host's time base", sync_command},
    {"isolate", "isolate HOST_TRACE GUEST_TRACE... --memory MEMORY_TRACE -o DIR   memory accesses per VM",
     isolate_command},
    {"analyze", "analyze HOST_TRACE [GUEST_TRACE...] -o DIR   vCPU states, exits, migrations, I/O log",
     analyze_command},
    {"modules", "modules load|unload|status [--host|--guest]   vmtrace's kernel probe modules", modules_command},
    {"record", "record host|guest|memory [--start] [--dry-run]   an LTTng session for that side", record_command},
    {"export", "export --trace-compass HOST GUEST... -o DIR   per-machine traces for Trace Compass", export_command},
    {"report", "report ANALYSIS_DIR [-o FILE.html]   the analyses as one HTML page", report_command},
    {"top", "top [SESSION_URL... | --relayd net://HOST]   live per-VM and per-vCPU view (lttng-relayd)", top_command},
};

void usage(std::ostream& out) {
    out << "usage: vmtrace COMMAND [options]\n\ncommands:\n";
    for (const Command& command : kCommands) {
        out << "  " << command.synopsis << "\n";
    }
    out << "\n`vmtrace COMMAND --help` describes a command; docs/cli.md describes them all.\n"
           "exit status: 0 success, 1 processing failed or untrusted output, 2 bad usage,\n"
           "3 the vmtrace babeltrace2 plugin was not found, 4 the system refused (module, permission)\n";
}

int report_pipeline_failure(const std::string& command, const Pipeline::Failure& e) {
    std::cerr << "vmtrace " << command << ": " << e.what();
    // The deepest cause says what went wrong; the others where.  It starts
    // with the trace or output it concerns, which the first part may name
    // already ("cannot read DIR: DIR: ...").
    if (!e.causes().empty()) {
        std::string cause = e.causes().front();
        const std::string what = e.what();
        const auto colon = cause.find(": ");
        if (colon != std::string::npos && colon > 0 && what.size() >= colon &&
            what.compare(what.size() - colon, colon, cause, 0, colon) == 0) {
            cause.erase(0, colon + 2);
        }
        std::cerr << ": " << cause;
    }
    std::cerr << "\n";
    if (std::getenv("VMTRACE_VERBOSE") != nullptr) {
        for (const std::string& cause : e.causes()) {
            std::cerr << "  caused by: " << cause << "\n";
        }
    }
    return e.status();
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
        for (const Command& command : kCommands) {
            if (args[0] == command.name) {
                return command.run(rest);
            }
        }
        throw UsageError(fmt::format("unknown command `{}` (see `vmtrace --help`)", args[0]));
    } catch (const Pipeline::Failure& e) {
        return report_pipeline_failure(args[0], e);
    } catch (const UsageError& e) {
        std::cerr << "vmtrace: " << e.what() << "\n";
        return e.status();
    } catch (const CommandError& e) {
        std::cerr << "vmtrace " << args[0] << ": " << e.what() << "\n";
        return e.status();
    } catch (const po::error& e) {
        std::cerr << "vmtrace " << args[0] << ": " << e.what() << "\n";
        return kExitUsage;
    } catch (const std::exception& e) {
        std::cerr << "vmtrace " << args[0] << ": " << e.what() << "\n";
        return kExitFailure;
    }
}
