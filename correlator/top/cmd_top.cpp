// SPDX-License-Identifier: MIT
// `vmtrace top`: a live view of a KVM host and its guests, per VM and
// vCPU, refreshed every interval.  The same components as `vmtrace
// analyze` (filter.vmtrace.sync in its live mode, sink.vmtrace.analysis
// writing a snapshot per interval) on live sessions of an lttng-relayd
// (src.ctf.lttng-live), or on recorded traces (src.ctf.fs) to replay them.
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "cli_common.hpp"
#include "pipeline.hpp"
#include "top/live_sessions.hpp"
#include "top/top_screen.hpp"
#include "top/top_view.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

// A directory of the command's own for the components' files, removed at
// the end.
class TempDir {
public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = fmt::format("{}/vmtrace-top-XXXXXX", base != nullptr && *base != '\0' ? base : "/tmp");
        if (mkdtemp(pattern.data()) == nullptr) {
            throw SystemError(
                fmt::format("cannot create a temporary directory like {}: {}", pattern, std::strerror(errno)));
        }
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// The snapshots the sink appends, one JSON object per line: the lines
// completed since the last call.
class SnapshotReader {
public:
    explicit SnapshotReader(fs::path path) : path_(std::move(path)) {}

    std::optional<nlohmann::json> next() {
        if (!in_.is_open()) {
            in_.open(path_);
            if (!in_.is_open()) {
                return std::nullopt;
            }
        }
        in_.clear();
        std::string line;
        while (std::getline(in_, line)) {
            if (in_.eof()) {
                partial_ += line;  // the sink's write is not finished: later
                break;
            }
            partial_ += line;
            std::string complete;
            complete.swap(partial_);
            nlohmann::json j = nlohmann::json::parse(complete, nullptr, false);
            if (j.is_discarded()) {
                throw ProcessingError(fmt::format("{}: a snapshot is not JSON", path_.string()));
            }
            return j;
        }
        in_.clear();
        return std::nullopt;
    }

private:
    fs::path path_;
    std::ifstream in_;
    std::string partial_;
};

nlohmann::json read_sync_stats(const fs::path& path) {
    std::ifstream in(path);
    if (!in) {
        return nullptr;
    }
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The latest event's time of any trace of a snapshot; -1 when none.
std::int64_t latest_event_ns(const nlohmann::json& snapshot) {
    std::int64_t latest = -1;
    if (!snapshot.is_object()) {
        return latest;  // none yet
    }
    for (const auto& t : snapshot.value("traces", nlohmann::json::array())) {
        latest = std::max(latest, t.value("last_event_ns", std::int64_t{-1}));
    }
    return latest;
}

struct Source {
    bool live = false;
    std::string input;  // the session URL or the trace directory
};

// The sources the user named: sessions of a relay daemon (checked to
// exist, unless `wait`), all of them with --relayd, or trace directories.
std::vector<Source> sources_of(const po::variables_map& vm, bool wait) {
    std::vector<Source> sources;
    std::vector<std::string> named;
    if (vm.count("sources") != 0) {
        named = vm["sources"].as<std::vector<std::string>>();
    }
    if (vm.count("relayd") != 0 || named.empty()) {
        const std::string relayd =
            relayd_url(vm.count("relayd") != 0 ? vm["relayd"].as<std::string>() : std::string("net://127.0.0.1"));
        for (;;) {
            for (const LiveSession& s : list_live_sessions(relayd)) {
                sources.push_back({true, fmt::format("{}/host/{}/{}", relayd, s.hostname, s.name)});
            }
            if (!sources.empty() || !wait || stop_requested()) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        if (sources.empty() && !stop_requested()) {
            throw ProcessingError(fmt::format(
                "the relay daemon at {} serves no live session (create one with `vmtrace record host --live`; "
                "--wait waits for one)",
                relayd));
        }
    }
    for (const std::string& arg : named) {
        if (arg.starts_with("net://") || arg.starts_with("net6://")) {
            sources.push_back({true, checked_session_url(arg, wait)});
        } else {
            for (std::string& dir : trace_dirs(arg)) {
                sources.push_back({false, std::move(dir)});
            }
        }
    }
    return sources;
}

const char* kKeys = "keys: s sort  v next VM  a all VMs  f freeze  q quit";

}  // namespace

int top_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace top [SESSION_URL | TRACE_DIR ...] [options]");
    options.add_options()("help,h", "show this help")(
        "relayd", po::value<std::string>(),
        "every live session of the relay daemon at net://HOST[:PORT] (default, with no source named: "
        "net://127.0.0.1; port 5344)")("delay,d", po::value<double>(),
                                       "seconds of trace time per interval and refresh (default 1, 0.1..3600)")(
        "batch", "print one block of text per interval, no full-screen view (no terminal needed)")(
        "json", "print one JSON object per interval (docs/cli.md), no full-screen view")(
        "iterations,n", po::value<std::int64_t>(), "stop after N intervals")(
        "wait", "wait for sessions that the relay daemon does not serve yet (a guest that starts tracing later)")(
        "stale-seconds", po::value<double>(),
        "a source silent this long is shown stale and no longer waited for (default 5)")(
        "sources", po::value<std::vector<std::string>>(), "live session URLs or trace directories");
    po::positional_options_description positional;
    positional.add("sources", -1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    if (vm.count("help") != 0) {
        std::cout << options
                  << "\nPer VM and vCPU over the last interval: % of time running guest code, in the hypervisor,\n"
                     "preempted and idle; exits per second by reason with p50/p99 latency; the guest thread that\n"
                     "ran most; vCPU and guest-thread migrations.  Live sessions come from lttng-relayd\n"
                     "(`vmtrace record host --live`, `vmtrace record guest --live --relayd net://HOST`); trace\n"
                     "directories are replayed as fast as they are read.  Exit status: 0 done, 1 processing\n"
                     "failed, 2 bad command line or unknown session, 3 plugin missing, 4 relay daemon unreachable.\n";
        return 0;
    }
    const bool json = vm.count("json") != 0;
    const bool batch = json || vm.count("batch") != 0;
    const double delay = vm.count("delay") != 0 ? vm["delay"].as<double>() : 1.0;
    if (!(delay >= 0.1 && delay <= 3600)) {
        throw UsageError(fmt::format("--delay {}: must be between 0.1 and 3600 seconds", delay));
    }
    const double stale_seconds = vm.count("stale-seconds") != 0 ? vm["stale-seconds"].as<double>() : 5.0;
    if (!(stale_seconds >= 0.1 && stale_seconds <= 3600)) {
        throw UsageError(fmt::format("--stale-seconds {}: must be between 0.1 and 3600", stale_seconds));
    }
    std::int64_t iterations = 0;
    if (vm.count("iterations") != 0) {
        iterations = vm["iterations"].as<std::int64_t>();
        if (iterations < 1) {
            throw UsageError(fmt::format("--iterations {}: must be at least 1", iterations));
        }
    }
    if (!batch && (isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0)) {
        throw UsageError("the full-screen view needs a terminal: use --batch or --json");
    }
    catch_stop_signals();

    const std::vector<Source> sources = sources_of(vm, vm.count("wait") != 0);
    if (stop_requested()) {
        return 0;
    }
    bool live = false;
    for (const Source& s : sources) {
        live = live || s.live;
    }
    const TempDir tmp;
    const fs::path snapshots = tmp.path() / "snapshots.jsonl";
    const fs::path stats = tmp.path() / "sync.json";

    auto owned = std::make_unique<Pipeline>(plugin_dir());
    Pipeline& pipeline = *owned;
    pipeline.add("sink.vmtrace.analysis", "analysis",
                 Params()
                     .set("live", true)
                     .set("quiet", true)
                     .set("snapshot-ms", static_cast<std::int64_t>(delay * 1000))
                     .set("snapshot-path", snapshots.string())
                     .set("sync-stats", stats.string())
                     .value());
    pipeline.add("filter.vmtrace.sync", "sync",
                 Params()
                     .set("live", true)
                     .set("quiet", true)
                     .set("stats", stats.string())
                     .set("live-stale-ms", static_cast<std::int64_t>(stale_seconds * 1000))
                     .value());
    for (std::size_t i = 0; i < sources.size(); ++i) {
        const std::string name = fmt::format("source{}", i);
        if (sources[i].live) {
            pipeline.add("source.ctf.lttng-live", name,
                         Params()
                             .set("inputs", std::vector<std::string>{sources[i].input})
                             .set("session-not-found-action", vm.count("wait") != 0 ? "continue" : "fail")
                             .value(),
                         sources[i].input);
        } else {
            pipeline.add("source.ctf.fs", name,
                         Params().set("inputs", std::vector<std::string>{sources[i].input}).value(), sources[i].input);
        }
        pipeline.connect_all(name, "sync");
    }
    pipeline.connect_all("sync", "analysis");

    std::unique_ptr<top::Screen> screen;
    if (!batch) {
        screen = std::make_unique<top::Screen>();
    }
    SnapshotReader reader(snapshots);
    nlohmann::json previous;  // the last snapshot read
    top::ViewOptions view;
    top::Frame shown;
    bool have_frame = false;
    bool ended = false;
    std::int64_t printed = 0;
    auto last_check = std::chrono::steady_clock::now();
    auto last_draw = last_check - std::chrono::seconds(10);
    bool dirty = true;
    bool stopped_by_count = false;
    bool draining = false;
    for (;;) {
        if (stop_requested() && !draining) {
            if (!batch || stopped_by_count || ended) {
                break;
            }
            // Stopped by a signal: the sink, destroyed, writes what it
            // collected since its last interval, printed as the last one.
            owned.reset();
            draining = true;
            ended = true;
        }
        bool again = false;
        if (!ended && !draining) {
            ended = !owned->step(again);
        }
        const auto now = std::chrono::steady_clock::now();
        // The snapshot file is looked at every 20 ms, not after every
        // batch of messages.
        if (ended || again || now - last_check >= std::chrono::milliseconds(20)) {
            last_check = now;
            while (auto snapshot = reader.next()) {
                top::Frame frame;
                frame.snapshot = std::move(*snapshot);
                // The end of the traces right after an interval's end: an
                // empty last interval; its per-VM figures would all be 0,
                // the interval before stands for them.
                if (frame.snapshot.value("final", false) && frame.snapshot.value("covered_ns", std::int64_t{0}) == 0 &&
                    previous.is_object()) {
                    for (const char* key : {"begin_ns", "end_ns", "covered_ns", "vms", "machines"}) {
                        frame.snapshot[key] = previous[key];
                    }
                }
                previous = frame.snapshot;
                frame.sync = read_sync_stats(stats);
                // the sources as the user named them
                if (frame.sync.is_object() && frame.sync.contains("inputs")) {
                    for (auto& in : frame.sync["inputs"]) {
                        const std::string component = in.value("component", "");
                        for (std::size_t i = 0; i < sources.size(); ++i) {
                            if (component == fmt::format("source{}", i)) {
                                in["source"] = sources[i].input;
                            }
                        }
                    }
                }
                if (const std::int64_t latest = latest_event_ns(frame.snapshot); live && latest > 0) {
                    frame.delay_ns = wall_ns() - latest;
                }
                if (batch) {
                    if (json) {
                        std::cout << top::frame_json(frame).dump() << "\n";
                    } else {
                        for (const top::Line& line : top::render(frame, view)) {
                            std::cout << line.text << "\n";
                        }
                        std::cout << "\n";
                    }
                    std::cout.flush();
                }
                if (!view.frozen) {
                    shown = std::move(frame);
                    have_frame = true;
                    dirty = true;
                }
                if (iterations != 0 && ++printed >= iterations) {
                    stopped_by_count = true;
                    stop_requested() = true;
                    break;
                }
            }
        }
        if ((ended || draining) && batch) {
            break;
        }
        if (screen) {
            for (int key = screen->key(); key != -1; key = screen->key()) {
                dirty = true;
                switch (key) {
                case 'q':
                case 'Q':
                    stop_requested() = true;
                    break;
                case 's':
                    view.sort = top::next(view.sort);
                    break;
                case 'v': {
                    const std::vector<std::string> names = top::vm_names(shown);
                    if (!names.empty()) {
                        auto at = std::find(names.begin(), names.end(), view.vm);
                        view.vm = at == names.end() || at + 1 == names.end() ? names.front() : *(at + 1);
                    }
                    break;
                }
                case 'a':
                    view.vm.clear();
                    break;
                case 'f':
                case ' ':
                    view.frozen = !view.frozen;
                    break;
                default:
                    break;
                }
            }
            if (dirty || now - last_draw >= std::chrono::seconds(1)) {
                // The delay grows on screen while nothing new comes.
                if (const std::int64_t latest = latest_event_ns(shown.snapshot);
                    live && have_frame && !view.frozen && latest > 0) {
                    shown.delay_ns = wall_ns() - latest;
                }
                std::vector<top::Line> lines;
                if (have_frame) {
                    lines = top::render(shown, view);
                } else {
                    lines.push_back({top::Line::Kind::title, "vmtrace top"});
                    lines.push_back({top::Line::Kind::text,
                                     fmt::format("  waiting for the first {:.1f} s of trace time from {} source(s)...",
                                                 delay, sources.size())});
                }
                if (ended) {
                    lines.push_back({top::Line::Kind::alert, "  the sessions ended: this is the last interval"});
                }
                screen->draw(lines, kKeys);
                last_draw = now;
                dirty = false;
            }
        }
        if (again || ended) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    screen.reset();
    return 0;
}

}  // namespace vmtrace::cli
