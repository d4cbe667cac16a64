// SPDX-License-Identifier: MIT
#include "isolation_report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vmtrace::isolate {
namespace {

constexpr std::uint64_t kPage = 4096;

nlohmann::ordered_json attribution_counts(const std::array<std::uint64_t, kAttributionCount>& by) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (std::size_t a = 0; a < kAttributionCount; ++a) {
        out[std::string(to_string(static_cast<Attribution>(a)))] = by[a];
    }
    return out;
}

}  // namespace

IsolationReport::IsolationReport(Options options) : options_(options) {}

IsolationReport::Vm& IsolationReport::vm(int index) {
    const auto i = static_cast<std::size_t>(index);
    if (i >= vms_.size()) {
        vms_.resize(i + 1);
    }
    return vms_[i];
}

void IsolationReport::name_vm(int index, std::string name, std::int32_t vm_pid) {
    Vm& v = vm(index);
    v.name = std::move(name);
    v.vm_pid = vm_pid;
}

void IsolationReport::close_bin(Vm& v) {
    if (v.bin >= 0) {
        v.bins.emplace_back(v.bin, v.bin_pages.size());
        v.bin_pages.clear();
    }
}

void IsolationReport::add(const Access& access, const Result& result) {
    ++total_;
    ++by_attribution_[static_cast<std::size_t>(result.attribution)];
    if (result.vm < 0) {
        host_kinds_.add(access.kind);
        ++host_threads_[result.host_tid];
        return;
    }
    Vm& v = vm(result.vm);
    ++v.accesses;
    ++v.by_attribution[static_cast<std::size_t>(result.attribution)];
    v.kinds.add(access.kind);
    if (result.attribution == Attribution::before_map) {
        return;  // no guest-physical address known
    }
    const std::uint64_t page = result.gpa / kPage;
    v.pages.insert(page);
    ++v.page_counts[page];
    const std::int64_t bin = access.time / options_.bin_ns * options_.bin_ns;
    if (bin != v.bin) {
        close_bin(v);
        v.bin = bin;
    }
    v.bin_pages.insert(page);
    if (result.pid >= 0 &&
        (result.attribution == Attribution::guest || result.attribution == Attribution::guest_kernel ||
         result.attribution == Attribution::shared_other)) {
        Process& p = v.processes[result.pid];
        ++p.accesses;
        p.kinds.add(access.kind);
        if (result.comm != nullptr && p.comm.empty()) {
            p.comm = *result.comm;
        }
        if (result.attribution == Attribution::guest) {
            p.pages.insert(result.gva / kPage);
        }
    }
}

void IsolationReport::check_va(const Result& result, std::uint64_t va) {
    if (va == 0) {
        return;
    }
    va_check_.add(result, va);
    if (result.vm >= 0) {
        vm(result.vm).va_check.add(result, va);
    }
}

void IsolationReport::VaCheck::add(const Result& result, std::uint64_t va) {
    VaCheck& c = *this;
    ++c.with_va;
    // x86-64: user space is the lower canonical half.
    const bool user = va < (std::uint64_t{1} << 47);
    if (user) {
        ++c.user_va;
        ++c.user_va_by_attribution[static_cast<std::size_t>(result.attribution)];
    }
    if (result.attribution != Attribution::guest) {
        return;
    }
    // The join names the process whose page it is and where that process
    // maps it; the guest kernel reaches the same page through its own
    // mapping (a copy at fork, say): right owner, another address.
    if (!user) {
        ++c.guest_kernel_va;
        return;
    }
    ++c.guest;
    if (result.gva == va) {
        ++c.gva_equals_va;
    } else if (c.first_differing.empty()) {
        c.first_differing = fmt::format("pid {} gva {:#x}, tracer va {:#x}", result.pid, result.gva, va);
    }
}

// The accesses the join could not decide: ambiguous in time, of a VM
// whose guest trace had not begun or had ended, or after the host trace.
static std::uint64_t undecided(const std::array<std::uint64_t, kAttributionCount>& by) {
    return by[static_cast<std::size_t>(Attribution::ambiguous)] +
           by[static_cast<std::size_t>(Attribution::guest_untraced)] +
           by[static_cast<std::size_t>(Attribution::host_untraced)];
}

