// SPDX-License-Identifier: MIT
// `vmtrace export --trace-compass`: one CTF trace per machine on the host's
// time base, laid out and described so that Trace Compass opens them as a
// Virtual Machine experiment (docs/trace-compass.md).
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli_common.hpp"
#include "fast_sync.hpp"
#include "lib/ctf_clock/metadata_text.hpp"
#include "output_dir.hpp"
#include "pipeline.hpp"
#include "sync_options.hpp"
#include "vcpu_thread_pids.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

constexpr const char* kSinkName = ".sink";  // sink.ctf.fs's directory inside the staged output
constexpr const char* kStatsName = ".vmtrace-export-stats.json";
constexpr const char* kReadmeName = "experiment.txt";

// What sink.ctf.fs wrote for one machine, read from its (plain text) metadata.
struct ExportedTrace {
    fs::path dir;                            // where sink.ctf.fs wrote it
    std::string metadata;                    // its TSDL text
    std::map<std::string, std::string> env;  // values unquoted
    std::vector<std::string> clock_uuids;    // one per clock block, "" if none
    std::string role;                        // "host" or "guest"
    std::string name;                        // output directory name
};

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error(fmt::format("{}: cannot read", path.string()));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) {
        throw std::runtime_error(fmt::format("{}: cannot write", path.string()));
    }
}

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t");
    const auto last = s.find_last_not_of(" \t;");
    return first == std::string::npos || last < first ? std::string() : s.substr(first, last - first + 1);
}

// A directory name from a hostname: letters, digits, '.', '_' and '-'.
std::string safe_name(const std::string& hostname) {
    std::string out;
    for (const char c : hostname) {
        out += std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' ? c : '_';
    }
    if (out.empty() || out == "." || out == "..") {
        out = "unnamed";
    }
    return out;
}

// A UUID (version 4 layout) derived from `seed`: stable across runs.
std::string derived_uuid(const std::string& seed) {
    const std::uint64_t a = std::hash<std::string>{}(seed + "#a");
    const std::uint64_t b = std::hash<std::string>{}(seed + "#b");
    return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32U, (a >> 16U) & 0xffffU, a & 0xfffU,
                       0x8000U | ((b >> 48U) & 0x3fffU), b & 0xffffffffffffULL);
}

// The metadata as Trace Compass reads it: the packet context's CPU field
// is named `cpu_id` as LTTng writes it (sink.ctf.fs protects it as
// `_cpu_id`; Trace Compass looks the packet's CPU up by its exact name),
// and each clock gets `uuid` when one is given.
std::string rewrite_metadata(const std::string& metadata, const std::optional<std::string>& clock_uuid) {
    std::istringstream lines(metadata);
    std::string out;
    std::string line;
    bool in_packet_context = false;
    bool in_clock = false;
    while (std::getline(lines, line)) {
        if (line.find("packet.context := struct {") != std::string::npos) {
            in_packet_context = true;
        } else if (in_packet_context && trim(line).rfind("} align(", 0) == 0) {
            in_packet_context = false;
        } else if (in_packet_context) {
            const auto at = line.rfind(" _cpu_id;");
            if (at != std::string::npos && at + 9 == line.size()) {
                line.replace(at, 9, " cpu_id;");
            }
        }
        if (trim(line) == "clock {") {
            in_clock = true;
        } else if (in_clock && line.rfind("};", 0) == 0) {
            in_clock = false;
            if (clock_uuid) {
                out += fmt::format("\tuuid = \"{}\";\n", *clock_uuid);
            }
        } else if (in_clock && clock_uuid && trim(line).rfind("uuid =", 0) == 0) {
            continue;  // replaced at the end of the block
        }
        out += line;
        out += '\n';
    }
    return out;
}

