// SPDX-License-Identifier: MIT
#include "lib/isolate/join.hpp"

#include <fmt/format.h>
#include <algorithm>

namespace vmtrace::isolate {

namespace {

constexpr std::uint64_t kPage = 4096;

}  // namespace

Join::Join(JoinOptions options)
    : options_(options),
      lag_(options.memory_bound_ns),
      host_(contradictions_),
      chain_(options.max_cpus, options.max_vcpus) {
    ring_.resize(1024);
    mask_ = ring_.size() - 1;
}

int Join::vm_of_pid(std::int32_t vm_pid) {
    if (vm_pid <= 0) {
        return -1;
    }
    const auto [it, inserted] = vm_by_pid_.try_emplace(vm_pid, static_cast<int>(vm_pids_.size()));
    if (inserted) {
        if (vm_pids_.size() >= static_cast<std::size_t>(HostMap::kMaxVms)) {
            vm_by_pid_.erase(it);
            return -1;
        }
        vm_pids_.push_back(vm_pid);
        guests_.emplace_back();
        guest_traced_.push_back(Traced::not_yet);
        guest_bounds_.push_back(0);
        chain_.add_vm();
        counters_.by_vm.emplace_back();
        ++generation_;  // the CPU caches point into guests_
    }
    return it->second;
}

void Join::bind_guest(int vm, std::int64_t guest_bound_ns) {
    if (vm < 0 || vm >= vm_count()) {
        return;
    }
    guest_bounds_[static_cast<std::size_t>(vm)] = guest_bound_ns;
    lag_ = options_.memory_bound_ns + *std::max_element(guest_bounds_.begin(), guest_bounds_.end());
}

void Join::set_memory_bound(std::int64_t memory_bound_ns) {
    options_.memory_bound_ns = memory_bound_ns;
    lag_ =
        memory_bound_ns + (guest_bounds_.empty() ? 0 : *std::max_element(guest_bounds_.begin(), guest_bounds_.end()));
}

// Every held access whose window [t - bound, t + bound] is now complete is
// checked: host side (memory bound) first, then guest side (lag).  Called
// before the event at time t is applied, so no change later than a window
// is applied when that window is checked, except in the batches ChangeTimes
// allows for.
void Join::advance_to(std::int64_t t) {
    if (t < now_) {
        contradictions_.add(Contradiction::time_backwards, [&] {
            return fmt::format("an event at {} ns after one at {} ns (the inputs must be merged in time order)", t,
                               now_);
        });
        return;
    }
    now_ = t;
    const std::int64_t bound = options_.memory_bound_ns;
    while (checked_ != tail_) {
        Pending& p = ring_[checked_ & mask_];
        if (p.access.time + bound >= t) {
            break;
        }
        check_host(p);
        ++checked_;
    }
    while (final_ != checked_) {
        Pending& p = ring_[final_ & mask_];
        if (p.access.time + lag_ >= t) {
            break;
        }
        finalize(p);
        ++final_;
    }
    if (t >= next_prune_) {
        // Marks older than 2 lag before now cannot reach any held access.
        const std::int64_t before = t - 2 * lag_ - 1;
        host_marks_.prune(before);
        guest_marks_.prune(before);
        next_prune_ = t + std::max<std::int64_t>(lag_, 1000);
    }
}

// check_host, finalize and attribute run once per access: inlined, the
// replay in join_benchmark takes 3.5 % fewer instructions (callgrind).
[[gnu::always_inline]] inline void Join::check_host(Pending& p) const {
    const Access& a = p.access;
    const std::int64_t bound = options_.memory_bound_ns;
    if (p.result.attribution == Attribution::host_untraced) {
        return;  // depends on nothing that could change
    }
    if (const HostCpu* c = chain_.cpu(a.cpu); c != nullptr && c->changes.within(a.time, bound)) {
        p.ambiguous = true;
        return;
    }
    if (host_marks_.any_since(a.time - bound)) {
        const std::uint64_t page = a.hpa / kPage;
        for (unsigned level = 1; level <= 3; ++level) {
            if (host_marks_.within(host_mark_key(page, level), a.time, bound)) {
                p.ambiguous = true;
                return;
            }
        }
    }
}

[[gnu::always_inline]] inline void Join::finalize(Pending& p) const {
    if (!p.ambiguous && p.guest_vm >= 0) {
        const std::int64_t bound = options_.memory_bound_ns + guest_bounds_[static_cast<std::size_t>(p.guest_vm)];
        const Vcpu* v = chain_.vcpu(p.guest_vm, p.vcpu);
        p.ambiguous =
            (v != nullptr && v->switches.within(p.access.time, bound)) ||
            (p.read_gpa && guest_marks_.within(guest_mark_key(p.guest_vm, p.result.gpa / kPage), p.access.time, bound));
    }
    if (p.ambiguous) {
        p.result.attribution = Attribution::ambiguous;
        p.result.candidates = 2;
    }
}

void Join::flush() {
    while (checked_ != tail_) {
        check_host(ring_[checked_++ & mask_]);
    }
    while (final_ != checked_) {
        finalize(ring_[final_++ & mask_]);
    }
}

void Join::grow_ring() {
    std::vector<Pending> bigger(ring_.size() * 2);
    for (std::uint64_t s = head_; s != tail_; ++s) {
        bigger[s & (bigger.size() - 1)] = ring_[s & mask_];
    }
    ring_.swap(bigger);
    mask_ = ring_.size() - 1;
}

void Join::access(const Access& a) {
    advance_to(a.time);
    ++counters_.in;
    if (tail_ - head_ == ring_.size()) {
        grow_ring();
    }
    Pending& p = ring_[tail_++ & mask_];
    p.access = a;
    attribute(a, p);
}

[[gnu::always_inline]] inline void Join::attribute(const Access& a, Pending& p) {
    Result& r = p.result;
    r = Result{};
    p.guest_vm = -1;
    p.read_gpa = false;
    p.ambiguous = false;
    if (host_ended_) [[unlikely]] {
        r.attribution = Attribution::host_untraced;
        return;
    }
    const std::uint64_t page = a.hpa / kPage;
    const std::uint64_t offset = a.hpa % kPage;

    const HostCpu* cpu = chain_.cpu(a.cpu);
    CpuCache* cache = nullptr;
    if (cpu != nullptr) {
        if (a.cpu >= caches_.size()) {
            caches_.resize(a.cpu + 1);
        }
        cache = &caches_[a.cpu];
    } else if (a.cpu >= options_.max_cpus) {
        contradictions_.add(Contradiction::cpu_out_of_range, [&] {
            return fmt::format("access at {} ns on cpu {} (limit {})", a.time, a.cpu, options_.max_cpus);
        });
    }

    HostHit hit;
    const GpaPage* guest = nullptr;
    if (cache != nullptr && cache->page == page && cache->generation == generation_) {
        hit = cache->hit;
        guest = cache->guest;
    } else {
        hit = host_.lookup(page);
        if (hit.vm >= 0) {
            guest = guests_[static_cast<std::size_t>(hit.vm)].find(hit.gpa_page);
        }
        if (cache != nullptr) {
            *cache = {page, generation_, hit, guest};
        }
    }

    const bool guest_mode = cpu != nullptr && cpu->guest_mode;
    if (cpu != nullptr) {
        r.host_tid = cpu->host_tid;
    }
    const Vcpu* vcpu = nullptr;
    if (guest_mode && cpu->vm >= 0) {
        vcpu = chain_.vcpu(cpu->vm, cpu->vcpu);
        p.guest_vm = cpu->vm;
        p.vcpu = cpu->vcpu;
        if (vcpu != nullptr) {
            r.tid = vcpu->tid;
            r.pid = vcpu->pid;
            r.comm = vcpu->comm;
        }
    }

    if (hit.vm < 0) {
        if (guest_mode) {
            // The CPU executes a guest, so the page must be mapped: the
            // mapping predates the trace.
            r.attribution = Attribution::before_map;
            r.vm = cpu->vm;
        } else {
            r.attribution = Attribution::host;
        }
        return;
    }
    r.vm = hit.vm;
    r.gpa = hit.gpa_page * kPage + offset;
    if (!guest_mode || cpu->vm != hit.vm) {
        r.attribution = Attribution::host_on_behalf;
        r.pid = r.tid = -1;
        r.comm = nullptr;
        p.guest_vm = -1;
        return;
    }
    p.read_gpa = true;
    const Traced traced = guest_traced_[static_cast<std::size_t>(hit.vm)];
    if (traced == Traced::ended) {
        // The last thread the trace named may long be gone: name none.
        r.attribution = Attribution::guest_untraced;
        r.pid = r.tid = -1;
        r.comm = nullptr;
        return;
    }
    if (guest == nullptr) {
        r.attribution = traced == Traced::yes ? Attribution::guest_kernel : Attribution::guest_untraced;
        return;
    }
    const Mapper* mine = r.pid >= 0 ? guests_[static_cast<std::size_t>(hit.vm)].mapper_of(*guest, r.pid) : nullptr;
    if (mine != nullptr) {
        r.attribution = Attribution::guest;
        r.gva = mine->gva_page * kPage + offset;
    } else {
        r.attribution = Attribution::shared_other;
        r.candidates = guests_[static_cast<std::size_t>(hit.vm)].processes(*guest);
    }
}

void Join::host_tdp_map(std::int64_t t, std::int32_t vm_pid, std::uint8_t as_id, std::uint64_t gfn, std::uint64_t pfn,
                        std::uint64_t old_pfn, std::uint8_t level, std::uint8_t op) {
    advance_to(t);
    TdpEvent e;
    e.time = t;
    e.vm_pid = vm_pid;
    e.vm = vm_pid == 0 ? -1 : vm_of_pid(vm_pid);
    if (vm_pid != 0 && e.vm < 0) {
        e.vm = HostMap::kMaxVms;  // refused by HostMap, counted there
    }
    e.as_id = as_id;
    e.gfn = gfn;
    e.pfn = pfn;
    e.old_pfn = old_pfn;
    e.level = level;
    e.op = op;
    const TouchedPages touched = host_.apply(e);
    if (touched.count == 0) {
        return;
    }
    ++generation_;
    for (std::uint8_t i = 0; i < touched.count; ++i) {
        host_marks_.mark(host_mark_key(touched.pfn[i], touched.level), t);
    }
}

void Join::host_sched_switch(std::int64_t t, std::uint32_t cpu, std::int32_t next_tid) {
    advance_to(t);
    if (!chain_.host_sched_switch(t, cpu, next_tid)) {
        contradictions_.add(Contradiction::cpu_out_of_range,
                            [&] { return fmt::format("sched_switch at {} ns on cpu {}", t, cpu); });
    }
}

void Join::host_kvm_entry(std::int64_t t, std::uint32_t cpu) {
    advance_to(t);
    if (!chain_.host_kvm_entry(t, cpu)) {
        contradictions_.add(Contradiction::cpu_out_of_range,
                            [&] { return fmt::format("kvm entry at {} ns on cpu {}", t, cpu); });
    }
}

void Join::host_kvm_exit(std::int64_t t, std::uint32_t cpu) {
    advance_to(t);
    if (!chain_.host_kvm_exit(t, cpu)) {
        contradictions_.add(Contradiction::cpu_out_of_range,
                            [&] { return fmt::format("kvm exit at {} ns on cpu {}", t, cpu); });
    }
}

void Join::host_vcpu_thread(std::int32_t vm_pid, std::uint32_t vcpu, std::int32_t tid) {
    const int vm = vm_of_pid(vm_pid);
    if (vm < 0 || !chain_.host_vcpu_thread(vm, vcpu, tid)) {
        contradictions_.add(Contradiction::cpu_out_of_range, [&] {
            return fmt::format("vCPU {} of vm_pid {} (thread {}): no such VM or vCPU index too large", vcpu, vm_pid,
                               tid);
        });
    }
}

bool Join::guest_vm_ok(int vm, std::int64_t t, std::string_view event) {
    if (vm >= 0 && vm < vm_count()) {
        return true;
    }
    contradictions_.add(Contradiction::bad_guest_event,
                        [&] { return fmt::format("{} at {} ns: no VM of index {}", event, t, vm); });
    return false;
}

// A timed event of the guest trace (not guest_thread, which the filter also
// calls when it ties a guest to its VM): the VM's guest trace has begun.
bool Join::guest_event_ok(int vm, std::int64_t t, std::string_view event) {
    if (!guest_vm_ok(vm, t, event)) {
        return false;
    }
    guest_traced_[static_cast<std::size_t>(vm)] = Traced::yes;
    return true;
}

void Join::guest_trace_end(int vm) {
    if (vm >= 0 && vm < vm_count()) {
        guest_traced_[static_cast<std::size_t>(vm)] = Traced::ended;
    }
}

void Join::guest_sched_switch(std::int64_t t, int vm, std::uint32_t vcpu, std::int32_t next_tid,
                              std::string_view next_comm) {
    advance_to(t);
    if (guest_event_ok(vm, t, "guest sched_switch") && !chain_.guest_sched_switch(t, vm, vcpu, next_tid, next_comm)) {
        contradictions_.add(Contradiction::cpu_out_of_range,
                            [&] { return fmt::format("guest sched_switch at {} ns on vCPU {}", t, vcpu); });
    }
}

void Join::guest_thread(int vm, std::int32_t tid, std::int32_t pid, std::string_view comm) {
    if (guest_vm_ok(vm, now_, "guest thread")) {
        chain_.guest_thread(vm, tid, pid, comm);
    }
}

void Join::guest_fork(std::int64_t t, int vm, std::int32_t parent_pid, std::int32_t child_pid, std::int32_t child_tid,
                      std::string_view child_comm) {
    advance_to(t);
    if (!guest_event_ok(vm, t, "sched_process_fork")) {
        return;
    }
    chain_.guest_thread(vm, child_tid, child_pid, child_comm);
    if (child_pid != parent_pid && guests_[static_cast<std::size_t>(vm)].fork(parent_pid, child_pid) != 0) {
        ++generation_;
    }
}

void Join::mark_guest_pages(int vm, std::int64_t t) {
    if (changed_.empty()) {
        return;
    }
    ++generation_;
    for (const std::uint64_t gpa_page : changed_) {
        guest_marks_.mark(guest_mark_key(vm, gpa_page), t);
    }
    changed_.clear();
}

void Join::guest_mm_map(std::int64_t t, int vm, std::int32_t pid, std::int32_t tid, std::uint64_t gva,
                        std::uint64_t gpa) {
    advance_to(t);
    if (!guest_event_ok(vm, t, "guest_mm_map")) {
        return;
    }
    if (pid < 0 || gpa / kPage > HostMap::kMaxFrame) {
        contradictions_.add(Contradiction::bad_guest_event, [&] {
            return fmt::format("guest_mm_map at {} ns: pid {} gva {:#x} gpa {:#x}", t, pid, gva, gpa);
        });
        return;
    }
    chain_.guest_thread(vm, tid, pid, {});
    guests_[static_cast<std::size_t>(vm)].map(pid, gva / kPage, gpa / kPage, changed_);
    mark_guest_pages(vm, t);
}

void Join::guest_mm_unmap(std::int64_t t, int vm, std::int32_t pid, std::uint64_t start, std::uint64_t end,
                          std::uint8_t reason) {
    advance_to(t);
    if (!guest_event_ok(vm, t, "guest_mm_unmap")) {
        return;
    }
    GuestMap& guest = guests_[static_cast<std::size_t>(vm)];
    if (reason == 1 || reason == 2) {
        guest.unmap_all(pid, changed_);
    } else {
        // Every page that overlaps [start, end).
        guest.unmap(pid, start / kPage, end / kPage + (end % kPage != 0 ? 1 : 0), changed_);
    }
    mark_guest_pages(vm, t);
}

JoinSizes Join::sizes() const {
    JoinSizes s;
    s.host_mappings = host_.live();
    s.host_marks = host_marks_.size();
    s.guest_marks = guest_marks_.size();
    s.pending = static_cast<std::size_t>(tail_ - head_);
    s.memory_bytes = host_.memory_bytes() + host_marks_.memory_bytes() + guest_marks_.memory_bytes() +
                     chain_.memory_bytes() + ring_.capacity() * sizeof(Pending) + caches_.capacity() * sizeof(CpuCache);
    for (const GuestMap& g : guests_) {
        s.guest_mappings += g.live();
        s.memory_bytes += g.memory_bytes();
    }
    return s;
}

}  // namespace vmtrace::isolate