// Precision: of the user-space accesses attributed to a guest process,
// those whose guest-virtual address is the tracer's.  Recall: of the user-space
// accesses (by the tracer's va) that the join decided (neither ambiguous nor
// guest- or host-untraced), those
// attributed to a guest process with the tracer's address.
static nlohmann::ordered_json va_check_json(std::uint64_t with_va, std::uint64_t guest, std::uint64_t equal,
                                            std::uint64_t guest_kernel_va, const std::string& first_differing,
                                            std::uint64_t user_va,
                                            const std::array<std::uint64_t, kAttributionCount>& by_attribution) {
    nlohmann::ordered_json by = nlohmann::ordered_json::object();
    for (std::size_t a = 0; a < kAttributionCount; ++a) {
        by[std::string(to_string(static_cast<Attribution>(a)))] = by_attribution[a];
    }
    const std::uint64_t decided = user_va - undecided(by_attribution);
    nlohmann::ordered_json out = {{"records_with_va", with_va},
                                  {"guest_attributed_user_va", guest},
                                  {"gva_equals_va", equal},
                                  {"first_differing", first_differing},
                                  {"guest_attributed_kernel_va", guest_kernel_va},
                                  {"user_va_records", user_va},
                                  {"user_va_by_attribution", by}};
    out["precision"] = guest > 0 ? nlohmann::ordered_json(static_cast<double>(equal) / guest) : nullptr;
    out["recall_outside_ambiguous"] =
        decided > 0 ? nlohmann::ordered_json(static_cast<double>(equal) / decided) : nullptr;
    return out;
}

nlohmann::ordered_json IsolationReport::to_json() const {
    nlohmann::ordered_json out;
    out["accesses"] = total_;
    out["by_attribution"] = attribution_counts(by_attribution_);
    nlohmann::ordered_json vms = nlohmann::ordered_json::array();
    for (const Vm& v : vms_) {
        if (v.accesses == 0 && v.name.empty()) {
            continue;
        }
        nlohmann::ordered_json bins = nlohmann::ordered_json::array();
        for (const auto& [start, pages] : v.bins) {
            bins.push_back({{"start_ns", start}, {"pages", pages}});
        }
        if (v.bin >= 0) {
            bins.push_back({{"start_ns", v.bin}, {"pages", v.bin_pages.size()}});  // the open bin
        }
        std::vector<std::pair<std::uint64_t, std::uint64_t>> top(v.page_counts.begin(), v.page_counts.end());
        const std::size_t keep = std::min(options_.top_pages, top.size());
        std::partial_sort(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(keep), top.end(),
                          [](const auto& a, const auto& b) {
                              return a.second != b.second ? a.second > b.second : a.first < b.first;
                          });
        nlohmann::ordered_json top_pages = nlohmann::ordered_json::array();
        for (std::size_t i = 0; i < keep; ++i) {
            top_pages.push_back({{"gpa", fmt::format("{:#x}", top[i].first * kPage)}, {"accesses", top[i].second}});
        }
        nlohmann::ordered_json processes = nlohmann::ordered_json::array();
        for (const auto& [pid, p] : v.processes) {
            processes.push_back({{"pid", pid},
                                 {"comm", p.comm},
                                 {"accesses", p.accesses},
                                 {"loads", p.kinds.loads},
                                 {"stores", p.kinds.stores},
                                 {"fetches", p.kinds.fetches},
                                 {"working_set_pages", p.pages.size()}});
        }
        vms.push_back({{"name", v.name},
                       {"vm_pid", v.vm_pid},
                       {"accesses", v.accesses},
                       {"loads", v.kinds.loads},
                       {"stores", v.kinds.stores},
                       {"fetches", v.kinds.fetches},
                       {"by_attribution", attribution_counts(v.by_attribution)},
                       {"working_set_pages", v.pages.size()},
                       {"working_set_bin_ns", options_.bin_ns},
                       {"working_set_over_time", bins},
                       {"top_pages", top_pages},
                       {"processes", processes}});
    }
    out["vms"] = vms;
    std::vector<std::pair<std::int32_t, std::uint64_t>> threads(host_threads_.begin(), host_threads_.end());
    std::sort(threads.begin(), threads.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    nlohmann::ordered_json host_threads = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < std::min<std::size_t>(threads.size(), options_.top_pages); ++i) {
        host_threads.push_back({{"host_tid", threads[i].first}, {"accesses", threads[i].second}});
    }
    out["host"] = {{"accesses", by_attribution_[static_cast<std::size_t>(Attribution::host)]},
                   {"loads", host_kinds_.loads},
                   {"stores", host_kinds_.stores},
                   {"fetches", host_kinds_.fetches},
                   {"top_threads", host_threads}};
    out["unattributed"] = {
        {"host", by_attribution_[static_cast<std::size_t>(Attribution::host)]},
        {"before-map", by_attribution_[static_cast<std::size_t>(Attribution::before_map)]},
        {"ambiguous", by_attribution_[static_cast<std::size_t>(Attribution::ambiguous)]},
        {"guest-untraced", by_attribution_[static_cast<std::size_t>(Attribution::guest_untraced)]},
        {"host-untraced", by_attribution_[static_cast<std::size_t>(Attribution::host_untraced)]},
    };
    out["lost"] = {{"tracer_reported", tracer_lost_}, {"lttng_discarded", discarded_}};
    if (va_check_.with_va > 0) {
        auto json = [](const VaCheck& c) {
            return va_check_json(c.with_va, c.guest, c.gva_equals_va, c.guest_kernel_va, c.first_differing, c.user_va,
                                 c.user_va_by_attribution);
        };
        out["va_check"] = json(va_check_);
        nlohmann::ordered_json by_vm = nlohmann::ordered_json::object();
        for (const Vm& v : vms_) {
            if (v.va_check.with_va > 0) {
                by_vm[v.name] = json(v.va_check);
            }
        }
        out["va_check"]["by_vm"] = by_vm;
    }
    return out;
}

