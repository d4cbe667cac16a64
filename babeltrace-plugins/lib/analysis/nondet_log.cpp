// SPDX-License-Identifier: MIT
#include "nondet_log.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include "exit_reason.hpp"

namespace vmtrace::analysis {

std::optional<NondetEntry> NondetLog::from_handler(const TraceEvent& e) {
    switch (e.kind) {
    case EventKind::kvm_pio:
        return NondetEntry{"pio", "kvm",
                           fmt::format(FMT_COMPILE("{},{:#x},{},{},{:#x},"), e.args[0] != 0 ? "out" : "in", e.args[1],
                                       e.args[2], e.args[3], e.args[4])};
    case EventKind::kvm_mmio: {
        const char* op = e.args[0] == 2 ? "write" : e.args[0] == 1 ? "read" : "read-pending";
        return NondetEntry{"mmio", "kvm",
                           fmt::format(FMT_COMPILE("{},{:#x},{},,{:#x},"), op, e.args[2], e.args[1], e.args[3])};
    }
    case EventKind::kvm_msr:
        return NondetEntry{"msr", "kvm",
                           fmt::format(FMT_COMPILE("{},{:#x},,,{:#x},{}"), e.args[0] != 0 ? "wrmsr" : "rdmsr",
                                       e.args[1], e.args[2], e.args[3] != 0 ? "gp" : "")};
    case EventKind::kvm_msr_user:
        return NondetEntry{
            "msr", "user",
            fmt::format(FMT_COMPILE("rdmsr,{:#x},,,{:#x},{}"), e.args[0], e.args[1], e.args[2] != 0 ? "gp" : "")};
    case EventKind::kvm_inj_exception: {
        const char* op = e.args[3] != 0 ? "reinject" : "inject";
        return NondetEntry{"exception", "kvm",
                           e.args[1] != 0 ? fmt::format(FMT_COMPILE("{},{:#x},,,{:#x},"), op, e.args[0], e.args[2])
                                          : fmt::format(FMT_COMPILE("{},{:#x},,,,"), op, e.args[0])};
    }
    case EventKind::kvm_inj_virq: {
        const char* op = e.args[1] != 0 ? "soft" : e.args[2] != 0 ? "reinject" : "inject";
        return NondetEntry{"interrupt", "kvm", fmt::format(FMT_COMPILE("{},{:#x},,,,"), op, e.args[0])};
    }
    case EventKind::kvm_hypercall:
        return NondetEntry{"hypercall", "kvm",
                           fmt::format(FMT_COMPILE(",{:#x},,,{:#x},a1={:#x};a2={:#x};a3={:#x}"), e.args[0], e.args[1],
                                       e.args[2], e.args[3], e.args[4])};
    default:
        return std::nullopt;
    }
}

std::optional<NondetEntry> NondetLog::from_exit(const TraceEvent& e, const MachineInfo& host) {
    switch (classify_exit(e.isa, e.exit_reason)) {
    case ExitClass::pio:
        if (!host.has_pio) {
            const PortAccess access = decode_port_exit(e.isa, e.info1);
            return NondetEntry{
                "pio", "exit",
                fmt::format(FMT_COMPILE("{},{:#x},{},,,"), access.in ? "in" : "out", access.port, access.size)};
        }
        break;
    case ExitClass::msr:
        if (!host.has_msr) {
            return NondetEntry{"msr", "exit",
                               fmt::format(FMT_COMPILE("{},,,,,"),
                                           msr_exit_is_write(e.isa, e.exit_reason, e.info1) ? "wrmsr" : "rdmsr")};
        }
        break;
    case ExitClass::hypercall:
        if (!host.has_hypercall) {
            return NondetEntry{"hypercall", "exit", ",,,,,"};
        }
        break;
    case ExitClass::value_instruction:  // the replay log's (replay_log.cpp)
    case ExitClass::other:
        break;
    }
    return std::nullopt;
}

std::string NondetLog::add(Counts& counts, std::uint32_t vcpu, const NondetEntry& entry) {
    ++counts[entry.kind];
    return fmt::format(FMT_COMPILE("{},{},{},{}"), vcpu, entry.kind, entry.source, entry.columns);
}

nlohmann::json NondetLog::vm_table(const std::vector<const Counts*>& threads) {
    Counts sum;
    for (const Counts* counts : threads) {
        for (const auto& [kind, count] : *counts) {
            sum[kind] += count;
        }
    }
    nlohmann::json table = nlohmann::json::object();
    for (const char* kind : {"pio", "mmio", "msr", "interrupt", "exception", "hypercall"}) {
        table[kind] = sum.count(kind) != 0 ? sum.at(kind) : 0;
    }
    return table;
}

}  // namespace vmtrace::analysis
