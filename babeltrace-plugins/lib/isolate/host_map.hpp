// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "lib/isolate/contradictions.hpp"
#include "lib/isolate/flat_map.hpp"

namespace vmtrace::isolate {

// One kvm_tdp_mmu_map event, the VM already turned into an index.
struct TdpEvent {
    std::int64_t time = 0;
    int vm = -1;              // VM index; -1 when the event named no VM (vm_pid 0): found from the PFN
    std::int32_t vm_pid = 0;  // for the contradiction examples only
    std::uint8_t as_id = 0;
    std::uint8_t level = 1;  // 1: 4 KiB, 2: 2 MiB, 3: 1 GiB
    std::uint8_t op = 1;     // 1 install, 2 change (old_pfn -> pfn), 3 remove (pfn: the page that was mapped),
                             // 4 statedump (an install; repeating the live mapping is no change)
    std::uint64_t gfn = 0;
    std::uint64_t pfn = 0;
    std::uint64_t old_pfn = 0;
};

// The host pages whose owner an event may have changed: the join marks them
// (a change within the sync bound of an access makes it ambiguous).
struct TouchedPages {
    std::array<std::uint64_t, 3> pfn{};  // base frames of `level`
    std::uint8_t count = 0;
    std::uint8_t level = 1;
    int vm = -1;  // the VM the event was applied to, -1: not applied

    void add(std::uint64_t base) {
        for (std::uint8_t i = 0; i < count; ++i) {
            if (pfn[i] == base) {
                return;
            }
        }
        pfn[count++] = base;
    }
};

// Where a host page belongs now.
struct HostHit {
    int vm = -1;                 // -1: no VM maps the page
    std::uint64_t gpa_page = 0;  // guest frame of the page (gfn + offset inside a huge page)
};

// KVM's TDP MMU leaf mappings of every VM: forward (vm, as_id, level, gfn)
// -> pfn to check each event against what is live, and the reverse index
// the accesses need, host page -> (vm, gfn), one table per page level so
// that a lookup is at most three probes whatever the page sizes.
class HostMap {
public:
    static constexpr std::uint64_t kMaxFrame = (std::uint64_t{1} << 40) - 1;  // 52-bit physical addresses
    static constexpr int kMaxVms = 4096;

    explicit HostMap(Contradictions& contradictions) : contradictions_(contradictions) {}

    // Applies one event; the map follows it even when it contradicts what
    // was known (counted in Contradictions).
    TouchedPages apply(const TdpEvent& event);

    // The mapping that covers host page `page` (hpa >> 12); a 4 KiB mapping
    // wins over a huge one if the events left both.
    [[nodiscard]] HostHit lookup(std::uint64_t page) const {
        if (const Reverse* r = reverse_[0].find(page)) {
            return {r->vm, r->gfn};
        }
        if (!reverse_[1].empty()) {
            if (const Reverse* r = reverse_[1].find(page >> 9)) {
                return {r->vm, r->gfn + (page & 511)};
            }
        }
        if (!reverse_[2].empty()) {
            if (const Reverse* r = reverse_[2].find(page >> 18)) {
                return {r->vm, r->gfn + (page & ((1u << 18) - 1))};
            }
        }
        return {};
    }

    [[nodiscard]] std::size_t live() const { return forward_.size(); }
    [[nodiscard]] std::size_t live(std::uint8_t level) const { return reverse_[level - 1].size(); }
    [[nodiscard]] std::size_t memory_bytes() const;

private:
    struct Reverse {
        std::int32_t vm = -1;
        std::uint8_t as_id = 0;
        std::uint64_t gfn = 0;
    };

    static std::uint64_t forward_key(int vm, std::uint8_t as_id, std::uint8_t level, std::uint64_t gfn) {
        return (gfn << 22) | (static_cast<std::uint64_t>(vm) << 10) | (std::uint64_t{as_id} << 2) | (level - 1u);
    }
    // Drops the reverse entry of `pfn` if it is this mapping's (an aliased
    // page may have been taken over by another mapping since).
    void unlink(std::uint8_t level, std::uint64_t pfn, int vm, std::uint8_t as_id, std::uint64_t gfn);
    void link(const TdpEvent& event, int vm, std::uint64_t pfn);

    Contradictions& contradictions_;
    FlatMap<std::uint64_t> forward_;           // forward_key -> base pfn
    std::array<FlatMap<Reverse>, 3> reverse_;  // per level: base pfn >> (9 * (level - 1)) -> mapping
};

}  // namespace vmtrace::isolate