std::string IsolationReport::to_text() const {
    std::string text = fmt::format("memory accesses: {}\n", total_);
    for (std::size_t a = 0; a < kAttributionCount; ++a) {
        text += fmt::format("  {:<15} {:>12}\n", to_string(static_cast<Attribution>(a)), by_attribution_[a]);
    }
    for (const Vm& v : vms_) {
        if (v.accesses == 0 && v.name.empty()) {
            continue;
        }
        text +=
            fmt::format("\nVM {} (vm_pid {}): {} accesses ({} loads, {} stores, {} fetches), working set {} pages\n",
                        v.name, v.vm_pid, v.accesses, v.kinds.loads, v.kinds.stores, v.kinds.fetches, v.pages.size());
        for (const auto& [pid, p] : v.processes) {
            text +=
                fmt::format("  pid {:>7} {:<16} {:>12} accesses, {} pages\n", pid, p.comm, p.accesses, p.pages.size());
        }
    }
    text += fmt::format("\nlost records: {} reported by the tracer, {} discarded by LTTng\n", tracer_lost_, discarded_);
    if (va_check_.with_va > 0) {
        const VaCheck& c = va_check_;
        const std::uint64_t decided = c.user_va - undecided(c.user_va_by_attribution);
        text += fmt::format(
            "\nagainst the tracer's virtual addresses ({} records carry one):\n"
            "  user-space accesses attributed to a guest process: {}, guest-virtual address equal to the tracer's: "
            "{}{}\n"
            "  guest-kernel accesses to a page of the running process: {}\n"
            "  user-space accesses: {}, {} ambiguous or untraced; attributed with the tracer's address: {} of "
            "the {} decided\n",
            c.with_va, c.guest, c.gva_equals_va,
            c.first_differing.empty() ? "" : " (first differing: " + c.first_differing + ")", c.guest_kernel_va,
            c.user_va, c.user_va - decided, c.gva_equals_va, decided);
    }
    return text;
}

}  // namespace vmtrace::isolate
