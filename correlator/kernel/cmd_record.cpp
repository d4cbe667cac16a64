// SPDX-License-Identifier: MIT
// `vmtrace record host|guest|memory`: an LTTng recording session with the
// channel, events and contexts vmtrace needs on that side, through
// liblttng-ctl; `--dry-run` prints the same as `lttng` commands.  host and
// guest are kernel sessions; memory is a user-space session for a memory
// tracer linking libvmtrace-mem (docs/memory-tracing.md).
#include <fmt/format.h>
#include <lttng/lttng.h>
#include <boost/program_options.hpp>

#include <fnmatch.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>

#include "cli_common.hpp"
#include "record_events.hpp"
#include "schema/events.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

// liblttng-ctl prints its own errors on stderr unless this is set (as
// `lttng --quiet` does); weak, as it is not in the library's headers.
extern "C" __attribute__((weak)) int lttng_opt_quiet;

namespace vmtrace::cli {
namespace {

constexpr unsigned kDefaultLiveTimerUs = 1000000;  // lttng's own default
constexpr const char* kDefaultRelayd = "net://127.0.0.1";

// The lttng-ust provider of the memory tracer's events (docs/events.json).
constexpr std::string_view kMemoryProvider = "vmtrace_mem";

// The kernel contexts `--context` takes (lttng add-context --type names).
const std::map<std::string, lttng_event_context_type> kContexts = {
    {"tid", LTTNG_EVENT_CONTEXT_TID},           {"pid", LTTNG_EVENT_CONTEXT_PID},
    {"ppid", LTTNG_EVENT_CONTEXT_PPID},         {"procname", LTTNG_EVENT_CONTEXT_PROCNAME},
    {"prio", LTTNG_EVENT_CONTEXT_PRIO},         {"nice", LTTNG_EVENT_CONTEXT_NICE},
    {"vtid", LTTNG_EVENT_CONTEXT_VTID},         {"vpid", LTTNG_EVENT_CONTEXT_VPID},
    {"hostname", LTTNG_EVENT_CONTEXT_HOSTNAME},
};

// The user-space contexts of `record memory`: every byte per access counts,
// so none by default (the tracer's CPU is a payload field).
const std::map<std::string, lttng_event_context_type> kUstContexts = {
    {"vtid", LTTNG_EVENT_CONTEXT_VTID},
    {"vpid", LTTNG_EVENT_CONTEXT_VPID},
    {"procname", LTTNG_EVENT_CONTEXT_PROCNAME},
};

struct ChannelPlan {
    std::string name;
    std::uint64_t subbuf_size;
    std::uint64_t num_subbuf;
    std::vector<std::string> events;
};

// The vmsync handshakes and VM identity events in a channel of their own:
// `vmtrace sync` reads its stream files alone (docs/clock-sync.md).  A
// handshake every few ms per vCPU and a statedump burst at the start: 4 x
// 256k per CPU hold seconds of them.
constexpr const char* kVmsyncChannel = "vmsync";
constexpr std::uint64_t kVmsyncSubbufSize = 256u << 10;
constexpr std::uint64_t kVmsyncNumSubbuf = 4;

struct Plan {
    std::string side;
    bool ust;  // side memory: a user-space session
    bool per_pid_buffers;
    // memory: a full buffer makes the tracer wait this long (-1: for ever)
    // instead of dropping the record; needs LTTNG_UST_ALLOW_BLOCKING=1 in
    // the tracer's environment.
    std::optional<std::int64_t> blocking_timeout_us;
    std::string session;
    std::optional<std::string> output;  // absolute local directory
    std::optional<std::string> url;     // lttng-relayd
    std::optional<unsigned> live_timer_us;
    // host and guest: the main channel, then the vmsync channel (unless
    // --single-channel); memory: one channel.
    std::vector<ChannelPlan> channels;
    std::vector<std::string> contexts;  // added to every channel
    bool start;
};

bool power_of_two(std::uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

// "2M", "512k", "4096": what lttng enable-channel --subbuf-size takes.
std::uint64_t parse_size(const std::string& text) {
    std::size_t used = 0;
    std::uint64_t value = 0;
    try {
        value = std::stoull(text, &used);
    } catch (const std::exception&) {
        throw UsageError(fmt::format("record: --subbuf-size {}: not a size (e.g. 512k, 2M)", text));
    }
    const std::string suffix = text.substr(used);
    if (suffix == "k" || suffix == "K") {
        value <<= 10;
    } else if (suffix == "M") {
        value <<= 20;
    } else if (suffix == "G") {
        value <<= 30;
    } else if (!suffix.empty()) {
        throw UsageError(fmt::format("record: --subbuf-size {}: not a size (e.g. 512k, 2M)", text));
    }
    if (!power_of_two(value) || value < 4096) {
        throw UsageError(fmt::format("record: --subbuf-size {}: must be a power of two of at least 4k", text));
    }
    return value;
}

std::string size_text(std::uint64_t bytes) {
    if (bytes % (1 << 30) == 0) {
        return fmt::format("{}G", bytes >> 30);
    }
    if (bytes % (1 << 20) == 0) {
        return fmt::format("{}M", bytes >> 20);
    }
    if (bytes % (1 << 10) == 0) {
        return fmt::format("{}k", bytes >> 10);
    }
    return std::to_string(bytes);
}

// One word for a POSIX shell.
std::string shell_quote(const std::string& word) {
    if (!word.empty() &&
        word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,@%+") ==
            std::string::npos) {
        return word;
    }
    std::string out = "'";
    for (const char c : word) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

std::string command_line(const std::vector<std::string>& words) {
    std::string line;
    for (const std::string& w : words) {
        line += (line.empty() ? "" : " ") + shell_quote(w);
    }
    return line;
}

// The lttng commands that do what `run` does.
std::vector<std::string> lttng_commands(const Plan& plan) {
    std::vector<std::string> lines;
    std::vector<std::string> create = {"lttng", "create", plan.session};
    if (plan.output) {
        create.push_back("--output=" + *plan.output);
    }
    if (plan.live_timer_us) {
        create.push_back(fmt::format("--live={}", *plan.live_timer_us));
    }
    if (plan.url) {
        create.push_back("--set-url=" + *plan.url);
    }
    lines.push_back(command_line(create));
    const std::string session = "--session=" + plan.session;
    const std::string domain = plan.ust ? "--userspace" : "--kernel";
    for (const ChannelPlan& ch : plan.channels) {
        std::vector<std::string> channel = {"lttng", "enable-channel", domain, session};
        if (plan.ust) {
            channel.push_back(plan.per_pid_buffers ? "--buffers-pid" : "--buffers-uid");
            if (plan.blocking_timeout_us) {
                channel.push_back(*plan.blocking_timeout_us < 0
                                      ? std::string("--blocking-timeout=inf")
                                      : fmt::format("--blocking-timeout={}", *plan.blocking_timeout_us));
            }
        }
        channel.insert(channel.end(), {"--subbuf-size=" + size_text(ch.subbuf_size),
                                       fmt::format("--num-subbuf={}", ch.num_subbuf), ch.name});
        lines.push_back(command_line(channel));
        lines.push_back(command_line({"lttng", "enable-event", domain, session, "--channel=" + ch.name,
                                      fmt::format("{}", fmt::join(ch.events, ","))}));
        if (!plan.contexts.empty()) {
            std::vector<std::string> words = {"lttng", "add-context", domain, session, "--channel=" + ch.name};
            for (const std::string& c : plan.contexts) {
                words.push_back("--type=" + c);
            }
            lines.push_back(command_line(words));
        }
    }
    if (plan.start) {
        lines.push_back(command_line({"lttng", "start", plan.session}));
    }
    return lines;
}

std::string kernel_tracer_hint() {
    std::error_code ec;
    if (!fs::exists("/proc/modules", ec)) {
        return "this kernel has no loadable module support, so lttng-modules cannot load";
    }
    return "lttng-modules is not loaded or not built for this kernel (`vmtrace modules status`; lttng-sessiond "
           "loads it at start when run as root)";
}

// One line for an lttng error code, naming what was being done.
[[noreturn]] void refuse(const Plan& plan, const std::string& doing, int code) {
    const int err = code < 0 ? -code : code;
    std::string why = lttng_strerror(-err);
    switch (err) {
    case LTTNG_ERR_KERN_NA:
        why = fmt::format("the kernel tracer is unavailable: {}", kernel_tracer_hint());
        break;
    case LTTNG_ERR_NEED_ROOT_SESSIOND:
    case LTTNG_ERR_EPERM:
        why = "kernel tracing needs a root lttng-sessiond, and a client that is root or in the `tracing` group";
        break;
    case LTTNG_ERR_NO_SESSIOND:
        why = plan.ust ? "no lttng-sessiond is running for this user: start one (`lttng-sessiond --daemonize`; "
                         "user-space tracing needs no root)"
                       : "no lttng-sessiond is running: start one as root (`lttng-sessiond --daemonize`)";
        break;
    case LTTNG_ERR_FATAL:
        if (plan.ust) {
            break;
        }
        why = fmt::format("the session daemon failed ({}); with a kernel channel, that is often the kernel tracer: {}",
                          why, kernel_tracer_hint());
        break;
    case LTTNG_ERR_EXIST_SESS:
        why =
            fmt::format("a session of that name exists: choose another --session or `lttng destroy {}`", plan.session);
        break;
    default:
        break;
    }
    throw SystemError(fmt::format("session {}: cannot {}: {}", plan.session, doing, why));
}

// Destroys the session unless released: a failed setup leaves nothing behind.
class SessionGuard {
public:
    explicit SessionGuard(std::string name) : name_(std::move(name)) {}
    ~SessionGuard() {
        if (!released_) {
            lttng_destroy_session(name_.c_str());
        }
    }
    SessionGuard(const SessionGuard&) = delete;
    SessionGuard& operator=(const SessionGuard&) = delete;
    void release() { released_ = true; }

private:
    std::string name_;
    bool released_ = false;
};

struct HandleRef {
    lttng_handle* handle = nullptr;
    ~HandleRef() {
        if (handle != nullptr) {
            lttng_destroy_handle(handle);
        }
    }
};

// Where the session writes, as lttng lists it.
std::string session_output(const std::string& name) {
    lttng_session* sessions = nullptr;
    const int n = lttng_list_sessions(&sessions);
    std::string path;
    for (int i = 0; i < n; ++i) {
        if (name == sessions[i].name) {
            path = sessions[i].path;
        }
    }
    std::free(sessions);
    return path;
}

// What a user-space channel adds to its description.
std::string channel_traits(const Plan& plan) {
    if (!plan.ust) {
        return "";
    }
    std::string traits = plan.per_pid_buffers ? ", per process" : ", per user";
    if (plan.blocking_timeout_us) {
        traits += *plan.blocking_timeout_us < 0 ? std::string(", blocking")
                                                : fmt::format(", blocking up to {} us", *plan.blocking_timeout_us);
    }
    return traits;
}

void run(const Plan& plan) {
    // liblttng-ctl writes to the session daemon's socket: a daemon that
    // closes it must give an error code, not kill us (lttng does the same).
    std::signal(SIGPIPE, SIG_IGN);
    // One line per failure: ours.  VMTRACE_VERBOSE=1 keeps liblttng-ctl's.
    if (&lttng_opt_quiet != nullptr && std::getenv("VMTRACE_VERBOSE") == nullptr) {
        lttng_opt_quiet = 1;
    }
    const int alive = lttng_session_daemon_alive();
    if (alive != 1) {
        refuse(plan, "be created", LTTNG_ERR_NO_SESSIOND);
    }
    lttng_domain domain{};
    domain.type = plan.ust ? LTTNG_DOMAIN_UST : LTTNG_DOMAIN_KERNEL;
    domain.buf_type = !plan.ust              ? LTTNG_BUFFER_GLOBAL
                      : plan.per_pid_buffers ? LTTNG_BUFFER_PER_PID
                                             : LTTNG_BUFFER_PER_UID;
    // Ask the kernel tracer for its events before creating anything: this
    // tells a missing tracer or a non-root daemon cleanly, and which of the
    // events no loaded probe offers yet.  User space has nothing to ask: the
    // memory tracer's process registers its events when it starts, usually
    // after the session is set up.
    if (!plan.ust) {
        HandleRef list_handle{lttng_create_handle(nullptr, &domain)};
        if (list_handle.handle == nullptr) {
            refuse(plan, "be created", LTTNG_ERR_NOMEM);
        }
        lttng_event* offered = nullptr;
        const int n = lttng_list_tracepoints(list_handle.handle, &offered);
        if (n < 0) {
            refuse(plan, "be created", n);
        }
        std::vector<std::string> missing;
        for (const ChannelPlan& ch : plan.channels) {
            for (const std::string& name : ch.events) {
                bool found = false;
                for (int i = 0; i < n && !found; ++i) {
                    found = fnmatch(name.c_str(), offered[i].name, 0) == 0;
                }
                if (!found) {
                    missing.push_back(name);
                }
            }
        }
        std::free(offered);
        if (!missing.empty()) {
            std::cerr << fmt::format(
                "vmtrace record: warning: the kernel offers no {} yet (load them with `vmtrace "
                "modules load --{}`; the session records them once their probe loads)\n",
                fmt::join(missing, ", "), plan.side);
        }
    }

    // What lttng create does: a descriptor for a local, network or live session.
    lttng_session_descriptor* descriptor = nullptr;
    if (plan.live_timer_us) {
        descriptor = lttng_session_descriptor_live_network_create(plan.session.c_str(), plan.url->c_str(), nullptr,
                                                                  *plan.live_timer_us);
    } else if (plan.url) {
        descriptor = lttng_session_descriptor_network_create(plan.session.c_str(), plan.url->c_str(), nullptr);
    } else {
        // Without --output: lttng's default, $LTTNG_HOME/lttng-traces/SESSION-DATE-TIME.
        descriptor =
            lttng_session_descriptor_local_create(plan.session.c_str(), plan.output ? plan.output->c_str() : nullptr);
    }
    if (descriptor == nullptr) {
        throw UsageError(fmt::format("record: session {}: lttng refuses this output ({})", plan.session,
                                     plan.url ? *plan.url : plan.output.value_or("default")));
    }
    const lttng_error_code created = lttng_create_session_ext(descriptor);
    lttng_session_descriptor_destroy(descriptor);
    if (created != LTTNG_OK) {
        refuse(plan, "be created", created);
    }
    int ret = 0;
    SessionGuard guard(plan.session);

    HandleRef handle{lttng_create_handle(plan.session.c_str(), &domain)};
    const std::string_view domain_name = plan.ust ? "user-space" : "kernel";
    if (handle.handle == nullptr) {
        refuse(plan, fmt::format("get a {} domain handle", domain_name), LTTNG_ERR_NOMEM);
    }

    for (const ChannelPlan& ch : plan.channels) {
        lttng_channel* channel = lttng_channel_create(&domain);
        if (channel == nullptr) {
            refuse(plan, "describe the channel", LTTNG_ERR_NOMEM);
        }
        std::strncpy(channel->name, ch.name.c_str(), sizeof(channel->name) - 1);
        channel->attr.subbuf_size = ch.subbuf_size;
        channel->attr.num_subbuf = ch.num_subbuf;
        channel->attr.overwrite = 0;  // discard mode: lost events are counted, never overwritten
        if (plan.blocking_timeout_us) {
            ret = lttng_channel_set_blocking_timeout(channel, *plan.blocking_timeout_us);
            if (ret < 0) {
                lttng_channel_destroy(channel);
                refuse(plan, "set the channel's blocking timeout", ret);
            }
        }
        ret = lttng_enable_channel(handle.handle, channel);
        lttng_channel_destroy(channel);
        if (ret < 0) {
            refuse(plan, fmt::format("enable {} channel {}", domain_name, ch.name), ret);
        }

        for (const std::string& name : ch.events) {
            lttng_event* event = lttng_event_create();
            if (event == nullptr) {
                refuse(plan, "describe an event", LTTNG_ERR_NOMEM);
            }
            std::strncpy(event->name, name.c_str(), sizeof(event->name) - 1);
            event->type = LTTNG_EVENT_TRACEPOINT;
            event->loglevel_type = LTTNG_EVENT_LOGLEVEL_ALL;
            ret = lttng_enable_event(handle.handle, event, ch.name.c_str());
            lttng_event_destroy(event);
            if (ret < 0) {
                refuse(plan, fmt::format("enable {} event {}", domain_name, name), ret);
            }
        }

        for (const std::string& name : plan.contexts) {
            lttng_event_context context{};
            context.ctx = (plan.ust ? kUstContexts : kContexts).at(name);
            ret = lttng_add_context(handle.handle, &context, nullptr, ch.name.c_str());
            if (ret < 0) {
                refuse(plan, fmt::format("add context {}", name), ret);
            }
        }
    }

    if (plan.start) {
        ret = lttng_start_tracing(plan.session.c_str());
        if (ret < 0) {
            refuse(plan, "start", ret);
        }
    }
    guard.release();

    const std::string where = plan.url ? *plan.url : session_output(plan.session);
    std::vector<std::string> channels;
    for (const ChannelPlan& ch : plan.channels) {
        channels.push_back(fmt::format("{} channel {} ({} x {} per CPU{}), {} events", domain_name, ch.name,
                                       ch.num_subbuf, size_text(ch.subbuf_size), channel_traits(plan),
                                       ch.events.size()));
    }
    std::cout << fmt::format("session {}: {}{}; traces to {}\n", plan.session, fmt::join(channels, "; "),
                             plan.contexts.empty() ? "" : fmt::format(", contexts {}", fmt::join(plan.contexts, ",")),
                             where);
    std::cout << (plan.start
                      ? fmt::format("recording; stop with `lttng stop {0}`, then `lttng destroy {0}`\n", plan.session)
                      : fmt::format("not started: `lttng start {}`\n", plan.session));
}

}  // namespace

int record_command(const std::vector<std::string>& args) {
    po::options_description options("options");
    options.add_options()("help,h", "show this help")(
        "session,s", po::value<std::string>(), "session name (default vmtrace-host, vmtrace-guest or vmtrace-memory)")(
        "output,o", po::value<std::string>(),
        "local trace directory (default: lttng's, $LTTNG_HOME/lttng-traces/SESSION-DATE-TIME)")(
        "url", po::value<std::string>(), "send the trace to lttng-relayd at this URL (net://HOST[:CTRL[:DATA]])")(
        "relayd", po::value<std::string>(), "the same as --url (a guest streaming to its host's relay daemon)")(
        "live",
        "live session, readable while it records (src.ctf.lttng-live); relayd at --url, default net://127.0.0.1")(
        "live-timer-us", po::value<std::int64_t>(), "live flush period in microseconds (default 1000000)")(
        "channel", po::value<std::string>()->default_value("vmtrace"), "channel name")(
        "single-channel",
        "host, guest: the vmsync and VM identity events in the main channel too, not in a channel `vmsync` of "
        "their own")("subbuf-size", po::value<std::string>(),
                     "sub-buffer size, power of two (default: host 2M, guest 1M, memory 4M)")(
        "num-subbuf", po::value<std::int64_t>(),
        "sub-buffers per CPU, power of two (default: host 8, guest 4, memory 8)")(
        "buffers", po::value<std::string>(),
        "memory: `uid` (default) or `pid`, lttng's per-user or per-process buffers")(
        "blocking-timeout-us", po::value<std::string>(),
        "memory: a full buffer makes the tracer wait up to N us (or `inf`) instead of dropping the record "
        "(the tracer needs LTTNG_UST_ALLOW_BLOCKING=1)")(
        "context", po::value<std::vector<std::string>>(),
        "add this context to every event (repeatable; default tid, memory none; `none` for no context)")(
        "start", "start recording once the session is set up")(
        "dry-run", "print the equivalent lttng commands, one per line, and do nothing");
    po::options_description hidden;
    hidden.add_options()("side", po::value<std::vector<std::string>>(), "");
    po::options_description all;
    all.add(options).add(hidden);
    po::positional_options_description positional;
    positional.add("side", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0) {
        std::cout << "usage: vmtrace record host|guest|memory [options]\n\n"
                  << options << "\n"
                  << "Sets up an LTTng recording session with the events vmtrace reads on that side\n"
                  << "(docs/events.json): host = vmtrace's host module events, sched_switch, sched_migrate_task,\n"
                  << "lttng_statedump_*; guest = the guest module's events and the same LTTng events.\n"
                  << "host and guest need a root lttng-sessiond with lttng-modules and vmtrace's module loaded\n"
                  << "(`vmtrace modules load --host|--guest`).  memory = a user-space session with the\n"
                  << "vmtrace_mem events of a memory tracer linking libvmtrace-mem (docs/memory-tracing.md);\n"
                  << "any user's lttng-sessiond will do.\n\n"
                  << "exit status: 0 done, 2 bad usage, 4 the system refused (no session daemon, kernel tracer\n"
                  << "unavailable, permission, existing session): one line says which; nothing is left behind\n";
        return 0;
    }
    const auto sides = vm.count("side") != 0 ? vm["side"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (sides.size() != 1 || (sides[0] != "host" && sides[0] != "guest" && sides[0] != "memory")) {
        throw UsageError(sides.empty() ? std::string("record needs a side: host, guest or memory")
                                       : fmt::format("record: `{}`: the side is host, guest or memory, once",
                                                     fmt::join(sides, " ")));
    }
    Plan plan;
    plan.side = sides[0];
    const bool host = plan.side == "host";
    plan.ust = plan.side == "memory";
    plan.session = vm.count("session") != 0 ? vm["session"].as<std::string>() : "vmtrace-" + plan.side;
    // lttng takes a name starting with `-` for an option (`lttng create --help`).
    if (plan.session.empty() || plan.session.find('/') != std::string::npos || plan.session.front() == '-' ||
        plan.session.front() == '.' || plan.session.size() >= LTTNG_NAME_MAX ||
        plan.session.find_first_of(" \t\n") != std::string::npos) {
        throw UsageError(fmt::format(
            "record: `{}` is not a session name (no `/` or blank, not starting with `-` or `.`, under {} bytes)",
            plan.session, LTTNG_NAME_MAX));
    }
    if (vm.count("output") != 0) {
        plan.output = fs::absolute(vm["output"].as<std::string>()).lexically_normal().string();
    }
    if (vm.count("url") != 0 && vm.count("relayd") != 0) {
        throw UsageError("record: --url and --relayd are the same option: give one");
    }
    if (vm.count("url") != 0 || vm.count("relayd") != 0) {
        plan.url = vm[vm.count("url") != 0 ? "url" : "relayd"].as<std::string>();
        if (plan.url->rfind("net://", 0) != 0 && plan.url->rfind("net6://", 0) != 0 &&
            plan.url->rfind("tcp://", 0) != 0 && plan.url->rfind("tcp6://", 0) != 0) {
            throw UsageError(
                fmt::format("record: --url {}: an lttng-relayd URL is net://HOST[:CTRL[:DATA]]", *plan.url));
        }
    }
    if (vm.count("live") != 0) {
        // Read signed: boost reads `-1` as an unsigned 4294967295.
        const std::int64_t timer =
            vm.count("live-timer-us") != 0 ? vm["live-timer-us"].as<std::int64_t>() : kDefaultLiveTimerUs;
        if (timer <= 0 || timer > std::numeric_limits<unsigned>::max()) {
            throw UsageError(fmt::format("record: --live-timer-us {}: must be between 1 and {}", timer,
                                         std::numeric_limits<unsigned>::max()));
        }
        plan.live_timer_us = static_cast<unsigned>(timer);
        if (!plan.url) {
            plan.url = kDefaultRelayd;
        }
    } else if (vm.count("live-timer-us") != 0) {
        throw UsageError("record: --live-timer-us needs --live");
    }
    if (plan.output && plan.url) {
        throw UsageError("record: --output and --url/--live exclude each other (lttng-relayd chooses where it writes)");
    }
    ChannelPlan primary;
    primary.name = vm["channel"].as<std::string>();
    if (primary.name.empty() || primary.name.size() >= LTTNG_SYMBOL_NAME_LEN) {
        throw UsageError(fmt::format("record: `{}` is not a channel name", primary.name));
    }
    const bool single_channel = plan.ust || vm.count("single-channel") != 0;
    if (vm.count("single-channel") != 0 && plan.ust) {
        throw UsageError("record: --single-channel is for host and guest (`record memory` has one channel)");
    }
    if (!single_channel && primary.name == kVmsyncChannel) {
        throw UsageError(
            fmt::format("record: channel `{}` is the vmsync channel's name: choose another, or "
                        "--single-channel",
                        primary.name));
    }
    // memory: a tracer recording every access writes ~7 M records per
    // CPU-second, 28 bytes each; 8 x 4M per CPU holds 1.2 M of them (~0.17 s)
    // while the consumer daemon writes them out (docs/memory-tracing.md).
    primary.subbuf_size = vm.count("subbuf-size") != 0 ? parse_size(vm["subbuf-size"].as<std::string>())
                          : plan.ust                   ? 4u << 20
                          : host                       ? 2u << 20
                                                       : 1u << 20;
    const std::int64_t num_subbuf =
        vm.count("num-subbuf") != 0 ? vm["num-subbuf"].as<std::int64_t>() : (host || plan.ust ? 8 : 4);
    if (num_subbuf < 2 || !power_of_two(static_cast<std::uint64_t>(num_subbuf))) {
        throw UsageError(fmt::format("record: --num-subbuf {}: must be a power of two of at least 2", num_subbuf));
    }
    primary.num_subbuf = static_cast<std::uint64_t>(num_subbuf);
    if (vm.count("buffers") != 0) {
        const std::string buffers = vm["buffers"].as<std::string>();
        if (!plan.ust) {
            throw UsageError("record: --buffers is for `record memory` (kernel channels have global buffers)");
        }
        if (buffers != "uid" && buffers != "pid") {
            throw UsageError(fmt::format("record: --buffers {}: uid or pid", buffers));
        }
        plan.per_pid_buffers = buffers == "pid";
    } else {
        plan.per_pid_buffers = false;
    }
    if (vm.count("blocking-timeout-us") != 0) {
        const std::string text = vm["blocking-timeout-us"].as<std::string>();
        if (!plan.ust) {
            throw UsageError("record: --blocking-timeout-us is for `record memory` (kernel channels never block)");
        }
        if (text == "inf") {
            plan.blocking_timeout_us = -1;
        } else {
            // lttng takes up to INT32_MAX microseconds (lttng-enable-channel(1)).
            std::size_t used = 0;
            std::int64_t value = -1;
            try {
                value = std::stoll(text, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != text.size() || value < 0 || value > std::numeric_limits<std::int32_t>::max()) {
                throw UsageError(fmt::format("record: --blocking-timeout-us {}: 0..{} or inf", text,
                                             std::numeric_limits<std::int32_t>::max()));
            }
            plan.blocking_timeout_us = value;
        }
    }
    if (plan.ust) {
        // lttng-ust names an event `provider:event`.
        for (const schema::Event& event : schema::kEvents) {
            if (event.provider == kMemoryProvider) {
                primary.events.push_back(fmt::format("{}:{}", event.provider, event.name));
            }
        }
    } else {
        const std::span<const char* const> events =
            host ? std::span<const char* const>(kRecordHostEvents) : std::span<const char* const>(kRecordGuestEvents);
        const std::span<const char* const> sync_events = host ? std::span<const char* const>(kRecordHostSyncEvents)
                                                              : std::span<const char* const>(kRecordGuestSyncEvents);
        primary.events.assign(events.begin(), events.end());
        if (single_channel) {
            primary.events.insert(primary.events.end(), sync_events.begin(), sync_events.end());
        } else {
            plan.channels.push_back(ChannelPlan{kVmsyncChannel, kVmsyncSubbufSize, kVmsyncNumSubbuf,
                                                std::vector<std::string>(sync_events.begin(), sync_events.end())});
        }
    }
    plan.channels.insert(plan.channels.begin(), std::move(primary));
    const auto& contexts = plan.ust ? kUstContexts : kContexts;
    plan.contexts = vm.count("context") != 0 ? vm["context"].as<std::vector<std::string>>()
                    : plan.ust               ? std::vector<std::string>{}
                                             : std::vector<std::string>{"tid"};
    if (plan.contexts == std::vector<std::string>{"none"}) {
        plan.contexts.clear();
    }
    std::set<std::string> seen;
    for (const std::string& c : plan.contexts) {
        if (c == "none") {
            throw UsageError("record: --context none means no context: it goes alone");
        }
        if (!seen.insert(c).second) {
            throw UsageError(fmt::format("record: --context {} given twice", c));
        }
        if (contexts.count(c) == 0) {
            std::vector<std::string> names;
            for (const auto& [name, type] : contexts) {
                names.push_back(name);
            }
            throw UsageError(fmt::format("record: unknown {}context `{}` (one of: {}, none)",
                                         plan.ust ? "user-space " : "", c, fmt::join(names, ", ")));
        }
    }
    plan.start = vm.count("start") != 0;

    if (vm.count("dry-run") != 0) {
        for (const std::string& line : lttng_commands(plan)) {
            std::cout << line << "\n";
        }
        return 0;
    }
    run(plan);
    return 0;
}

}  // namespace vmtrace::cli