// The host's vCPU threads that have no process id in its trace, one line
// per host trace; none when every vCPU thread has one.  Trace Compass's
// Virtual Machine analysis (Incubator) ties the thread that records a
// vmsync_gh_host to that vm_uid's guest, and the thread's process with it;
// a vCPU thread whose process id the trace never gives counts as a process
// of its own, so it is not grouped with its VM through its QEMU process,
// only by the vmsync_gh_host events it records itself (docs/trace-compass.md).
std::vector<std::string> threads_without_pid(const VcpuThreadPids& watch, const std::vector<ExportedTrace>& traces) {
    std::map<std::uint64_t, std::string> guest_by_uid;
    for (const ExportedTrace& t : traces) {
        const auto uid = t.env.find("vmtrace_vm_uid");
        char* end = nullptr;
        const std::uint64_t value = uid != t.env.end() ? std::strtoull(uid->second.c_str(), &end, 16) : 0;
        if (t.role == "guest" && end != nullptr && end != uid->second.c_str() && *end == '\0') {
            guest_by_uid[value] = t.name;
        }
    }
    std::vector<std::string> lines;
    for (const VcpuThreadPids::Host& host : watch.hosts()) {
        std::string listing;
        std::size_t count = 0;
        for (const VcpuThreadPids::Thread& thread : host.vcpu_threads) {
            if (thread.has_pid) {
                continue;
            }
            std::string vms;
            for (const std::uint64_t uid : thread.vm_uids) {
                const auto guest = guest_by_uid.find(uid);
                vms += (vms.empty() ? "" : ", ") +
                       (guest != guest_by_uid.end() ? guest->second : fmt::format("vm_uid {:#x}", uid));
            }
            listing += fmt::format("{}{} ({})", listing.empty() ? "" : ", ", thread.tid,
                                   vms.empty() ? "no vmsync_gh_host: no VM at all" : vms);
            ++count;
        }
        if (count != 0) {
            lines.push_back(fmt::format("host `{}`: {} of its {} vCPU threads {} no process id in the trace: {}",
                                        host.name, count, host.vcpu_threads.size(), count == 1 ? "has" : "have",
                                        listing));
        }
    }
    return lines;
}

// `text` in lines of at most `width` columns, broken at spaces.
std::string wrapped(const std::string& text, std::size_t width) {
    std::istringstream words(text);
    std::string out;
    std::string line;
    std::string word;
    while (words >> word) {
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            out += line + '\n';
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    return out + line + '\n';
}

constexpr const char* kWithoutPidConsequence =
    "no lttng_statedump_process_state or sched_process_fork event names them, so Trace Compass's Virtual Machine "
    "analysis cannot group them with their VM's process, only by the vmsync_gh_host events each records itself";

std::string readme(const std::vector<ExportedTrace>& traces, const std::string& host,
                   const std::vector<std::string>& without_pid) {
    std::string text = fmt::format(
        "vmtrace export --trace-compass\n"
        "==============================\n\n"
        "One LTTng kernel trace (CTF 1.8) per machine, every guest on the time base of\n"
        "host `{}`:\n\n",
        host);
    for (const ExportedTrace& t : traces) {
        text += fmt::format("  {:<24} {:<6} hostname {}, clock UUID {}{}\n", t.name + "/", t.role, t.env.at("hostname"),
                            t.clock_uuids.empty() ? std::string("-") : t.clock_uuids.front(),
                            t.env.count("vmtrace_vm_uid") != 0 ? ", vm_uid " + t.env.at("vmtrace_vm_uid") : "");
    }
    text +=
        "\nOpen them in Trace Compass as a Virtual Machine experiment.  The Virtual\n"
        "Machine analysis is not in stock Trace Compass (it moved to the Trace Compass\n"
        "Incubator in 2019): install it once with Tools > Add-ons..., category\n"
        "\"Virtualization\", \"Virtual Machine And Container Analysis (Incubator)\",\n"
        "then restart Trace Compass.\n\n"
        "1. File > Open Trace..., or in the Project Explorer: Traces > Import...;\n"
        "   choose this directory as the root directory, select every directory above\n"
        "   (host and guests), trace type \"Common Trace Format : Linux Kernel Trace\"\n"
        "   (or let Trace Compass auto-detect it).\n"
        "2. Select all the imported traces, right-click > Open As Experiment... >\n"
        "   Virtual Machine Experiment (incubator).\n"
        "3. Do not run \"Synchronize Traces\" on it: vmtrace already placed every guest\n"
        "   on the host's time base; the clocks' offsets already say so.\n"
        "4. Under the experiment's Views: \"Virtual CPU (incubator)\" (analysis \"Virtual\n"
        "   Resources Analysis (incubator)\": each guest's vCPUs, running guest code, in\n"
        "   the hypervisor or preempted by the host, and the guest threads on them) and\n"
        "   \"Virtual Resources (incubator)\" (analysis \"Fused Virtual Machine Analysis\n"
        "   (incubator)\": host and guest CPUs together); each trace keeps its own\n"
        "   kernel views (Control Flow, Resources, CPU Usage).\n\n"
        "Trace Compass tells the machines apart by their clock UUIDs (all distinct\n"
        "here).  A trace with kvm_x86_entry/kvm_x86_exit or vmsync_gh_host events is a\n"
        "host; a trace with vmsync_*_guest events is the guest of their vm_uid.  The\n"
        "host thread that records vmsync_gh_host with that vm_uid belongs to that guest,\n"
        "and so does its process (its process id, from lttng_statedump_process_state or\n"
        "sched_process_fork); kvm_x86_entry's vcpu_id then says which vCPU each thread\n"
        "of that process runs.  Details: docs/trace-compass.md in vmtrace.\n";
    for (const std::string& line : without_pid) {
        text += '\n' + wrapped(fmt::format("Warning: {}; {}.", line, kWithoutPidConsequence), 80);
    }
    return text;
}

}  // namespace

