// SPDX-License-Identifier: MIT
// `vmtrace sync`'s fast path: the cost of reading the handshakes, not of
// re-encoding every event.
#include "fast_sync.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "cli_common.hpp"
#include "lib/ctf_clock/clock_fit.hpp"
#include "lib/ctf_clock/metadata_text.hpp"
#include "output_dir.hpp"
#include "pipeline.hpp"
#include "sync_options.hpp"

namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

// The channel `vmtrace record` puts the vmsync (and VM identity) events in.
constexpr std::string_view kVmsyncChannel = "vmsync_";

struct TraceDir {
    fs::path dir;
    std::string text;  // metadata
    ctfclock::ClockBlock clock;
    std::map<std::string, std::string> env;
    std::vector<fs::path> vmsync_streams;
    // ns from origin, when only the vmsync channel is read: from LTTng's
    // index, else from babeltrace2's trace-infos query.
    std::optional<std::pair<std::int64_t, std::int64_t>> range;
};

struct Machine {
    std::string arg;
    std::vector<TraceDir> dirs;
    std::pair<std::int64_t, std::int64_t> range{INT64_MAX, INT64_MIN};  // ns from origin
};

struct Rewrite {
    ctfclock::ClockFit fit;
    std::int64_t bound_ns = 0;
};

bool is_stream_file(const fs::directory_entry& entry) {
    const std::string name = entry.path().filename().string();
    return entry.is_regular_file() && name != "metadata" && !name.empty() && name[0] != '.';
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> indexed_cycles(const fs::path& dir);
using Range = std::optional<std::pair<std::int64_t, std::int64_t>>;
std::vector<Range> queried_ranges(const std::vector<fs::path>& dirs);

TraceDir read_trace_dir(const fs::path& dir) {
    TraceDir t;
    t.dir = dir;
    const std::string where = (dir / "metadata").string();
    t.text = ctfclock::read_metadata_text(dir / "metadata");
    const auto clocks = ctfclock::find_clocks(t.text, where);
    if (clocks.size() != 1) {
        throw ctfclock::MetadataError(
            fmt::format("{}: {} clocks (the fast path rewrites exactly one)", where, clocks.size()));
    }
    t.clock = clocks[0];
    t.env = ctfclock::environment(t.text, where);
    if (t.env.count("vmtrace_time_base") != 0) {
        throw ProcessingError(
            fmt::format("{}: this trace is already on the time base of {} (an output of `vmtrace "
                        "sync`): synchronise the original traces",
                        dir.string(), t.env.at("vmtrace_time_base")));
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (is_stream_file(entry) && entry.path().filename().string().rfind(kVmsyncChannel, 0) == 0) {
            t.vmsync_streams.push_back(entry.path());
        }
    }
    if (!t.vmsync_streams.empty()) {
        const ctfclock::CtfClock clock{t.clock.freq, t.clock.offset_s, t.clock.offset};
        if (const auto cycles = indexed_cycles(dir)) {
            t.range = {ctfclock::ns_at(clock, cycles->first), ctfclock::ns_at(clock, cycles->second)};
        }  // else queried by fast_sync(), for all such traces at once
    }
    return t;
}

// The cycle range of a trace's packets from LTTng's index files
// (index/STREAM.idx, big-endian: magic 0xc1f1dcc1, major, minor, entry
// length, then per packet offset, sizes, timestamp_begin, timestamp_end,
// ...), without reading a stream file.  nullopt when a stream file has no
// readable index: the trace is then decoded whole and the filter sees its
// range.
std::optional<std::pair<std::uint64_t, std::uint64_t>> indexed_cycles(const fs::path& dir) {
    std::pair<std::uint64_t, std::uint64_t> range{UINT64_MAX, 0};
    auto load = [](const std::string& b, std::size_t at) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < 8; ++i) {
            v = (v << 8) | static_cast<std::uint8_t>(b[at + i]);
        }
        return v;
    };
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (!is_stream_file(entry)) {
            continue;
        }
        std::ifstream in(dir / "index" / (entry.path().filename().string() + ".idx"), std::ios::binary);
        const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (b.size() < 16 || (load(b, 0) >> 32) != 0xc1f1dcc1) {
            return std::nullopt;
        }
        const std::uint64_t entry_len = load(b, 8) & 0xffffffff;
        if (entry_len < 40 || (b.size() - 16) % entry_len != 0) {
            return std::nullopt;
        }
        for (std::size_t at = 16; at + entry_len <= b.size(); at += entry_len) {
            const std::uint64_t begin = load(b, at + 24);
            const std::uint64_t end = load(b, at + 32);
            if (begin > end) {
                return std::nullopt;
            }
            range.first = std::min(range.first, begin);
            range.second = std::max(range.second, end);
        }
    }
    if (range.first > range.second) {
        return std::nullopt;
    }
    return range;
}

