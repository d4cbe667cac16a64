// SPDX-License-Identifier: MIT
#include "lib/isolate/host_map.hpp"

#include <fmt/format.h>

namespace vmtrace::isolate {

namespace {

std::string describe(const TdpEvent& e) {
    return fmt::format("kvm_tdp_mmu_map at {} ns: vm_pid {} as_id {} gfn {:#x} pfn {:#x} old_pfn {:#x} level {} op {}",
                       e.time, e.vm_pid, e.as_id, e.gfn, e.pfn, e.old_pfn, e.level, e.op);
}

unsigned shift_of(std::uint8_t level) {
    return 9u * (level - 1u);
}

}  // namespace

void HostMap::unlink(std::uint8_t level, std::uint64_t pfn, int vm, std::uint8_t as_id, std::uint64_t gfn) {
    FlatMap<Reverse>& reverse = reverse_[level - 1];
    const std::uint64_t key = pfn >> shift_of(level);
    const Reverse* r = reverse.find(key);
    if (r != nullptr && r->vm == vm && r->as_id == as_id && r->gfn == gfn) {
        reverse.erase(key);
        // KVM's other address space (SMM, as_id 1, or the normal one) may
        // map the same guest page to the same host page: it keeps it.
        if (as_id <= 1) {
            const std::uint8_t other = as_id ^ 1u;
            if (const std::uint64_t* m = forward_.find(forward_key(vm, other, level, gfn)); m != nullptr && *m == pfn) {
                *reverse.try_emplace(key).first = Reverse{vm, other, gfn};
            }
        }
    }
}

void HostMap::link(const TdpEvent& event, int vm, std::uint64_t pfn) {
    auto [r, inserted] = reverse_[event.level - 1].try_emplace(pfn >> shift_of(event.level));
    // The same guest page in KVM's other address space (SMM) is no alias.
    if (!inserted && (r->vm != vm || r->gfn != event.gfn)) {
        contradictions_.add(Contradiction::pfn_aliased, [&] {
            return fmt::format("{}: host page already mapped for vm {} gfn {:#x}", describe(event), r->vm, r->gfn);
        });
    }
    *r = Reverse{vm, event.as_id, event.gfn};
}

TouchedPages HostMap::apply(const TdpEvent& event) {
    TouchedPages touched;
    touched.level = event.level;
    const auto bad = [&](std::string_view why) {
        contradictions_.add(Contradiction::bad_host_event, [&] { return fmt::format("{}: {}", describe(event), why); });
        return touched;
    };
    if (event.level < 1 || event.level > 3) {
        return bad("level is not 1, 2 or 3");
    }
    if (event.op < 1 || event.op > 4) {
        return bad("op is not 1, 2, 3 or 4");
    }
    if (event.gfn > kMaxFrame || event.pfn > kMaxFrame || event.old_pfn > kMaxFrame) {
        return bad("frame number beyond 52-bit physical addresses");
    }
    if (event.vm >= kMaxVms) {
        return bad("too many VMs");
    }
    const std::uint64_t align = (std::uint64_t{1} << shift_of(event.level)) - 1;
    if ((event.gfn & align) != 0 || (event.pfn & align) != 0 || (event.op == 2 && (event.old_pfn & align) != 0)) {
        return bad("huge page frames not aligned to the page size");
    }

    int vm = event.vm;
    if (vm < 0) {
        if (event.op == 1 || event.op == 4) {
            return bad("an install that names no VM");
        }
        // vm_pid 0: a change made outside the VM's context (host reclaim,
        // compaction); the page being unmapped says which VM it was.
        const std::uint64_t named = event.op == 2 ? event.old_pfn : event.pfn;
        const Reverse* r = reverse_[event.level - 1].find(named >> shift_of(event.level));
        if (r == nullptr || r->as_id != event.as_id || r->gfn != event.gfn) {
            const Contradiction kind = event.op == 2 ? Contradiction::change_wrong_old : Contradiction::remove_unknown;
            contradictions_.add(kind, [&] { return describe(event) + ": no VM maps that host page"; });
            return touched;
        }
        vm = r->vm;
    }
    touched.vm = vm;

    const std::uint64_t key = forward_key(vm, event.as_id, event.level, event.gfn);
    switch (event.op) {
    case 4:
        // A statedump record: the mapping as it was when the walk read it.
        // One the live events (or an earlier statedump) already installed
        // is no change; any other is an install.
        if (const std::uint64_t* mapped = forward_.find(key); mapped != nullptr && *mapped == event.pfn) {
            return touched;
        }
        [[fallthrough]];
    case 1: {
        auto [mapped, inserted] = forward_.try_emplace(key);
        if (!inserted) {
            contradictions_.add(Contradiction::install_over_live, [&] {
                return fmt::format("{}: gfn already mapped to pfn {:#x}", describe(event), *mapped);
            });
            if (*mapped != event.pfn) {
                touched.add(*mapped);
                unlink(event.level, *mapped, vm, event.as_id, event.gfn);
            }
        }
        *mapped = event.pfn;
        link(event, vm, event.pfn);
        touched.add(event.pfn);
        break;
    }
    case 2: {
        auto [mapped, inserted] = forward_.try_emplace(key);
        if (inserted || *mapped != event.old_pfn) {
            contradictions_.add(Contradiction::change_wrong_old, [&] {
                return inserted ? describe(event) + ": gfn not mapped"
                                : fmt::format("{}: gfn mapped to pfn {:#x}", describe(event), *mapped);
            });
        }
        if (!inserted) {
            touched.add(*mapped);
            unlink(event.level, *mapped, vm, event.as_id, event.gfn);
        }
        touched.add(event.old_pfn);
        unlink(event.level, event.old_pfn, vm, event.as_id, event.gfn);
        *mapped = event.pfn;
        link(event, vm, event.pfn);
        touched.add(event.pfn);
        break;
    }
    case 3: {
        const std::uint64_t* mapped = forward_.find(key);
        if (mapped == nullptr) {
            contradictions_.add(Contradiction::remove_unknown, [&] { return describe(event) + ": gfn not mapped"; });
        } else {
            if (*mapped != event.pfn) {
                contradictions_.add(Contradiction::remove_wrong_pfn, [&] {
                    return fmt::format("{}: gfn mapped to pfn {:#x}", describe(event), *mapped);
                });
                touched.add(*mapped);
                unlink(event.level, *mapped, vm, event.as_id, event.gfn);
            }
            forward_.erase(key);
        }
        touched.add(event.pfn);
        unlink(event.level, event.pfn, vm, event.as_id, event.gfn);
        break;
    }
    }
    return touched;
}

std::size_t HostMap::memory_bytes() const {
    std::size_t bytes = forward_.memory_bytes();
    for (const auto& reverse : reverse_) {
        bytes += reverse.memory_bytes();
    }
    return bytes;
}

}  // namespace vmtrace::isolate
