// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "lib/isolate/flat_map.hpp"

namespace vmtrace::isolate {

// One user mapping of a guest page: process pid maps it at gva_page.
struct Mapper {
    std::int32_t pid = -1;
    std::uint64_t gva_page = 0;
};

// The mappers of one guest-physical page.  Most pages have one (private
// memory), so it is kept inline; shared pages (libraries, page cache, COW
// after fork) keep the others in an overflow vector.
struct GpaPage {
    Mapper first;
    std::uint32_t count = 0;  // mappers, >= 1 while the page is in the map
    std::uint32_t more = 0;   // 1 + index of the overflow vector (count - 1 mappers), 0: none
};

// One guest's user page tables as its guest_mm_map/unmap events tell them:
// GPA page -> mappers for the accesses, and per process GVA page -> GPA
// page, ordered, for range unmaps.  Page numbers are addresses >> 12.
//
// Changes append the GPA pages whose mappers changed to `changed` (the
// join marks them: a change within the sync bound makes an access
// ambiguous).
class GuestMap {
public:
    // guest_mm_map: (pid, gva_page) now maps gpa_page, replacing what it mapped.
    void map(std::int32_t pid, std::uint64_t gva_page, std::uint64_t gpa_page, std::vector<std::uint64_t>& changed);
    // guest_mm_unmap reason 0: the pages of pid in [first_page, end_page).
    void unmap(std::int32_t pid, std::uint64_t first_page, std::uint64_t end_page, std::vector<std::uint64_t>& changed);
    // guest_mm_unmap reason 1 (exit) or 2 (execve): every page of pid.
    void unmap_all(std::int32_t pid, std::vector<std::uint64_t>& changed);
    // sched_process_fork of a new process: the child inherits the parent's
    // mappings (guest_mm_map does not record them).  Returns how many.
    std::size_t fork(std::int32_t parent_pid, std::int32_t child_pid);

    [[nodiscard]] const GpaPage* find(std::uint64_t gpa_page) const { return reverse_.find(gpa_page); }
    // pid's mapping of the page (the first one if it maps it twice), nullptr: none.
    [[nodiscard]] const Mapper* mapper_of(const GpaPage& page, std::int32_t pid) const {
        if (page.first.pid == pid) {
            return &page.first;
        }
        if (page.more != 0) {
            for (const Mapper& m : overflow_[page.more - 1]) {
                if (m.pid == pid) {
                    return &m;
                }
            }
        }
        return nullptr;
    }
    // Distinct processes mapping the page.
    [[nodiscard]] std::uint16_t processes(const GpaPage& page) const;

    [[nodiscard]] std::size_t live() const { return live_; }  // (pid, gva page) mappings
    [[nodiscard]] std::size_t gpa_pages() const { return reverse_.size(); }
    [[nodiscard]] std::size_t process_count() const { return processes_.size(); }
    // Container bytes; std::map and unordered_map nodes estimated at 64 bytes.
    [[nodiscard]] std::size_t memory_bytes() const;

private:
    void add(std::uint64_t gpa_page, Mapper mapper);
    void remove(std::uint64_t gpa_page, Mapper mapper);

    FlatMap<GpaPage> reverse_;
    std::vector<std::vector<Mapper>> overflow_;
    std::vector<std::uint32_t> free_overflow_;
    std::unordered_map<std::int32_t, std::map<std::uint64_t, std::uint64_t>> processes_;  // pid -> gva -> gpa
    std::size_t live_ = 0;
};

}  // namespace vmtrace::isolate