std::vector<Range> queried_ranges(const std::vector<fs::path>& dirs) {
    // babeltrace2 2.0.4 aborts the process when this query meets a damaged
    // stream file (a precondition of its error reporting fails): it runs in
    // a child, which hands each range back through a pipe as it gets it (a
    // trace after a damaged one gets none, and is read whole).
    std::vector<Range> ranges(dirs.size());
    if (dirs.empty()) {
        return ranges;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        return ranges;
    }
    std::cout.flush();
    std::cerr.flush();
    const pid_t child = fork();
    if (child < 0) {
        close(fds[0]);
        close(fds[1]);
        return ranges;
    }
    if (child == 0) {
        close(fds[0]);
        // Its abort message is babeltrace2's, not the user's business: the
        // parent reads the trace whole and reports what is wrong with it.
        const int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDERR_FILENO);
        }
        const bt_plugin* found = nullptr;
        if (bt_plugin_find("ctf", BT_TRUE, BT_FALSE, BT_TRUE, BT_TRUE, BT_FALSE, &found) != BT_PLUGIN_FIND_STATUS_OK) {
            _exit(1);
        }
        const bt2::PluginRef plugin = bt2::PluginRef::adopt(found);
        const auto* source = bt_plugin_borrow_source_component_class_by_name_const(plugin.get(), "fs");
        if (source == nullptr) {
            _exit(1);
        }
        for (const fs::path& dir : dirs) {
            std::int64_t range[3] = {0, INT64_MAX, INT64_MIN};  // known, begin, end
            const Params params = Params().set("inputs", std::vector<std::string>{dir.string()});
            const auto executor = bt2::QueryExecutorRef::adopt(
                bt_query_executor_create(bt_component_class_source_as_component_class_const(source),
                                         "babeltrace.trace-infos", params.value().get()));
            const bt_value* result = nullptr;
            if (executor.get() != nullptr &&
                bt_query_executor_query(executor.get(), &result) == BT_QUERY_EXECUTOR_QUERY_STATUS_OK) {
                const bt2::ConstValueRef infos = bt2::ConstValueRef::adopt(result);
                range[0] = 1;
                for (std::uint64_t i = 0; bt_value_is_array(infos.get()) && i < bt_value_array_get_length(infos.get());
                     ++i) {
                    const bt_value* streams = bt_value_map_borrow_entry_value_const(
                        bt_value_array_borrow_element_by_index_const(infos.get(), i), "stream-infos");
                    for (std::uint64_t k = 0; streams != nullptr && k < bt_value_array_get_length(streams); ++k) {
                        const bt_value* r = bt_value_map_borrow_entry_value_const(
                            bt_value_array_borrow_element_by_index_const(streams, k), "range-ns");
                        const bt_value* begin =
                            r != nullptr ? bt_value_map_borrow_entry_value_const(r, "begin") : nullptr;
                        const bt_value* end = r != nullptr ? bt_value_map_borrow_entry_value_const(r, "end") : nullptr;
                        if (begin == nullptr || end == nullptr || !bt_value_is_signed_integer(begin) ||
                            !bt_value_is_signed_integer(end)) {
                            range[0] = 0;
                            continue;
                        }
                        range[1] = std::min(range[1], bt_value_integer_signed_get(begin));
                        range[2] = std::max(range[2], bt_value_integer_signed_get(end));
                    }
                }
                range[0] = range[0] != 0 && range[1] <= range[2] ? 1 : 0;
            }
            if (write(fds[1], range, sizeof range) != static_cast<ssize_t>(sizeof range)) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    for (Range& out : ranges) {
        std::int64_t range[3] = {0, 0, 0};
        std::size_t got = 0;
        while (got < sizeof range) {
            const ssize_t n = read(fds[0], reinterpret_cast<char*>(range) + got, sizeof range - got);
            if (n <= 0) {
                break;
            }
            got += static_cast<std::size_t>(n);
        }
        if (got != sizeof range) {
            break;  // the child died: this trace and the ones after it are read whole
        }
        if (range[0] == 1) {
            out = std::make_pair(range[1], range[2]);
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return ranges;
}

clocksync::Int128 int128_of(const nlohmann::json& value) {
    const std::string text = value.get<std::string>();
    const auto parsed = clocksync::parse_int128(text);
    if (!parsed) {
        throw ProcessingError(fmt::format("the synchronisation statistics hold a bad number `{}`", text));
    }
    return *parsed;
}

clocksync::LinearTransform transform_of(const nlohmann::json& m) {
    const nlohmann::json& t = m.at("transform");
    clocksync::LinearTransform transform;
    transform.x0 = t.at("x0_ns").get<std::int64_t>();
    transform.y0 = t.at("y0_ns").get<std::int64_t>();
    transform.slope_num = int128_of(t.at("slope_num"));
    transform.slope_den = int128_of(t.at("slope_den"));
    return transform;
}

// Where a trace goes in the output: as sink.ctf.fs places an LTTng trace
// (HOSTNAME/TRACE_NAME-DATETIME/DOMAIN...), else under the machine
// argument's name; unique.
fs::path output_path(const Machine& machine, const TraceDir& trace, std::set<fs::path>& used) {
    fs::path rel;
    const auto get = [&](const char* key) {
        const auto found = trace.env.find(key);
        return found != trace.env.end() ? found->second : std::string();
    };
    const std::string host = get("hostname");
    const std::string name = get("trace_name");
    const std::string datetime = get("trace_creation_datetime");
    const fs::path arg = fs::path(machine.arg).lexically_normal();
    const fs::path below = fs::relative(trace.dir, arg);
    if (!host.empty() && !name.empty() && !datetime.empty() && host.find('/') == std::string::npos &&
        name.find('/') == std::string::npos) {
        const std::string session = name + "-" + datetime;
        fs::path rest;
        bool after = false;
        for (const fs::path& part : fs::path(trace.dir).lexically_normal()) {
            if (after) {
                rest /= part;
            }
            after = after || part == session;
        }
        if (rest.empty()) {
            rest = get("domain").empty() ? trace.dir.filename() : fs::path(get("domain"));
        }
        rel = fs::path(host) / session / rest;
    } else {
        rel = arg.filename();
        if (rel.empty() || rel == ".") {
            rel = "trace";
        }
        if (!below.empty() && below != ".") {
            rel /= below;
        }
    }
    fs::path unique = rel;
    for (int n = 1; used.count(unique) != 0; ++n) {
        unique = rel.string() + fmt::format("-{}", n);
    }
    used.insert(unique);
    return unique;
}

struct LinkCount {
    std::uint64_t linked = 0;
    std::uint64_t copied = 0;
};

// `from`'s stream files and index into `to`: hard links on one file
// system, else copies; never the originals changed.
void link_or_copy(const fs::path& from, const fs::path& to, LinkCount& count) {
    fs::create_directories(to);
    for (const auto& entry : fs::directory_iterator(from)) {
        const fs::path target = to / entry.path().filename();
        if (entry.is_directory() && entry.path().filename() == "index") {
            link_or_copy(entry.path(), target, count);
            continue;
        }
        if (!is_stream_file(entry) && !(from.filename() == "index" && entry.is_regular_file())) {
            continue;
        }
        std::error_code ec;
        fs::create_hard_link(entry.path(), target, ec);
        if (!ec) {
            ++count.linked;
            continue;
        }
        fs::copy_file(entry.path(), target);
        ++count.copied;
    }
}

void write_text(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary);
    out << text;
    out.close();
    if (!out) {
        throw fs::filesystem_error("cannot write", file, std::make_error_code(std::errc::io_error));
    }
}

}  // namespace

