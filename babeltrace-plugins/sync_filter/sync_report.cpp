// SPDX-License-Identifier: MIT
// filter.vmtrace.sync: the statistics file and the summary.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "bt2/error.hpp"
#include "sync_filter/sync_state.hpp"

namespace vmtrace::plugin::syncfilter {
SyncQuality reported_quality(const SyncConfig& config, const Machine& guest) {
    if (guest.pairing == nullptr) {
        return SyncQuality::absent;
    }
    const sync::VmPairing& pairing = *guest.pairing;
    const std::uint64_t matched = pairing.guest_to_host_matches() + pairing.host_to_guest_matches();
    if (matched > 0 &&
        static_cast<double>(pairing.anomalies().rejected) > config.max_rejected_ratio * static_cast<double>(matched)) {
        return SyncQuality::fail;
    }
    return pairing.quality();
}

// The time range (own clock) a guest's output covers: the one the command
// gave for its source (parameter `ranges`), else what was read of it.
static std::pair<std::int64_t, std::int64_t> range_of(const SyncConfig& config, const Machine& m) {
    if (const auto given = config.ranges.find(m.source); given != config.ranges.end()) {
        return {std::min(given->second.first, m.first_time), std::max(given->second.second, m.last_time)};
    }
    return {m.first_time, m.last_time};
}

// The largest error bound of the final transform over the guest's range:
// the estimator's over its messages (at the hull vertices) and at both
// ends of the range, where extrapolation makes it grow.
static std::int64_t bound_over_range(const SyncConfig& config, const Machine& m) {
    const clocksync::ClockEstimator& estimator = m.pairing->estimator();
    std::int64_t bound = estimator.report().accuracy_ns;
    const auto [begin, end] = range_of(config, m);
    if (bound < 0 || begin > end) {
        return bound;
    }
    for (const std::int64_t at : {begin, end}) {
        const std::int64_t b = estimator.bound_at(at);
        if (b < 0) {
            return -1;
        }
        bound = std::max(bound, b);
    }
    return bound;
}

static nlohmann::json statistics(const SyncIterator& it) {
    const SyncConfig& config = it.component->config;
    nlohmann::json stats;
    stats["window_ns"] = config.window_ns;
    stats["prefetch_ns"] = config.prefetch_ns;
    stats["window_truncations"] = it.window_truncations;
    stats["estimate_only"] = config.estimate_only;
    stats["dropped_inactivity_messages"] = it.dropped_inactivity;
    nlohmann::json machines = nlohmann::json::array();
    for (const auto& m : it.machines) {
        nlohmann::json j{{"name", m->name},
                         {"source", m->source},
                         {"role", role_name(m->role)},
                         {"events_in", m->events_in},
                         {"events_out", m->events_out},
                         {"messages_in", m->messages_in},
                         {"messages_out", m->messages_out}};
        if (m->role != Role::host) {
            j["mode"] = m->mode == GuestMode::rewrite ? "synchronized" : "unchanged";
            j["quality"] = clocksync::to_string(reported_quality(config, *m));
            if (m->pairing != nullptr) {
                const auto& pairing = *m->pairing;
                const clocksync::EstimatorReport report = pairing.estimator().report();
                const auto& t = report.transform;
                // The key of the handshakes: a VM's vm_uid, a tracer's page.
                j[std::string(pairing.handshake().key_name)] = fmt::format("{:#x}", pairing.vm_uid());
                j["method"] = report.method;
                j["matches"] = {{"guest_to_host", pairing.guest_to_host_matches()},
                                {"host_to_guest", pairing.host_to_guest_matches()}};
                j["sync_events"] = {{"guest", pairing.guest_events()}, {"host", pairing.host_events()}};
                for (const clocksync::EstimatorFigure& figure : report.figures) {
                    j[figure.name] = {{"guest_to_host", figure.guest_to_host}, {"host_to_guest", figure.host_to_guest}};
                }
                j["transform"] = {{"x0_ns", t.x0},
                                  {"y0_ns", t.y0},
                                  {"slope_num", clocksync::to_string(t.slope_num)},
                                  {"slope_den", clocksync::to_string(t.slope_den)},
                                  {"slope", t.slope()},
                                  {"drift_ppm", (t.slope() - 1.0) * 1e6},
                                  {"offset_ns", t.offset_at_reference()}};
                j["accuracy_ns"] = report.accuracy_ns;
                if (m->first_time <= m->last_time) {
                    const auto [begin, end] = range_of(config, *m);
                    j["range_ns"] = {begin, end};
                    j["bound_over_range_ns"] = bound_over_range(config, *m);
                }
                j["anomalies"] = {{"duplicate_cnt", pairing.anomalies().duplicate_cnt},
                                  {"out_of_order_cnt", pairing.anomalies().out_of_order_cnt},
                                  {"unmatched", pairing.anomalies().unmatched + pairing.pending()},
                                  {"rejected", pairing.anomalies().rejected},
                                  {"first_rejected", pairing.anomalies().first_rejected},
                                  {"first", pairing.anomalies().first}};
            }
            j["sync_bound_env_ns"] = m->env_bound_ns;
            j["max_applied_bound_ns"] = m->max_applied_bound_ns;
            j["max_applied_bound_data_ns"] = m->max_applied_bound_data_ns;
            j["unbounded_events"] = m->unbounded_events;
            j["clamped_events"] = m->clamped;
            j["max_clamp_ns"] = m->max_clamp_ns;
            j["displaced_events"] = m->displaced;
            j["consistency"] = {{"checked", m->checked},
                                {"violations", m->violations},
                                {"unchecked", m->unchecked},
                                {"first_violation", m->first_violation}};
        }
        machines.push_back(j);
    }
    stats["machines"] = machines;
    nlohmann::json orphans = nlohmann::json::array();
    for (const auto& [vm_uid, pairing] : it.pairings) {
        bool has_guest = false;
        for (const auto& m : it.machines) {
            has_guest = has_guest || m->pairing == pairing.get();
        }
        if (!has_guest) {
            orphans.push_back({{"vm_uid", fmt::format("{:#x}", vm_uid)}, {"host_events", pairing->host_events()}});
        }
    }
    stats["vm_uids_without_guest_trace"] = orphans;
    nlohmann::json pages = nlohmann::json::array();
    for (const auto& [hpa, pairing] : it.memsync_pairings) {
        const bool has_tracer = std::any_of(it.machines.begin(), it.machines.end(),
                                            [&](const auto& m) { return m->pairing == pairing.get(); });
        if (!has_tracer) {
            pages.push_back({{"hpa", fmt::format("{:#x}", hpa)}, {"host_events", pairing->host_events()}});
        }
    }
    stats["memsync_hpas_without_tracer_trace"] = pages;
    stats["inputs_without_stream"] = it.empty_inputs;
    return stats;
}

void write_live_statistics(SyncIterator& it) {
    const SyncConfig& config = it.component->config;
    nlohmann::json out = statistics(it);
    out["live"] = true;
    nlohmann::json inputs = nlohmann::json::array();
    for (const Input& input : it.inputs) {
        inputs.push_back({{"input", input_description(input)},
                          {"component", input.upstream},
                          {"trace", input.last_machine != nullptr ? nlohmann::json(input.last_machine->name)
                                                                  : nlohmann::json(nullptr)},
                          {"ended", input.ended},
                          {"stale", input.stale},
                          {"stale_periods", input.stale_periods},
                          {"queued", input.queue.size()}});
    }
    out["inputs"] = std::move(inputs);
    // Replaced whole: a reader never sees half a file.
    const std::string part = config.stats_path + ".part";
    {
        std::ofstream file(part);
        file << out.dump(2) << '\n';
        if (!file) {
            throw bt2::Error(fmt::format("cannot write statistics file `{}`", part));
        }
    }
    if (std::rename(part.c_str(), config.stats_path.c_str()) != 0) {
        throw bt2::Error(fmt::format("cannot write statistics file `{}`: {}", config.stats_path, std::strerror(errno)));
    }
}

// Prints the summary, writes the statistics and returns the problems that
// make the output untrustworthy (empty when none).
std::vector<std::string> finish(SyncIterator& it) {
    const SyncConfig& config = it.component->config;
    const nlohmann::json stats = statistics(it);
    std::vector<std::string> warnings;
    std::vector<std::string> errors;
    for (const std::string& input : it.empty_inputs) {
        (config.live ? warnings : errors)
            .push_back(
                fmt::format("{} delivered no stream: its trace is missing from the output (a trace directory with "
                            "metadata but no stream files, or all of it filtered out upstream)",
                            input));
    }
    if (it.host == nullptr) {
        // Live, a session of user-space traces only (or a host that never
        // streamed) passes through unchanged: a live view counts it.
        (config.live ? warnings : errors)
            .push_back("no input trace is a KVM host (none declares vmsync_*_host or kvm entry/exit events)");
    }
    std::string text = "vmtrace sync summary\n";
    for (const auto& m : it.machines) {
        if (m->events_in != m->events_out && !config.estimate_only) {
            errors.push_back(fmt::format("{}: {} events in but {} out", trace_ref(*m), m->events_in, m->events_out));
        }
        if (m->role == Role::host) {
            text += config.estimate_only
                        ? fmt::format("  host  {}: {} events read\n", m->name, m->events_in)
                        : fmt::format("  host  {}: {} events passed through\n", m->name, m->events_out);
            continue;
        }
        const SyncQuality quality = reported_quality(config, *m);
        const bool tracer = m->role == Role::tracer;
        if (m->pairing == nullptr) {
            warnings.push_back(
                tracer ? fmt::format("{} (memory tracer) has no vmtrace_mem_sync events: passed through unchanged, "
                                     "NOT on the host time base (the tracer saw no clock mark stored by the host: "
                                     "is the host's memsync module loaded and the tracer watching its page?)",
                                     trace_ref(*m))
                       : fmt::format("{} has no vmsync events: passed through unchanged, NOT on the "
                                     "host time base (load the vmtrace guest module in that guest)",
                                     trace_ref(*m)));
            text += fmt::format("  {} {}: quality absent, {} events passed through unchanged\n",
                                tracer ? "memory tracer" : "guest", m->name,
                                config.estimate_only ? m->events_in : m->events_out);
            continue;
        }
        const auto& pairing = *m->pairing;
        const std::string_view family = pairing.handshake().family;
        const clocksync::EstimatorReport report = pairing.estimator().report();
        const auto& t = report.transform;
        std::string figures;
        for (const clocksync::EstimatorFigure& figure : report.figures) {
            figures +=
                fmt::format(", {} {}+{} {}", figure.label, figure.guest_to_host, figure.host_to_guest, figure.unit);
        }
        if (tracer) {
            text += fmt::format(
                "  memory tracer {} (hpa {:#x}): quality {}, {} tracer->host and {} host->tracer memsync marks "
                "matched ({}){}\n",
                m->name, pairing.vm_uid(), clocksync::to_string(quality), pairing.guest_to_host_matches(),
                pairing.host_to_guest_matches(), report.method, figures);
        } else {
            text += fmt::format(
                "  guest {} (vm_uid {:#x}): quality {}, {} guest->host and {} host->guest handshakes matched ({}){}\n",
                m->name, pairing.vm_uid(), clocksync::to_string(quality), pairing.guest_to_host_matches(),
                pairing.host_to_guest_matches(), report.method, figures);
        }
        if (m->mode == GuestMode::rewrite && config.estimate_only) {
            text += fmt::format(
                "        host = {} + {:.9f} s, drift {:+.3f} ppm; accuracy +-{} ns, +-{} ns over the trace's range "
                "(estimated from {} events read)\n",
                tracer ? "tracer" : "guest", static_cast<double>(t.offset_at_reference()) * 1e-9,
                (t.slope() - 1.0) * 1e6, report.accuracy_ns,
                m->first_time <= m->last_time ? bound_over_range(config, *m) : -1, m->events_in);
        } else if (m->mode == GuestMode::rewrite) {
            text += fmt::format(
                "        host = {} + {:.9f} s, drift {:+.3f} ppm; accuracy +-{} ns (largest bound applied "
                "+-{} ns, in the trace's environment +-{} ns)\n",
                tracer ? "tracer" : "guest", static_cast<double>(t.offset_at_reference()) * 1e-9,
                (t.slope() - 1.0) * 1e6, report.accuracy_ns, m->max_applied_bound_ns, m->env_bound_ns);
            if (tracer) {
                text += fmt::format(
                    "        {} events synchronised (not checked against guest mode: the tracer sees every CPU in "
                    "every mode); {} displaced by a clock jump\n",
                    m->events_out, m->displaced);
            } else {
                text += fmt::format(
                    "        {} events synchronised; consistency: {} violations in {} checked events ({} "
                    "not checkable)\n",
                    m->events_out, m->violations, m->checked, m->unchecked);
            }
        } else {
            text += fmt::format("        {} events passed through UNCHANGED\n", m->events_out);
        }
        if (m->mode == GuestMode::passthrough && tracer) {
            errors.push_back(fmt::format(
                "{} (memory tracer, hpa {:#x}): its vmtrace_mem_sync marks have no usable counterpart in the host "
                "trace ({} vmtrace_mem_sync and {} vmtrace_memsync_begin/end events of that page{}, quality {} "
                "within the look-ahead: parameters `window-ms` {} ms, `prefetch-ms` {} ms); it was passed through "
                "unchanged",
                trace_ref(*m), pairing.vm_uid(), pairing.guest_events() / 2, pairing.host_events(),
                pairing.host_events() == 0 ? ": the host stored no mark there, or its memsync module was not loaded"
                                           : "",
                clocksync::to_string(quality), config.window_ns / 1'000'000, config.prefetch_ns / 1'000'000));
        } else if (m->mode == GuestMode::passthrough) {
            errors.push_back(fmt::format(
                "{} (vm_uid {:#x}): its vmsync handshakes have no usable counterpart in the host trace ({} "
                "guest and {} host sync events, quality {} within the look-ahead: parameters `window-ms` {} ms, "
                "`prefetch-ms` {} ms); it was passed through unchanged",
                trace_ref(*m), pairing.vm_uid(), pairing.guest_events(), pairing.host_events(),
                clocksync::to_string(quality), config.window_ns / 1'000'000, config.prefetch_ns / 1'000'000));
        }
        const auto& anomalies = pairing.anomalies();
        if (quality == SyncQuality::fail) {
            errors.push_back(fmt::format(
                "{} ({} {:#x}): {} of {} matched {} messages contradict the others (no linear clock "
                "transform lets them all arrive after they were sent); first: {}",
                trace_ref(*m), pairing.handshake().key_name, pairing.vm_uid(), anomalies.rejected,
                pairing.guest_to_host_matches() + pairing.host_to_guest_matches(), family, anomalies.first_rejected));
        } else if (anomalies.rejected > 0) {
            warnings.push_back(fmt::format("{}: {} {} messages rejected as outliers; first: {}", trace_ref(*m),
                                           anomalies.rejected, family, anomalies.first_rejected));
        }
        if (anomalies.duplicate_cnt + anomalies.out_of_order_cnt > 0) {
            const std::string message =
                fmt::format("{}: {} duplicate and {} out-of-order {} cnt values; first: {}", trace_ref(*m),
                            anomalies.duplicate_cnt, anomalies.out_of_order_cnt, family, anomalies.first);
            (config.strict ? errors : warnings).push_back(message);
        }
        if (tracer && m->checked > 0 &&
            static_cast<double>(m->violations) > config.max_violation_ratio * static_cast<double>(m->checked)) {
            errors.push_back(
                fmt::format("{}: {} of {} events go back in time by more than {} ms (a clock jump or "
                            "damaged timestamps); first: {}",
                            trace_ref(*m), m->violations, m->checked, kMaxClampNs / 1'000'000, m->first_violation));
        } else if (m->checked > 0 &&
                   static_cast<double>(m->violations) > config.max_violation_ratio * static_cast<double>(m->checked)) {
            errors.push_back(
                fmt::format("{}: {} of {} checked events fall outside the host's guest-mode "
                            "intervals of their vCPU or go back in time ({} displaced by a clock jump); first: {}",
                            trace_ref(*m), m->violations, m->checked, m->displaced, m->first_violation));
        } else if (m->violations > 0) {
            warnings.push_back(fmt::format("{}: {} consistency violations ({} displaced by a clock jump); first: {}",
                                           trace_ref(*m), m->violations, m->displaced, m->first_violation));
        }
    }
    for (const auto& orphan : stats["vm_uids_without_guest_trace"]) {
        warnings.push_back(
            fmt::format("the host records {} vmsync events of vm_uid {} but no input trace is that "
                        "guest",
                        orphan["host_events"].get<std::uint64_t>(), orphan["vm_uid"].get<std::string>()));
    }
    for (const auto& page : stats["memsync_hpas_without_tracer_trace"]) {
        warnings.push_back(
            fmt::format("the host records {} memsync events (vmtrace_memsync_begin/end) of the page at hpa {} but "
                        "no input trace is the memory tracer watching it",
                        page["host_events"].get<std::uint64_t>(), page["hpa"].get<std::string>()));
    }
    if (it.window_truncations > 0) {
        warnings.push_back(fmt::format("{} times the buffer limit ({} messages) cut the look-ahead window short",
                                       it.window_truncations, config.max_buffered));
    }
    for (const std::string& w : warnings) {
        text += fmt::format("  WARNING: {}\n", w);
    }
    for (const std::string& e : errors) {
        text += fmt::format("  ERROR: {}\n", e);
    }
    if (!config.quiet) {
        std::fputs(text.c_str(), stderr);
    }
    if (!config.stats_path.empty()) {
        nlohmann::json out = stats;
        out["warnings"] = warnings;
        out["errors"] = errors;
        std::ofstream file(config.stats_path);
        file << out.dump(2) << '\n';
        if (!file) {
            errors.push_back(fmt::format("cannot write statistics file `{}`", config.stats_path));
        }
    }
    return errors;
}

}  // namespace vmtrace::plugin::syncfilter
