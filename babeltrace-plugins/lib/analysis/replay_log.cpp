// SPDX-License-Identifier: MIT
#include "replay_log.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iterator>

#include "exit_reason.hpp"

namespace vmtrace::analysis {
namespace {

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
        for (std::size_t k = 0; k < kKinds; ++k) {
            sum.kinds[k] += c.kinds[k];
        }
        sum.entries += c.entries;
        sum.unknown += c.unknown;
        sum.missing += c.missing;
        sum.incomplete += c.incomplete;
        sum.cancelled += c.cancelled;
    }
    nlohmann::json kinds = nlohmann::json::object();
    for (std::size_t k = 0; k < kKinds; ++k) {
        kinds[kKindNames[k]] = sum.kinds[k];
    }
    return {{"entries", sum.entries},        {"by_kind", std::move(kinds)},  {"unknown_values", sum.unknown},
            {"missing_values", sum.missing}, {"incomplete", sum.incomplete}, {"cancelled_injections", sum.cancelled}};
}

void ReplayLog::on_exit(const TraceEvent& e, std::vector<ReplayLine>& out) {
    close(nullptr, out);  // an exit still open: its entry was lost
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
    close(nullptr, out);
}

void ReplayLog::start(Kind kind, std::int64_t time) {
    buf_.clear();
    fmt::format_to(std::back_inserter(buf_), FMT_COMPILE("\"vcpu\":{},\"seq\":{},\"time_ns\":{},\"kind\":\"{}\""),
                   vcpu_, seq_, time, kKindNames[static_cast<std::size_t>(kind)]);
}

void ReplayLog::value_unknown(const char* state) {
    const std::string_view s(state);
    if (s == "unknown") {
        ++counts_.unknown;
    } else if (s == "missing") {
        ++counts_.missing;
    } else if (s == "incomplete") {
        ++counts_.incomplete;
    }
    add(FMT_COMPILE(",\"value\":null,\"value_state\":\"{}\""), state);
}

void ReplayLog::emit(Kind kind, std::int64_t time, std::string_view exit, std::vector<ReplayLine>& out) {
    buf_.append(exit);
    ++seq_;
    ++counts_.entries;
    ++counts_.kinds[static_cast<std::size_t>(kind)];
    out.push_back(ReplayLine{time, std::string(buf_.data(), buf_.size())});
}