// The fast path's work: nullopt when the output is written (the host's
// index in `host_machine`), else why it cannot be.
static std::optional<std::string> write_fast(const FastSyncRequest& request, std::size_t& host_machine) {
    std::vector<Machine> machines;
    try {
        for (std::size_t i = 0; i < request.traces.size(); ++i) {
            Machine m;
            m.arg = request.machines[i];
            for (const std::string& dir : request.traces[i]) {
                m.dirs.push_back(read_trace_dir(dir));
            }
            machines.push_back(std::move(m));
        }
    } catch (const ctfclock::MetadataError& e) {
        return std::string(e.what());
    }
    // The range of a trace read through its vmsync channel alone, when
    // LTTng's index did not give it; a trace whose range stays unknown is
    // read whole.
    std::vector<TraceDir*> unindexed;
    std::vector<fs::path> unindexed_dirs;
    for (Machine& m : machines) {
        for (TraceDir& t : m.dirs) {
            if (!t.vmsync_streams.empty() && !t.range) {
                unindexed.push_back(&t);
                unindexed_dirs.push_back(t.dir);
            }
        }
    }
    const std::vector<Range> queried = queried_ranges(unindexed_dirs);
    for (std::size_t k = 0; k < unindexed.size(); ++k) {
        unindexed[k]->range = queried[k];
    }
    for (Machine& m : machines) {
        for (TraceDir& t : m.dirs) {
            if (!t.range) {
                t.vmsync_streams.clear();
            }
        }
    }

    // The estimate: only the vmsync channel of a trace that has one.
    const fs::path scratch = request.out / ".vmtrace-estimate";
    const fs::path stats_file = scratch / "sync-stats.json";
    fs::create_directories(scratch);
    nlohmann::json stats;
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> ranges;
    std::uint64_t channel_traces = 0;
    {
        Pipeline pipeline(plugin_dir());
        std::vector<std::vector<std::string>> inputs;
        for (std::size_t i = 0; i < machines.size(); ++i) {
            Machine& m = machines[i];
            const std::string name = fmt::format("trace{}", i);
            std::vector<std::string> dirs;
            for (std::size_t j = 0; j < m.dirs.size(); ++j) {
                const TraceDir& t = m.dirs[j];
                if (t.vmsync_streams.empty()) {
                    dirs.push_back(t.dir.string());
                    continue;
                }
                ++channel_traces;
                auto& range = ranges.try_emplace(name, INT64_MAX, INT64_MIN).first->second;
                range.first = std::min(range.first, t.range->first);
                range.second = std::max(range.second, t.range->second);
                const fs::path view = scratch / fmt::format("{}-{}", i, j);
                fs::create_directories(view);
                fs::create_symlink(fs::absolute(t.dir / "metadata"), view / "metadata");
                for (const fs::path& stream : t.vmsync_streams) {
                    fs::create_symlink(fs::absolute(stream), view / stream.filename());
                }
                dirs.push_back(view.string());
            }
            inputs.push_back(dirs);
        }
        Params sync = sync_filter_params(*request.options, stats_file.string(), request.quiet, !request.quiet);
        sync.set("estimate-only", true).set("ranges", ranges);
        pipeline.add("filter.vmtrace.sync", "sync", sync.value());
        for (std::size_t i = 0; i < machines.size(); ++i) {
            const std::string name = fmt::format("trace{}", i);
            pipeline.add("source.ctf.fs", name, Params().set("inputs", inputs[i]).value(),
                         fmt::format("{}", fmt::join(request.traces[i], ", ")));
            pipeline.connect_all(name, "sync");
        }
        pipeline.add("sink.utils.dummy", "out", Params().value());
        pipeline.connect_all("sync", "out");
        pipeline.run();
    }
    {
        std::ifstream in(stats_file);
        stats = nlohmann::json::parse(in);
    }
    fs::remove_all(scratch);

    // One trace per source: the statistics tie each to its directories.
    std::map<std::string, const nlohmann::json*> by_source;
    std::string host_name;
    std::optional<bool> host_absolute;
    for (const nlohmann::json& m : stats.at("machines")) {
        const std::string source = m.at("source").get<std::string>();
        if (by_source.count(source) != 0) {
            return fmt::format("{} holds more than one trace", source);
        }
        by_source[source] = &m;
        if (m.at("role") == "host") {
            host_name = m.at("name").get<std::string>();
            host_machine = std::stoul(source.substr(std::string_view("trace").size()));
            host_absolute = machines.at(host_machine).dirs.at(0).clock.absolute;
        }
    }

    // Every synchronised guest's new clock, before anything is written.
    std::map<std::pair<std::size_t, std::size_t>, Rewrite> rewrites;
    for (std::size_t i = 0; i < machines.size(); ++i) {
        const auto found = by_source.find(fmt::format("trace{}", i));
        if (found == by_source.end()) {
            continue;  // the filter failed the graph for a source without a stream
        }
        const nlohmann::json& m = *found->second;
        if (m.at("role") == "host" || m.value("mode", "") != "synchronized") {
            continue;
        }
        const clocksync::LinearTransform transform = transform_of(m);
        if (!m.contains("range_ns")) {
            return fmt::format("{}: its time range is unknown", machines[i].arg);
        }
        machines[i].range = {m.at("range_ns").at(0).get<std::int64_t>(), m.at("range_ns").at(1).get<std::int64_t>()};
        const std::int64_t bound = m.value("bound_over_range_ns", std::int64_t{-1});
        for (std::size_t j = 0; j < machines[i].dirs.size(); ++j) {
            const TraceDir& t = machines[i].dirs[j];
            const ctfclock::CtfClock clock{t.clock.freq, t.clock.offset_s, t.clock.offset};
            const std::int64_t first = std::max<std::int64_t>(0, ctfclock::cycle_at(clock, machines[i].range.first));
            const std::int64_t last = std::max(first, ctfclock::cycle_at(clock, machines[i].range.second));
            const auto fit = ctfclock::fit_clock(clock, transform, static_cast<std::uint64_t>(first),
                                                 static_cast<std::uint64_t>(last));
            if (!fit) {
                return fmt::format(
                    "{}: no CTF clock can carry its transform (its origin would lie before the "
                    "host clock's)",
                    t.dir.string());
            }
            if (bound < 0) {
                return fmt::format("{}: no error bound is known for its synchronisation", t.dir.string());
            }
            if (fit->error_ns > bound) {
                return fmt::format(
                    "{}: a CTF clock's integer frequency would add up to {} ns of error over its {:.0f} s, more "
                    "than the synchronisation bound ({} ns)",
                    t.dir.string(), fit->error_ns,
                    static_cast<double>(machines[i].range.second - machines[i].range.first) * 1e-9, bound);
            }
            rewrites[{i, j}] = Rewrite{*fit, bound + fit->error_ns};
        }
    }

    // The output.
    std::set<fs::path> used;
    LinkCount count;
    nlohmann::json written = nlohmann::json::array();
    try {
        for (std::size_t i = 0; i < machines.size(); ++i) {
            const auto found = by_source.find(fmt::format("trace{}", i));
            for (std::size_t j = 0; j < machines[i].dirs.size(); ++j) {
                const TraceDir& t = machines[i].dirs[j];
                const fs::path rel = output_path(machines[i], t, used);
                const fs::path dir = request.out / rel;
                link_or_copy(t.dir, dir, count);
                nlohmann::json entry{{"input", t.dir.string()}, {"output", rel.string()}};
                const auto rewrite = rewrites.find({i, j});
                if (rewrite == rewrites.end()) {
                    // Written, never linked: the metadata is what a reader
                    // (`vmtrace export`) may rewrite; plain text, as read.
                    write_text(dir / "metadata", ctfclock::plain_text_metadata(t.text));
                    entry["clock"] = "unchanged";
                    written.push_back(entry);
                    continue;
                }
                const nlohmann::json& m = *found->second;
                const ctfclock::ClockFit& fit = rewrite->second.fit;
                const bool tracer = m.at("role") == "memory tracer";
                std::vector<ctfclock::EnvEntry> env{
                    {"vmtrace_time_base", fmt::format("host {}", host_name), true},
                    {tracer ? "vmtrace_memsync_hpa" : "vmtrace_vm_uid",
                     m.at(tracer ? "hpa" : "vm_uid").get<std::string>(), true},
                    {"vmtrace_sync_bound_ns", std::to_string(rewrite->second.bound_ns), false},
                };
                try {
                    write_text(
                        dir / "metadata",
                        ctfclock::rewrite_clock(t.text, t.clock, fit.clock.freq, fit.clock.offset_s, fit.clock.offset,
                                                host_absolute, env, (t.dir / "metadata").string()));
                } catch (const ctfclock::MetadataError& e) {
                    throw ProcessingError(e.what());
                }
                entry["clock"] = {{"freq", fit.clock.freq},      {"offset_s", fit.clock.offset_s},
                                  {"offset", fit.clock.offset},  {"anchor_cycle", fit.anchor_cycle},
                                  {"rounding_ns", fit.error_ns}, {"sync_bound_ns", rewrite->second.bound_ns}};
                written.push_back(entry);
                if (!request.quiet) {
                    std::cerr << fmt::format(
                        "  {}: clock rewritten: freq {} Hz, offset_s {}, offset {}; frequency rounding +-{} ns, "
                        "bound +-{} ns\n",
                        rel.string(), fit.clock.freq, fit.clock.offset_s, fit.clock.offset, fit.error_ns,
                        rewrite->second.bound_ns);
                }
            }
        }
    } catch (const std::filesystem::filesystem_error& e) {
        // A full or read-only file system explains itself as it does for
        // the per-event path; anything else names the file.
        if (const std::string trouble = write_trouble(request.out); !trouble.empty()) {
            throw CommandError(fmt::format("cannot write {}: {}", request.shown, trouble),
                               trouble.starts_with("no space") ? kExitFailure : kExitSystem);
        }
        throw SystemError(fmt::format("cannot write {}: {}", request.shown, e.what()));
    }
    if (!request.quiet) {
        std::cerr << fmt::format(
            "  fast path: {} of {} traces estimated from their vmsync channel alone; stream files {} linked, {} "
            "copied, none re-encoded\n",
            channel_traces, used.size(), count.linked, count.copied);
    }
    if (!request.stats.empty()) {
        stats["path"] = "clock-rewrite";
        stats["traces"] = written;
        stats["vmsync_channel_traces"] = channel_traces;
        stats["stream_files"] = {{"linked", count.linked}, {"copied", count.copied}};
        std::ofstream out(request.stats);
        out << stats.dump(2) << '\n';
        if (!out) {
            throw SystemError(fmt::format("cannot write {}", request.stats));
        }
    }
    return std::nullopt;
}

