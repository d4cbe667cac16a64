// SPDX-License-Identifier: MIT
#include "lib/isolate/guest_map.hpp"

#include <algorithm>

namespace vmtrace::isolate {

void GuestMap::add(std::uint64_t gpa_page, Mapper mapper) {
    GpaPage& page = *reverse_.try_emplace(gpa_page).first;
    if (page.count++ == 0) {
        page.first = mapper;
        return;
    }
    if (page.more == 0) {
        if (free_overflow_.empty()) {
            overflow_.emplace_back();
            page.more = static_cast<std::uint32_t>(overflow_.size());
        } else {
            page.more = free_overflow_.back() + 1;
            free_overflow_.pop_back();
        }
    }
    overflow_[page.more - 1].push_back(mapper);
}

void GuestMap::remove(std::uint64_t gpa_page, Mapper mapper) {
    GpaPage* page = reverse_.find(gpa_page);
    if (page == nullptr) {
        return;
    }
    const auto same = [&](const Mapper& m) { return m.pid == mapper.pid && m.gva_page == mapper.gva_page; };
    std::vector<Mapper>* more = page->more != 0 ? &overflow_[page->more - 1] : nullptr;
    if (same(page->first)) {
        if (more == nullptr) {
            reverse_.erase(gpa_page);
            return;
        }
        page->first = more->back();
        more->pop_back();
    } else {
        if (more == nullptr) {
            return;
        }
        const auto it = std::find_if(more->begin(), more->end(), same);
        if (it == more->end()) {
            return;
        }
        *it = more->back();
        more->pop_back();
    }
    --page->count;
    if (more->empty()) {
        // Give a large vector's memory back: a library page once mapped by
        // hundreds of processes must not pin that capacity forever.
        if (more->capacity() > 16) {
            std::vector<Mapper>().swap(*more);
        }
        free_overflow_.push_back(page->more - 1);
        page->more = 0;
    }
}

void GuestMap::map(std::int32_t pid, std::uint64_t gva_page, std::uint64_t gpa_page,
                   std::vector<std::uint64_t>& changed) {
    auto [it, inserted] = processes_[pid].try_emplace(gva_page, gpa_page);
    if (!inserted) {
        if (it->second == gpa_page) {
            return;
        }
        remove(it->second, {pid, gva_page});
        changed.push_back(it->second);
        it->second = gpa_page;
    } else {
        ++live_;
    }
    add(gpa_page, {pid, gva_page});
    changed.push_back(gpa_page);
}

void GuestMap::unmap(std::int32_t pid, std::uint64_t first_page, std::uint64_t end_page,
                     std::vector<std::uint64_t>& changed) {
    const auto process = processes_.find(pid);
    if (process == processes_.end() || first_page >= end_page) {
        return;
    }
    auto& pages = process->second;
    const auto begin = pages.lower_bound(first_page);
    const auto end = pages.lower_bound(end_page);
    for (auto it = begin; it != end; ++it) {
        remove(it->second, {pid, it->first});
        changed.push_back(it->second);
        --live_;
    }
    pages.erase(begin, end);
    if (pages.empty()) {
        processes_.erase(process);
    }
}

void GuestMap::unmap_all(std::int32_t pid, std::vector<std::uint64_t>& changed) {
    unmap(pid, 0, ~std::uint64_t{0}, changed);
}

std::size_t GuestMap::fork(std::int32_t parent_pid, std::int32_t child_pid) {
    const auto parent = processes_.find(parent_pid);
    if (parent == processes_.end() || parent_pid == child_pid) {
        return 0;
    }
    // Copy first: processes_[child] may rehash and move the parent's node.
    const std::map<std::uint64_t, std::uint64_t> inherited = parent->second;
    std::vector<std::uint64_t> ignored;
    for (const auto& [gva_page, gpa_page] : inherited) {
        map(child_pid, gva_page, gpa_page, ignored);
    }
    return inherited.size();
}

std::uint16_t GuestMap::processes(const GpaPage& page) const {
    if (page.more == 0) {
        return 1;
    }
    const std::vector<Mapper>& more = overflow_[page.more - 1];
    std::uint32_t distinct = 1;
    for (std::size_t i = 0; i < more.size(); ++i) {
        // Small sets: a quadratic scan is cheaper than a set, and a process
        // that maps the page twice counts once.
        bool seen = more[i].pid == page.first.pid;
        for (std::size_t j = 0; j < i && !seen; ++j) {
            seen = more[j].pid == more[i].pid;
        }
        distinct += seen ? 0 : 1;
    }
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(distinct, 0xffff));
}

std::size_t GuestMap::memory_bytes() const {
    std::size_t bytes = reverse_.memory_bytes() + overflow_.capacity() * sizeof(std::vector<Mapper>) +
                        free_overflow_.capacity() * sizeof(std::uint32_t);
    for (const auto& more : overflow_) {
        bytes += more.capacity() * sizeof(Mapper);
    }
    return bytes + (live_ + processes_.size()) * 64 + processes_.bucket_count() * sizeof(void*);
}

}  // namespace vmtrace::isolate