void ReplayLog::close(const TraceEvent* entry, std::vector<ReplayLine>& out) {
    const ExitClass exit_class =
        exit_.open && !exit_.accounted ? classify_exit(exit_.isa, exit_.reason) : ExitClass::other;
    if (pending_.empty() && exit_class == ExitClass::other) {
        exit_ = Exit{};  // the common case: an exit that handed the guest nothing
        return;
    }
    const bool completed = entry != nullptr;
    // the exit's members, the same for each of its lines
    std::string exit;
    if (!exit_.open) {
        exit = ",\"exit_ns\":null,\"exit_reason\":null,\"rip\":null";
    } else if (exit_.has_rip) {
        exit = fmt::format(FMT_COMPILE(",\"exit_ns\":{},\"exit_reason\":\"{}\",\"rip\":\"{:#x}\""), exit_.time,
                           exit_reason_name(exit_.isa, exit_.reason), exit_.rip);
    } else {
        exit = fmt::format(FMT_COMPILE(",\"exit_ns\":{},\"exit_reason\":\"{}\",\"rip\":null"), exit_.time,
                           exit_reason_name(exit_.isa, exit_.reason));
    }

    // An exit that stands for an access no handler event recorded.
    const std::int64_t at = exit_.time;
    switch (exit_class) {
    case ExitClass::pio: {
        const PortAccess a = decode_port_exit(exit_.isa, exit_.info1);
        if (a.string && completed && host_.has_pio) {
            break;  // a REP INS/OUTS with a count of 0: the emulator moved no data
        }
        start(Kind::pio, at);
        add(FMT_COMPILE(",\"op\":\"{}\",\"port\":\"{:#x}\",\"size\":{},\"count\":null"), a.in ? "in" : "out", a.port,
            a.size);
        value_unknown(!completed ? "incomplete" : host_.has_pio ? "missing" : "unknown");
        buf_.append(std::string_view(",\"completed_by\":null"));
        emit(Kind::pio, at, exit, out);
        break;
    }
    case ExitClass::msr: {
        const bool write = msr_exit_is_write(exit_.isa, exit_.reason, exit_.info1);
        const bool traced = host_.has_msr && (write || host_.has_msr_user);
        start(Kind::msr, at);
        add(FMT_COMPILE(",\"op\":\"{}\",\"index\":null"), write ? "wrmsr" : "rdmsr");
        value_unknown(!completed ? "incomplete" : traced ? "missing" : "unknown");
        buf_.append(std::string_view(",\"completed_by\":null"));
        emit(Kind::msr, at, exit, out);
        break;
    }
    case ExitClass::hypercall:
        start(Kind::hypercall, at);
        buf_.append(std::string_view(",\"nr\":null,\"args\":null"));
        value_unknown(!completed ? "incomplete" : host_.has_hypercall ? "missing" : "unknown");
        emit(Kind::hypercall, at, exit, out);
        break;
    case ExitClass::value_instruction:
        // KVM emulates it in the kernel and records no value
        start(Kind::instruction, at);
        add(FMT_COMPILE(",\"op\":\"{}\""), lower(exit_reason_name(exit_.isa, exit_.reason)));
        value_unknown("unknown");
        buf_.append(std::string_view(",\"completed_by\":\"kernel\""));
        emit(Kind::instruction, at, exit, out);
        break;
    case ExitClass::other:
        break;
    }

    for (const Pending& p : pending_) {
        const TraceEvent& e = p.event;
        const std::uint64_t* a = e.args;
        switch (e.kind) {
        case EventKind::kvm_pio: {
            const bool in = a[0] == 0;
            start(Kind::pio, e.time);
            add(FMT_COMPILE(",\"op\":\"{}\",\"port\":\"{:#x}\",\"size\":{},\"count\":{},\"value\":\"{:#x}\","
                            "\"value_state\":\"{}\",\"completed_by\":null"),
                in ? "in" : "out", a[1], a[2], a[3], a[4], in ? "completed" : "written");
            emit(Kind::pio, e.time, exit, out);
            break;
        }
        case EventKind::kvm_mmio: {
            if (a[0] == 0) {
                // sent to user space: its completion, if it came
                const std::int64_t time = p.read_completed ? p.completed : e.time;
                start(Kind::mmio, time);
                add(FMT_COMPILE(",\"op\":\"read\",\"gpa\":\"{:#x}\",\"size\":{}"), a[2], a[1]);
                if (p.read_completed) {
                    add(FMT_COMPILE(
                            ",\"value\":\"{:#x}\",\"value_state\":\"completed\",\"completed_by\":\"user-space\""),
                        p.value);
                } else {
                    value_unknown("incomplete");
                    buf_.append(std::string_view(",\"completed_by\":null"));
                }
                emit(Kind::mmio, time, exit, out);
                break;
            }
            start(Kind::mmio, e.time);
            if (a[0] == 1) {
                add(FMT_COMPILE(",\"op\":\"read\",\"gpa\":\"{:#x}\",\"size\":{},\"value\":\"{:#x}\","
                                "\"value_state\":\"completed\",\"completed_by\":\"kernel\""),
                    a[2], a[1], a[3]);
            } else {
                add(FMT_COMPILE(",\"op\":\"write\",\"gpa\":\"{:#x}\",\"size\":{},\"value\":\"{:#x}\","
                                "\"value_state\":\"written\",\"completed_by\":null"),
                    a[2], a[1], a[3]);
            }
            emit(Kind::mmio, e.time, exit, out);
            break;
        }
        case EventKind::kvm_msr: {
            const bool write = a[0] != 0;
            start(Kind::msr, e.time);
            add(FMT_COMPILE(",\"op\":\"{}\",\"index\":\"{:#x}\""), write ? "wrmsr" : "rdmsr", a[1]);
            if (a[3] != 0) {
                buf_.append(std::string_view(",\"value\":null,\"value_state\":\"faulted\""));
            } else {
                add(FMT_COMPILE(",\"value\":\"{:#x}\",\"value_state\":\"{}\""), a[2], write ? "written" : "completed");
            }
            buf_.append(std::string_view(",\"completed_by\":\"kernel\""));
            emit(Kind::msr, e.time, exit, out);
            break;
        }
        case EventKind::kvm_msr_user:
            start(Kind::msr, e.time);
            add(FMT_COMPILE(",\"op\":\"rdmsr\",\"index\":\"{:#x}\""), a[0]);
            if (a[2] != 0) {
                buf_.append(std::string_view(",\"value\":null,\"value_state\":\"faulted\""));
            } else {
                add(FMT_COMPILE(",\"value\":\"{:#x}\",\"value_state\":\"completed\""), a[1]);
            }
            buf_.append(std::string_view(",\"completed_by\":\"user-space\""));
            emit(Kind::msr, e.time, exit, out);
            break;
        case EventKind::kvm_inj_virq:
        case EventKind::kvm_inj_exception: {
            const bool irq = e.kind == EventKind::kvm_inj_virq;
            const Kind kind = irq ? Kind::interrupt : Kind::exception;
            const bool again = irq ? a[2] != 0 : a[3] != 0;
            // it lands where the entry resumes the guest
            const std::int64_t time = completed ? entry->time : e.time;
            start(kind, time);
            add(FMT_COMPILE(",\"op\":\"{}\",\"vector\":{},\"reinjected\":{}"), irq && a[1] != 0 ? "soft" : "inject",
                a[0], again);
            if (!irq && a[1] != 0) {
                add(FMT_COMPILE(",\"error_code\":\"{:#x}\""), a[2]);
            } else if (!irq) {
                buf_.append(std::string_view(",\"error_code\":null"));
            }
            add(FMT_COMPILE(",\"injected_ns\":{}"), e.time);
            if (completed && entry->has_rip) {
                add(FMT_COMPILE(",\"delivered_rip\":\"{:#x}\",\"value_state\":\"delivered\""), entry->rip);
            } else if (completed) {
                buf_.append(std::string_view(",\"delivered_rip\":null,\"value_state\":\"delivered\""));
            } else {
                buf_.append(std::string_view(",\"delivered_rip\":null"));
                value_unknown("incomplete");
            }
            emit(kind, time, exit, out);
            break;
        }
        case EventKind::kvm_hypercall:
            start(Kind::hypercall, e.time);
            add(FMT_COMPILE(",\"nr\":\"{:#x}\",\"args\":[\"{:#x}\",\"{:#x}\",\"{:#x}\",\"{:#x}\"],"
                            "\"value_state\":\"called\""),
                a[0], a[1], a[2], a[3], a[4]);
            emit(Kind::hypercall, e.time, exit, out);
            break;
        default:
            break;
        }
    }
    pending_.clear();
    exit_ = Exit{};
}

}  // namespace vmtrace::analysis
