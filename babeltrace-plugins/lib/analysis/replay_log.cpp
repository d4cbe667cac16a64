// SPDX-License-Identifier: MIT
#include "replay_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "exit_reason.hpp"

namespace vmtrace::analysis {
namespace {

// 64-bit values as hex strings: JSON numbers beyond 2^53 lose bits in most
// readers.
std::string hex(std::uint64_t v) {
    return fmt::format("\"{:#x}\"", v);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

bool same_injection(const TraceEvent& a, const TraceEvent& b) {
    return a.kind == b.kind && a.args[0] == b.args[0];
}

}  // namespace

nlohmann::json ReplayLog::vm_table(const std::vector<const ReplayLog*>& vcpus) {
    Counts sum;
    for (const ReplayLog* log : vcpus) {
        const Counts& c = log->counts_;
        for (const auto& [kind, n] : c.kinds) {
            sum.kinds[kind] += n;
        }
        sum.entries += c.entries;
        sum.unknown += c.unknown;
        sum.missing += c.missing;
        sum.incomplete += c.incomplete;
        sum.cancelled += c.cancelled;
    }
    nlohmann::json kinds = nlohmann::json::object();
    for (const char* kind : {"pio", "mmio", "msr", "interrupt", "exception", "hypercall", "instruction"}) {
        kinds[kind] = sum.kinds.count(kind) != 0 ? sum.kinds.at(kind) : 0;
    }
    return {{"entries", sum.entries},        {"by_kind", std::move(kinds)},  {"unknown_values", sum.unknown},
            {"missing_values", sum.missing}, {"incomplete", sum.incomplete}, {"cancelled_injections", sum.cancelled}};
}

void ReplayLog::on_exit(const TraceEvent& e, std::vector<ReplayLine>& out) {
    if (exit_.open || !pending_.empty()) {
        close(nullptr, out);  // an exit without its entry: events were lost
    }
    exit_ = Exit{true, e.time, e.isa, e.exit_reason, e.info1, e.rip, e.has_rip, false};
}

void ReplayLog::on_handler(const TraceEvent& e) {
    switch (e.kind) {
    case EventKind::kvm_mmio:
        if (e.args[0] == 1) {
            // a read: the completion of one sent to user space, or one the kernel did
            for (Pending& p : pending_) {
                if (p.event.kind == EventKind::kvm_mmio && p.event.args[0] == 0 && !p.read_completed &&
                    p.event.args[2] == e.args[2]) {
                    p.read_completed = true;
                    p.value = e.args[3];
                    p.completed = e.time;
                    return;
                }
            }
        }
        break;
    case EventKind::kvm_inj_virq:
    case EventKind::kvm_inj_exception: {
        // injected, cancelled before the entry, injected again: one delivery
        const auto again = std::find_if(pending_.begin(), pending_.end(),
                                        [&](const Pending& p) { return same_injection(p.event, e); });
        if (again != pending_.end()) {
            pending_.erase(again);
            ++counts_.cancelled;
        }
        break;
    }
    case EventKind::kvm_pio:
    case EventKind::kvm_msr:
    case EventKind::kvm_msr_user:
    case EventKind::kvm_hypercall:
        exit_.accounted = true;
        break;
    default:
        return;
    }
    Pending p;
    p.event = e;
    p.event.name = {};  // the view dies with the event
    p.event.comm = p.event.prev_comm = p.event.next_comm = {};
    pending_.push_back(p);
}

void ReplayLog::on_entry(const TraceEvent& e, std::vector<ReplayLine>& out) {
    close(&e, out);
}

void ReplayLog::finish(std::vector<ReplayLine>& out) {
    if (exit_.open || !pending_.empty()) {
        close(nullptr, out);
    }
}

std::string ReplayLog::head(const char* kind, std::int64_t time) const {
    return fmt::format("\"vcpu\":{},\"seq\":{},\"time_ns\":{},\"kind\":\"{}\"", vcpu_, seq_, time, kind);
}

std::string ReplayLog::exit_members() const {
    if (!exit_.open) {
        return ",\"exit_ns\":null,\"exit_reason\":null,\"rip\":null";
    }
    return fmt::format(",\"exit_ns\":{},\"exit_reason\":\"{}\",\"rip\":{}", exit_.time,
                       exit_reason_name(exit_.isa, exit_.reason), exit_.has_rip ? hex(exit_.rip) : "null");
}

void ReplayLog::emit(std::int64_t time, std::string json, const char* kind, std::vector<ReplayLine>& out) {
    ++seq_;
    ++counts_.entries;
    ++counts_.kinds[kind];
    out.push_back(ReplayLine{time, std::move(json)});
}

void ReplayLog::close(const TraceEvent* entry, std::vector<ReplayLine>& out) {
    const ExitClass exit_class =
        exit_.open && !exit_.accounted ? classify_exit(exit_.isa, exit_.reason) : ExitClass::other;
    if (pending_.empty() && exit_class == ExitClass::other) {
        exit_ = Exit{};  // the common case: an exit that handed the guest nothing
        return;
    }
    const bool completed = entry != nullptr;
    const std::string exit = exit_members();
    auto value_of = [&](const char* state) {
        if (std::string_view(state) == "unknown") {
            ++counts_.unknown;
        } else if (std::string_view(state) == "missing") {
            ++counts_.missing;
        } else if (std::string_view(state) == "incomplete") {
            ++counts_.incomplete;
        }
        return fmt::format(",\"value\":null,\"value_state\":\"{}\"", state);
    };

    // An exit that stands for an access no handler event recorded.
    if (exit_class != ExitClass::other) {
        const std::int64_t at = exit_.time;
        switch (exit_class) {
        case ExitClass::pio: {
            const PortAccess a = decode_port_exit(exit_.isa, exit_.info1);
            if (a.string && completed && declared_.pio) {
                // a REP INS/OUTS with a count of 0: the emulator moved no data
                break;
            }
            const char* state = !completed ? "incomplete" : declared_.pio ? "missing" : "unknown";
            emit(at,
                 head("pio", at) +
                     fmt::format(",\"op\":\"{}\",\"port\":{},\"size\":{},\"count\":null", a.in ? "in" : "out",
                                 hex(a.port), a.size) +
                     value_of(state) + ",\"completed_by\":null" + exit,
                 "pio", out);
            break;
        }
        case ExitClass::msr: {
            const bool write = msr_exit_is_write(exit_.isa, exit_.reason, exit_.info1);
            const bool traced = declared_.msr && (write || declared_.msr_user);
            const char* state = !completed ? "incomplete" : traced ? "missing" : "unknown";
            emit(at,
                 head("msr", at) + fmt::format(",\"op\":\"{}\",\"index\":null", write ? "wrmsr" : "rdmsr") +
                     value_of(state) + ",\"completed_by\":null" + exit,
                 "msr", out);
            break;
        }
        case ExitClass::hypercall:
            emit(at,
                 head("hypercall", at) + ",\"nr\":null,\"args\":null" +
                     value_of(!completed            ? "incomplete"
                              : declared_.hypercall ? "missing"
                                                    : "unknown") +
                     exit,
                 "hypercall", out);
            break;
        case ExitClass::value_instruction:
            // KVM emulates it in the kernel and records no value
            emit(at,
                 head("instruction", at) +
                     fmt::format(",\"op\":\"{}\"", lower(exit_reason_name(exit_.isa, exit_.reason))) +
                     value_of("unknown") + ",\"completed_by\":\"kernel\"" + exit,
                 "instruction", out);
            break;
        case ExitClass::other:
            break;
        }
    }

    for (const Pending& p : pending_) {
        const TraceEvent& e = p.event;
        const std::uint64_t* a = e.args;
        switch (e.kind) {
        case EventKind::kvm_pio: {
            const bool in = a[0] == 0;
            emit(e.time,
                 head("pio", e.time) +
                     fmt::format(
                         ",\"op\":\"{}\",\"port\":{},\"size\":{},\"count\":{},\"value\":{},\"value_state\":\"{}\","
                         "\"completed_by\":null",
                         in ? "in" : "out", hex(a[1]), a[2], a[3], hex(a[4]), in ? "completed" : "written") +
                     exit,
                 "pio", out);
            break;
        }
        case EventKind::kvm_mmio: {
            std::string body;
            std::int64_t at = e.time;
            if (a[0] == 0) {
                // sent to user space: its completion, if it came
                body = fmt::format(",\"op\":\"read\",\"gpa\":{},\"size\":{}", hex(a[2]), a[1]);
                if (p.read_completed) {
                    at = p.completed;
                    body += fmt::format(",\"value\":{},\"value_state\":\"completed\",\"completed_by\":\"user-space\"",
                                        hex(p.value));
                } else {
                    body += value_of("incomplete") + ",\"completed_by\":null";
                }
            } else if (a[0] == 1) {
                body = fmt::format(
                    ",\"op\":\"read\",\"gpa\":{},\"size\":{},\"value\":{},\"value_state\":\"completed\","
                    "\"completed_by\":\"kernel\"",
                    hex(a[2]), a[1], hex(a[3]));
            } else {
                body = fmt::format(
                    ",\"op\":\"write\",\"gpa\":{},\"size\":{},\"value\":{},\"value_state\":\"written\","
                    "\"completed_by\":null",
                    hex(a[2]), a[1], hex(a[3]));
            }
            emit(at, head("mmio", at) + body + exit, "mmio", out);
            break;
        }
        case EventKind::kvm_msr: {
            const bool write = a[0] != 0;
            std::string body = fmt::format(",\"op\":\"{}\",\"index\":{}", write ? "wrmsr" : "rdmsr", hex(a[1]));
            if (a[3] != 0) {
                body += ",\"value\":null,\"value_state\":\"faulted\"";
            } else {
                body += fmt::format(",\"value\":{},\"value_state\":\"{}\"", hex(a[2]), write ? "written" : "completed");
            }
            emit(e.time, head("msr", e.time) + body + ",\"completed_by\":\"kernel\"" + exit, "msr", out);
            break;
        }
        case EventKind::kvm_msr_user: {
            std::string body = fmt::format(",\"op\":\"rdmsr\",\"index\":{}", hex(a[0]));
            body += a[2] != 0 ? std::string(",\"value\":null,\"value_state\":\"faulted\"")
                              : fmt::format(",\"value\":{},\"value_state\":\"completed\"", hex(a[1]));
            emit(e.time, head("msr", e.time) + body + ",\"completed_by\":\"user-space\"" + exit, "msr", out);
            break;
        }
        case EventKind::kvm_inj_virq:
        case EventKind::kvm_inj_exception: {
            const bool irq = e.kind == EventKind::kvm_inj_virq;
            const char* kind = irq ? "interrupt" : "exception";
            const bool again = irq ? a[2] != 0 : a[3] != 0;
            const char* op = irq && a[1] != 0 ? "soft" : "inject";
            std::string body = fmt::format(",\"op\":\"{}\",\"vector\":{},\"reinjected\":{}", op, a[0], again);
            if (!irq) {
                body += a[1] != 0 ? fmt::format(",\"error_code\":{}", hex(a[2])) : std::string(",\"error_code\":null");
            }
            // it lands where the entry resumes the guest
            const std::int64_t at = completed ? entry->time : e.time;
            if (completed) {
                body += fmt::format(",\"injected_ns\":{},\"delivered_rip\":{},\"value_state\":\"delivered\"", e.time,
                                    entry->has_rip ? hex(entry->rip) : "null");
            } else {
                body += fmt::format(",\"injected_ns\":{},\"delivered_rip\":null", e.time) + value_of("incomplete");
            }
            emit(at, head(kind, at) + body + exit, kind, out);
            break;
        }
        case EventKind::kvm_hypercall:
            emit(e.time,
                 head("hypercall", e.time) +
                     fmt::format(",\"nr\":{},\"args\":[{},{},{},{}],\"value_state\":\"called\"", hex(a[0]), hex(a[1]),
                                 hex(a[2]), hex(a[3]), hex(a[4])) +
                     exit,
                 "hypercall", out);
            break;
        default:
            break;
        }
    }
    pending_.clear();
    exit_ = Exit{};
}

}  // namespace vmtrace::analysis