FastSyncRequest::FastSyncRequest(const boost::program_options::variables_map& vm,
                                 std::vector<std::vector<std::string>> traces_, fs::path out_, std::string shown_,
                                 std::string stats_)
    : traces(std::move(traces_)),
      machines(vm["traces"].as<std::vector<std::string>>()),
      options(&vm),
      out(std::move(out_)),
      shown(std::move(shown_)),
      stats(std::move(stats_)),
      quiet(vm.count("quiet") != 0) {}

FastSyncResult fast_sync(std::string_view command, const FastSyncRequest& request) {
    FastSyncResult result;
    if (request.options->count("rewrite-events") != 0 || request.options->count("verify") != 0) {
        return result;
    }
    result.refused = write_fast(request, result.host_machine);
    result.served = !result.refused;
    if (result.refused) {
        std::cerr << fmt::format("vmtrace {}: {}; synchronising event by event instead\n", command, *result.refused);
    }
    return result;
}

void note_per_event_path(const std::string& stats_file, const std::optional<std::string>& refused) {
    nlohmann::json stats;
    {
        std::ifstream in(stats_file);
        stats = nlohmann::json::parse(in);
    }
    stats["path"] = "rewrite-events";
    if (refused) {
        stats["fast_path_refused"] = *refused;
    }
    std::ofstream out(stats_file);
    out << stats.dump(2) << '\n';
    if (!out) {
        throw SystemError(fmt::format("cannot write {}", stats_file));
    }
}

}  // namespace vmtrace::cli
