// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vmtrace::isolate {

// Events that contradict what the join knows.  The join follows the event
// (it is the truth of now) and counts the contradiction, keeping the first
// example of each kind so that a report can name one.
enum class Contradiction : std::uint8_t {
    remove_unknown,     // kvm_tdp_mmu_map op 3 of a mapping not known to be live
    install_over_live,  // op 1 over a live mapping of the same (vm, as_id, gfn, level); op 4 (statedump)
                        // only when the pfn differs
    change_wrong_old,   // op 2 whose old_pfn is not the mapped one (or no mapping known)
    remove_wrong_pfn,   // op 3 whose pfn is not the mapped one
    pfn_aliased,        // a host page installed for a second (vm, gfn): the reverse index keeps the last
    bad_host_event,     // level or op out of range, pfn/gfn beyond 52-bit addresses, misaligned huge page,
                        // vm_pid 0 on an install, too many VMs
    bad_guest_event,    // gpa beyond 52 bits, negative pid, unknown VM index
    time_backwards,     // an event or access older than one already fed
    cpu_out_of_range,   // a CPU or vCPU index beyond JoinOptions' limits
};
inline constexpr std::size_t kContradictionCount = 9;

std::string_view to_string(Contradiction kind);

class Contradictions {
public:
    // Counts one; `example` is called (and its string kept) only for the first of its kind.
    template <typename MakeExample>
    void add(Contradiction kind, MakeExample&& example) {
        auto& entry = entries_[static_cast<std::size_t>(kind)];
        if (entry.count++ == 0) {
            entry.first_example = example();
        }
    }

    [[nodiscard]] std::uint64_t count(Contradiction kind) const {
        return entries_[static_cast<std::size_t>(kind)].count;
    }
    [[nodiscard]] const std::string& first_example(Contradiction kind) const {
        return entries_[static_cast<std::size_t>(kind)].first_example;
    }
    [[nodiscard]] std::uint64_t total() const;

private:
    struct Entry {
        std::uint64_t count = 0;
        std::string first_example;
    };
    std::array<Entry, kContradictionCount> entries_{};
};

}  // namespace vmtrace::isolate