int export_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace export --trace-compass HOST_TRACE GUEST_TRACE... -o DIR [options]");
    options.add_options()("help,h", "show this help")("trace-compass",
                                                      "per-machine LTTng kernel traces for Trace Compass (required)")(
        "output,o", po::value<std::string>(), "directory for the exported traces (required)")(
        "force", "replace DIR whole when it holds an earlier export (its experiment.txt)")(
        "stats", po::value<std::string>(), "write the synchronisation statistics (JSON) to this file")(
        "quiet,q", "no summary on stderr");
    options.add(sync_path_options());
    options.add(sync_filter_options());
    const po::variables_map vm = parse_with_traces(args, options);
    if (vm.count("help") != 0) {
        std::cout << options
                  << "\nSynchronises the guests onto the host's time base and writes one LTTng kernel trace\n"
                     "per machine into DIR: host-HOSTNAME/ and vm-HOSTNAME/, plus experiment.txt on\n"
                     "opening them in Trace Compass as a Virtual Machine experiment (docs/trace-compass.md).\n";
        return 0;
    }
    if (vm.count("trace-compass") == 0) {
        throw UsageError("export needs a format: --trace-compass (the only one so far)");
    }
    if (vm.count("traces") == 0 || vm["traces"].as<std::vector<std::string>>().size() < 2) {
        throw UsageError("export needs a host trace and at least one guest trace");
    }
    if (vm.count("output") == 0) {
        throw UsageError("export needs an output directory (-o DIR)");
    }
    check_sync_options(vm);
    std::vector<std::vector<std::string>> inputs;  // per machine
    std::vector<std::string> read_paths;           // every path read, for the output checks
    for (const std::string& t : vm["traces"].as<std::vector<std::string>>()) {
        inputs.push_back(trace_dirs(t));
        read_paths.push_back(t);
        read_paths.insert(read_paths.end(), inputs.back().begin(), inputs.back().end());
    }
    const bool quiet = vm.count("quiet") != 0;
    check_output_apart(vm["output"].as<std::string>(), read_paths);
    if (vm.count("stats") != 0) {
        check_output_apart(vm["stats"].as<std::string>(), read_paths);
        check_output_file(vm["stats"].as<std::string>());
    }
    // Written whole or not at all: DIR stays as it was when the export fails.
    StagedOutput staged(vm["output"].as<std::string>(), vm.count("force") != 0, kReadmeName);
    const fs::path& out = staged.out();
    const fs::path staging = staged.dir() / kSinkName;
    const fs::path stats_path =
        vm.count("stats") != 0 ? fs::absolute(vm["stats"].as<std::string>()) : staged.dir() / kStatsName;

    VcpuThreadPids vcpu_threads;
    const FastSyncResult fast =
        fast_sync("export", FastSyncRequest(vm, inputs, staging, out.string(), stats_path.string()));
    if (fast.refused) {
        fs::remove_all(staging);
    }
    if (fast.served) {
        // The host trace alone is decoded, for its vCPU threads.
        const std::vector<std::string>& host = inputs.at(fast.host_machine);
        Pipeline pipeline(plugin_dir());
        pipeline.add("source.ctf.fs", "host", Params().set("inputs", host).value(),
                     fmt::format("{}", fmt::join(host, ", ")));
        pipeline.add("filter.utils.muxer", "mux", Params().value());
        vcpu_threads.add_to(pipeline, "vcpu-threads");
        pipeline.add("sink.utils.dummy", "out", Params().value());
        pipeline.connect_all("host", "mux");
        pipeline.connect_all("mux", "vcpu-threads");
        pipeline.connect_all("vcpu-threads", "out");
        pipeline.run();
    }
    // The per-event path reads the host's vCPU threads as the events pass
    // on to sink.ctf.fs (decoding the traces a second time would double the
    // export's time).
    if (!fast.served) {
        // sink.ctf.fs writes each trace's metadata when the graph is
        // destroyed: the pipeline lives in this block only.
        Pipeline pipeline(plugin_dir());
        pipeline.add("filter.vmtrace.sync", "sync", sync_filter_params(vm, stats_path.string(), quiet, !quiet).value());
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            const std::string name = fmt::format("trace{}", i);
            pipeline.add("source.ctf.fs", name, Params().set("inputs", inputs[i]).value(),
                         fmt::format("{}", fmt::join(inputs[i], ", ")));
            pipeline.connect_all(name, "sync");
        }
        pipeline.add("filter.utils.muxer", "mux", Params().value());
        vcpu_threads.add_to(pipeline, "vcpu-threads");
        pipeline.add("sink.ctf.fs", "out", Params().set("path", staging.string()).set("quiet", true).value(),
                     out.string());
        pipeline.connect_all("sync", "mux");
        pipeline.connect_all("mux", "vcpu-threads");
        pipeline.connect_all("vcpu-threads", "out");
        pipeline.run_writing(staged.dir(), out.string());
    }

    if (!fast.served) {
        note_per_event_path(stats_path.string(), fast.refused);
    }

    // Every guest must be on the host's time base: Trace Compass could not
    // place an unsynchronised guest, nor even tell that it is a guest.
    const nlohmann::json stats = nlohmann::json::parse(read_file(stats_path));
    std::string host;
    for (const auto& machine : stats.at("machines")) {
        const std::string role = machine.value("role", "");
        const std::string name = machine.value("name", "?");
        if (role == "host") {
            host = name;
        } else if (machine.value("mode", "") != "synchronized") {
            throw std::runtime_error(fmt::format(
                "guest `{}` was not placed on the host's time base (sync quality {}{}): Trace Compass could not "
                "place it nor tell which VM it is",
                name, machine.value("quality", "?"),
                machine.value("quality", "") == "absent" ? ": it has no vmsync events" : ""));
        }
    }

    std::vector<ExportedTrace> traces;
    for (auto it = fs::recursive_directory_iterator(staging); it != fs::recursive_directory_iterator(); ++it) {
        if (it->path().filename() == "metadata") {
            ExportedTrace t;
            t.dir = it->path().parent_path();
            t.metadata = read_file(it->path());
            const std::string where = it->path().string();
            t.env = ctfclock::environment(t.metadata, where);
            for (const ctfclock::ClockBlock& clock : ctfclock::find_clocks(t.metadata, where)) {
                t.clock_uuids.push_back(clock.uuid);
            }
            traces.push_back(std::move(t));
        }
    }
    std::sort(traces.begin(), traces.end(), [](const auto& a, const auto& b) { return a.dir < b.dir; });
    std::set<std::string> names;
    std::set<std::string> uuids;
    for (ExportedTrace& t : traces) {
        if (t.env.count("hostname") == 0) {
            t.env["hostname"] = t.dir.filename().string();
        }
        const std::string& hostname = t.env.at("hostname");
        if (t.env["domain"] != "kernel") {
            throw UsageError(
                fmt::format("trace of `{}` is not an LTTng kernel trace (its CTF env has domain = \"{}\", "
                            "Trace Compass's kernel and VM analyses need \"kernel\")",
                            hostname, t.env["domain"]));
        }
        t.role = t.env.count("vmtrace_time_base") != 0 ? "guest" : "host";
        std::string name = fmt::format("{}-{}", t.role == "host" ? "host" : "vm", safe_name(hostname));
        for (unsigned n = 2; names.count(name) != 0; ++n) {
            name = fmt::format("{}-{}-{}", t.role == "host" ? "host" : "vm", safe_name(hostname), n);
        }
        names.insert(name);
        t.name = name;
        // Trace Compass identifies a machine by its clock UUID: give every
        // trace a distinct one, keeping the recorded one where it is unique.
        std::optional<std::string> new_uuid;
        if (t.clock_uuids.size() == 1 && (t.clock_uuids[0].empty() || uuids.count(t.clock_uuids[0]) != 0)) {
            new_uuid = derived_uuid(fmt::format("vmtrace {} {} {}", name, t.clock_uuids[0], t.env["trace_name"]));
            if (!quiet) {
                std::cerr << fmt::format(
                    "vmtrace export: warning: `{}` has {} clock UUID; it gets {} so that "
                    "Trace Compass tells it apart\n",
                    hostname, t.clock_uuids[0].empty() ? "no" : "another trace's", *new_uuid);
            }
            t.clock_uuids[0] = *new_uuid;
        }
        uuids.insert(t.clock_uuids.begin(), t.clock_uuids.end());
        write_file(t.dir / "metadata", rewrite_metadata(t.metadata, new_uuid));
    }
    if (std::count_if(traces.begin(), traces.end(), [](const auto& t) { return t.role == "host"; }) != 1) {
        throw std::runtime_error("the synchronised output does not hold exactly one host trace");
    }
    // Guests first in the listing reads oddly: host, then VMs by name.
    std::stable_partition(traces.begin(), traces.end(), [](const auto& t) { return t.role == "host"; });

    for (const ExportedTrace& t : traces) {
        fs::rename(t.dir, staged.dir() / t.name);
    }
    const std::vector<std::string> without_pid = threads_without_pid(vcpu_threads, traces);
    write_file(staged.dir() / kReadmeName, readme(traces, host, without_pid));
    fs::remove_all(staging);
    fs::remove(staged.dir() / kStatsName);
    staged.commit();
    if (!quiet) {
        std::string listing;
        for (const ExportedTrace& t : traces) {
            listing += (listing.empty() ? "" : ", ") + t.name;
        }
        std::cerr << fmt::format("vmtrace export: {} traces in {}: {}; how to open them: {}\n", traces.size(),
                                 out.string(), listing, (out / kReadmeName).string());
        for (const std::string& line : without_pid) {
            std::cerr << fmt::format("vmtrace export: warning: {}; {} (docs/trace-compass.md)\n", line,
                                     kWithoutPidConsequence);
        }
    }
    return 0;
}

}  // namespace vmtrace::cli
