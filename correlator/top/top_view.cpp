// SPDX-License-Identifier: MIT
#include "top/top_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace vmtrace::cli::top {
namespace {

double number(const nlohmann::json& j, const char* key) {
    const auto found = j.find(key);
    return found != j.end() && found->is_number() ? found->get<double>() : 0.0;
}

std::string text(const nlohmann::json& j, const char* key, const char* fallback = "") {
    const auto found = j.find(key);
    return found != j.end() && found->is_string() ? found->get<std::string>() : fallback;
}

// The sync filter's view of the guest with `vm_uid`: its machine entry
// and whether its input is stale.
nlohmann::json sync_of(const nlohmann::json& sync, const nlohmann::json& vm) {
    if (!sync.is_object() || !vm.contains("vm_uid") || !vm["vm_uid"].is_string()) {
        return nullptr;
    }
    const std::string uid = vm["vm_uid"].get<std::string>();
    for (const auto& m : sync.value("machines", nlohmann::json::array())) {
        if (m.value("vm_uid", "") != uid) {
            continue;
        }
        bool stale = false;
        for (const auto& in : sync.value("inputs", nlohmann::json::array())) {
            stale = stale || (in.value("trace", nlohmann::json()).is_string() &&
                              in["trace"].get<std::string>() == m.value("name", "") && in.value("stale", false));
        }
        return {{"quality", m.value("quality", "unknown")},
                {"accuracy_ns", m.value("accuracy_ns", nlohmann::json())},
                {"mode", m.value("mode", "unknown")},
                {"stale", stale}};
    }
    return nullptr;
}

std::string clock_of(std::int64_t ns) {
    const std::time_t seconds = static_cast<std::time_t>(ns / 1'000'000'000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return fmt::format("{}.{:03}", buf, (ns / 1'000'000) % 1000);
}

std::string microseconds(std::int64_t ns) {
    return ns >= 10'000'000 ? fmt::format("{:.0f}ms", static_cast<double>(ns) / 1e6)
                            : fmt::format("{:.1f}", static_cast<double>(ns) / 1e3);
}

double sort_value(const nlohmann::json& vcpu, SortKey key) {
    const nlohmann::json& pct = vcpu["state_pct"];
    switch (key) {
    case SortKey::vcpu:
        return -number(vcpu, "vcpu");
    case SortKey::guest:
        return number(pct, "guest");
    case SortKey::hypervisor:
        return number(pct, "hypervisor");
    case SortKey::preempted:
        return number(pct, "preempted");
    case SortKey::idle:
        return number(pct, "idle");
    case SortKey::exits:
        return number(vcpu, "exits_per_s");
    }
    return 0;
}

}  // namespace

const char* to_string(SortKey key) {
    switch (key) {
    case SortKey::vcpu:
        return "vcpu";
    case SortKey::guest:
        return "guest%";
    case SortKey::hypervisor:
        return "hyp%";
    case SortKey::preempted:
        return "preempted%";
    case SortKey::idle:
        return "idle%";
    case SortKey::exits:
        return "exits/s";
    }
    return "?";
}

SortKey next(SortKey key) {
    return key == SortKey::exits ? SortKey::vcpu : static_cast<SortKey>(static_cast<int>(key) + 1);
}

nlohmann::json frame_json(const Frame& frame) {
    nlohmann::json out = frame.snapshot;
    for (auto& vm : out["vms"]) {
        vm["sync"] = sync_of(frame.sync, vm);
    }
    out["delay_ns"] = frame.delay_ns ? nlohmann::json(*frame.delay_ns) : nlohmann::json(nullptr);
    if (frame.sync.is_object()) {
        nlohmann::json stale = nlohmann::json::array();
        for (const auto& in : frame.sync.value("inputs", nlohmann::json::array())) {
            if (in.value("stale", false)) {
                stale.push_back({{"trace", in.value("trace", nlohmann::json())},
                                 {"source", in.value("source", in.value("input", ""))}});
            }
        }
        out["stale_inputs"] = std::move(stale);
    }
    return out;
}

std::vector<std::string> vm_names(const Frame& frame) {
    std::vector<std::string> names;
    for (const auto& vm : frame.snapshot.value("vms", nlohmann::json::array())) {
        names.push_back(text(vm, "name"));
    }
    return names;
}

std::vector<Line> render(const Frame& frame, const ViewOptions& view) {
    const nlohmann::json& s = frame.snapshot;
    std::vector<Line> lines;
    const std::int64_t begin = s.value("begin_ns", std::int64_t{0});
    const std::int64_t end = s.value("end_ns", std::int64_t{0});
    std::string title = fmt::format("vmtrace top  {} - {} ({:.2f} s){}  sort {}", clock_of(begin), clock_of(end),
                                    static_cast<double>(s.value("covered_ns", end - begin)) / 1e9,
                                    s.value("final", false) ? " final" : "", to_string(view.sort));
    if (frame.delay_ns) {
        title += fmt::format("  delay {:.1f} s", static_cast<double>(*frame.delay_ns) / 1e9);
    }
    if (!view.vm.empty()) {
        title += fmt::format("  VM {}", view.vm);
    }
    if (view.frozen) {
        title += "  FROZEN";
    }
    lines.push_back({Line::Kind::title, title});

    // Traces: rates, LTTng's discarded events (red), stale inputs.
    std::vector<std::string> stale;
    if (frame.sync.is_object()) {
        for (const auto& in : frame.sync.value("inputs", nlohmann::json::array())) {
            if (in.value("stale", false)) {
                stale.push_back(in.value("trace", nlohmann::json()).is_string() ? in["trace"].get<std::string>()
                                                                                : text(in, "input"));
            }
        }
    }
    const double covered = std::max(static_cast<double>(s.value("covered_ns", std::int64_t{1})) / 1e9, 1e-9);
    for (const auto& t : s.value("traces", nlohmann::json::array())) {
        const std::string name = text(t, "name");
        const auto discarded = t.value("discarded", std::uint64_t{0});
        const auto discarded_total = t.value("discarded_total", std::uint64_t{0});
        const bool is_stale = std::find(stale.begin(), stale.end(), name) != stale.end();
        std::string line = fmt::format("  {:<28} {:>10.0f} events/s  {:>12} events", name,
                                       static_cast<double>(t.value("events", std::uint64_t{0})) / covered,
                                       t.value("events_total", std::uint64_t{0}));
        if (!t.value("analysed", true)) {
            line += fmt::format("  ({} trace: counted only)", text(t, "domain", "?"));
        }
        if (discarded_total > 0) {
            line += fmt::format("  DISCARDED {} (+{} now)", discarded_total, discarded);
        }
        if (is_stale) {
            line += "  STALE: no data";
        }
        lines.push_back({discarded_total > 0 || is_stale ? Line::Kind::alert : Line::Kind::text, line});
    }

    const std::string header = fmt::format(
        "  {:>4} {:>7} {:>4} {:>6} {:>6} {:>6} {:>6} {:>9}  {:<44} {:<22} {:>6} {:>6}", "VCPU", "TID", "PCPU", "GUEST%",
        "HYP%", "PREE%", "IDLE%", "EXITS/s", "TOP EXITS /s (p50/p99 us)", "GUEST THREAD (%)", "MIGR/s", "GMIG/s");
    bool any = false;
    for (const auto& vm : s.value("vms", nlohmann::json::array())) {
        const std::string name = text(vm, "name");
        if (!view.vm.empty() && name != view.vm) {
            continue;
        }
        any = true;
        const nlohmann::json sync = sync_of(frame.sync, vm);
        std::string sync_text = "no guest trace";
        bool alert = false;
        if (sync.is_object()) {
            sync_text = fmt::format("sync {}", sync["quality"].get<std::string>());
            if (sync["accuracy_ns"].is_number() && sync["accuracy_ns"].get<double>() >= 0) {
                sync_text += fmt::format(" +-{:.0f} ns", sync["accuracy_ns"].get<double>());
            }
            if (sync["stale"].get<bool>()) {
                sync_text += ", STALE";
                alert = true;
            }
        } else if (vm.value("guest_trace", nlohmann::json()).is_string()) {
            sync_text = "synchronised";
        }
        lines.push_back({alert ? Line::Kind::alert : Line::Kind::vm,
                         fmt::format("VM {}  vm_uid {}  {}  exits {:.0f}/s  vCPUs {}", name,
                                     vm.value("vm_uid", nlohmann::json()).is_string() ? text(vm, "vm_uid") : "-",
                                     sync_text, number(vm, "exits_per_s"), vm["vcpus"].size())});
        lines.push_back({Line::Kind::table_header, header});
        std::vector<nlohmann::json> vcpus(vm["vcpus"].begin(), vm["vcpus"].end());
        std::stable_sort(vcpus.begin(), vcpus.end(), [&](const nlohmann::json& a, const nlohmann::json& b) {
            return sort_value(a, view.sort) > sort_value(b, view.sort);
        });
        for (const auto& v : vcpus) {
            std::string exits;
            int shown = 0;
            for (const auto& e : v["exit_reasons"]) {
                if (shown++ == 2) {
                    break;
                }
                exits += fmt::format("{}{} {:.0f} ({}/{})", exits.empty() ? "" : ", ", text(e, "reason"),
                                     number(e, "per_s"), microseconds(e.value("p50_ns", std::int64_t{0})),
                                     microseconds(e.value("p99_ns", std::int64_t{0})));
            }
            std::string thread = "-";
            if (v["top_guest_thread"].is_object()) {
                const auto& g = v["top_guest_thread"];
                thread =
                    fmt::format("{}/{} ({:.0f}%)", text(g, "comm"), g.value("tid", std::int64_t{0}), number(g, "pct"));
            }
            const auto& pct = v["state_pct"];
            lines.push_back(
                {Line::Kind::row,
                 fmt::format("  {:>4} {:>7} {:>4} {:>6.1f} {:>6.1f} {:>6.1f} {:>6.1f} {:>9.0f}  {:<44.44} {:<22.22} "
                             "{:>6.1f} {:>6.1f}",
                             v.value("vcpu", 0), v.value("tid", std::int64_t{0}),
                             v.value("pcpu", -1) >= 0 ? std::to_string(v.value("pcpu", -1)) : std::string("-"),
                             number(pct, "guest"), number(pct, "hypervisor"), number(pct, "preempted"),
                             number(pct, "idle"), number(v, "exits_per_s"), exits, thread,
                             number(v, "migrations_per_s"), number(v, "guest_migrations_per_s"))});
        }
    }
    if (!any) {
        lines.push_back({Line::Kind::text, view.vm.empty()
                                               ? "  no vCPU seen yet (no KVM event in the host trace)"
                                               : fmt::format("  VM {}: no vCPU in this interval", view.vm)});
    }
    return lines;
}

}  // namespace vmtrace::cli::top
