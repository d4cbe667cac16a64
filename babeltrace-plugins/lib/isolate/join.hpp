// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/isolate/attribution.hpp"
#include "lib/isolate/change_marks.hpp"
#include "lib/isolate/contradictions.hpp"
#include "lib/isolate/cpu_chain.hpp"
#include "lib/isolate/guest_map.hpp"
#include "lib/isolate/host_map.hpp"

namespace vmtrace::isolate {

struct JoinOptions {
    // Sync bound of the memory trace on the host's time base: a host event
    // within this distance of an access may have come before or after it.
    std::int64_t memory_bound_ns = 0;
    std::uint32_t max_cpus = 4096;   // host CPU indexes beyond: counted, the access treated as host mode
    std::uint32_t max_vcpus = 1024;  // per VM
};

struct Counters {
    std::uint64_t in = 0;                                             // accesses fed
    std::uint64_t out = 0;                                            // accesses handed out by drain()
    std::array<std::uint64_t, kAttributionCount> by_attribution{};    // out
    std::vector<std::array<std::uint64_t, kAttributionCount>> by_vm;  // out, per VM index (vm >= 0)
};

struct JoinSizes {
    std::size_t host_mappings = 0;   // live TDP MMU leaf mappings
    std::size_t guest_mappings = 0;  // live (pid, gva page) mappings, all guests
    std::size_t host_marks = 0;      // change marks kept
    std::size_t guest_marks = 0;
    std::size_t pending = 0;       // accesses waiting (not yet final or not yet drained)
    std::size_t memory_bytes = 0;  // the containers (std::map nodes estimated)
};

// The join: attributes each memory access to a VM, guest process and
// thread, GPA and GVA (docs/isolation.md).
//
// Feeding: every call takes the host-base time of its event; events and
// accesses of all traces are fed merged, in non-decreasing time (an older
// one is applied but counted as time_backwards).  Host events name a VM by
// its vm_pid, guest events by the VM index (vm_of_pid; the sync's pairing
// says which guest trace is which VM).  Calls without a time
// (host_vcpu_thread, guest_thread) are statedumps: state, not changes.
//
// Pending and release: access() attributes against the state at the
// access's time at once, but a change up to `lag()` later can still make
// it ambiguous, so the Result is held.  It becomes final when something
// (event, access or advance()) with a time > access time + lag() is fed;
// flush() at the end of the input makes every held access final.  drain()
// hands out the final ones, in input order.  lag() = memory bound + the
// largest guest bound: bind every guest before feeding accesses.
//
// Ambiguity: the access is ambiguous (candidates = 2, the other fields the
// answer at its time) when, within the memory bound of its time, the host
// mapping of its page changed (any level), or its CPU switched host thread
// or entered or left guest mode; or, when the answer read the guest's
// state, within memory bound + that guest's bound, the vCPU switched guest
// thread or the mappers of the GPA page changed (guest_mm_map, unmap; not
// fork: the child cannot have run before it).  A mapping statedump record
// (host_tdp_map op 4, guest_mm_map with access bit 8) that repeats what the
// join knows is no change; one that adds a mapping is one.  Exact unless
// one key changed twice in the interval between its own bound and lag():
// then ambiguous (ChangeTimes).
//
// The guest thread of an access is the one the vCPU runs (guest
// sched_switch); its process is known from guest_thread, guest_fork or the
// pid of its guest_mm_map (tid 0, the idle task: pid 0).  A thread of
// unknown process maps nothing: guest-kernel or shared-other.
//
// Memory: live mappings + held accesses + change marks of the last 2 lag()
// (pruned as time advances) + threads and CPUs seen.
class Join {
public:
    explicit Join(JoinOptions options = {});

    // VMs.  A VM is created by the first use of its vm_pid (> 0); -1 past the limit.
    int vm_of_pid(std::int32_t vm_pid);
    [[nodiscard]] int vm_count() const { return static_cast<int>(vm_pids_.size()); }
    [[nodiscard]] std::int32_t vm_pid(int vm) const { return vm_pids_[static_cast<std::size_t>(vm)]; }
    // The guest trace of VM `vm` is on the host base within guest_bound_ns.
    void bind_guest(int vm, std::int64_t guest_bound_ns);
    // Every stream of VM `vm`'s guest trace has ended (its session stopped
    // while the VM ran on): what its vCPUs run is no longer known, so its
    // accesses are guest_untraced until a guest event comes again.
    void guest_trace_end(int vm);
    // Every stream of the host trace has ended while the memory trace goes
    // on: the host map and what each CPU runs are no longer known, so every
    // later access is host_untraced.
    void host_trace_end() { host_ended_ = true; }
    // The memory trace's sync bound, when known only after construction
    // (its trace announces it): call before the first access.
    void set_memory_bound(std::int64_t memory_bound_ns);
    [[nodiscard]] std::int64_t lag() const { return lag_; }

    // Host events.
    void host_tdp_map(std::int64_t t, std::int32_t vm_pid, std::uint8_t as_id, std::uint64_t gfn, std::uint64_t pfn,
                      std::uint64_t old_pfn, std::uint8_t level, std::uint8_t op);
    void host_sched_switch(std::int64_t t, std::uint32_t cpu, std::int32_t next_tid);
    void host_kvm_entry(std::int64_t t, std::uint32_t cpu);  // the thread current on cpu enters guest mode
    void host_kvm_exit(std::int64_t t, std::uint32_t cpu);
    void host_vcpu_thread(std::int32_t vm_pid, std::uint32_t vcpu, std::int32_t tid);

    // Guest events, times already on the host base.
    void guest_sched_switch(std::int64_t t, int vm, std::uint32_t vcpu, std::int32_t next_tid,
                            std::string_view next_comm);
    void guest_thread(int vm, std::int32_t tid, std::int32_t pid, std::string_view comm);
    void guest_fork(std::int64_t t, int vm, std::int32_t parent_pid, std::int32_t child_pid, std::int32_t child_tid,
                    std::string_view child_comm);
    void guest_mm_map(std::int64_t t, int vm, std::int32_t pid, std::int32_t tid, std::uint64_t gva, std::uint64_t gpa);
    // reason 0: [start, end) of pid; 1 (exit), 2 (execve): all of pid.
    void guest_mm_unmap(std::int64_t t, int vm, std::int32_t pid, std::uint64_t start, std::uint64_t end,
                        std::uint8_t reason);

    // Accesses (records in).
    void access(const Access& a);
    // Nothing else happens until t (a quiet stretch of every input).
    void advance(std::int64_t t) { advance_to(t); }
    // The end of the input: every held access becomes final.
    void flush();

    // Hands each final access to f(const Access&, const Result&), in input
    // order, and forgets it; returns how many.  Call it after every batch of
    // input: final accesses wait here until then.  f must not feed the join.
    template <typename F>
    std::size_t drain(F&& f) {
        const std::uint64_t begin = head_;
        for (; head_ != final_; ++head_) {
            const Pending& p = ring_[head_ & mask_];
            count_out(p.result);
            f(std::as_const(p.access), std::as_const(p.result));
        }
        return static_cast<std::size_t>(head_ - begin);
    }
    [[nodiscard]] std::size_t ready() const { return static_cast<std::size_t>(final_ - head_); }
    [[nodiscard]] std::size_t held() const { return static_cast<std::size_t>(tail_ - final_); }

    [[nodiscard]] const Counters& counters() const { return counters_; }
    [[nodiscard]] const Contradictions& contradictions() const { return contradictions_; }
    [[nodiscard]] JoinSizes sizes() const;

private:
    struct Pending {
        Access access;
        Result result;
        std::int32_t guest_vm = -1;  // the VM whose vCPU state the answer read, -1: none
        std::uint32_t vcpu = 0;
        bool read_gpa = false;  // the answer read the guest map of guest_vm
        bool ambiguous = false;
    };
    struct CpuCache {  // the last page an access of this CPU looked up
        std::uint64_t page = ~std::uint64_t{0};
        std::uint64_t generation = 0;
        HostHit hit;
        const GpaPage* guest = nullptr;
    };

    void advance_to(std::int64_t t);
    void check_host(Pending& p) const;
    void finalize(Pending& p) const;
    void attribute(const Access& a, Pending& p);
    bool guest_vm_ok(int vm, std::int64_t t, std::string_view event);
    bool guest_event_ok(int vm, std::int64_t t, std::string_view event);
    void mark_guest_pages(int vm, std::int64_t t);
    void grow_ring();
    void count_out(const Result& r) {
        ++counters_.out;
        ++counters_.by_attribution[static_cast<std::size_t>(r.attribution)];
        if (r.vm >= 0) {
            ++counters_.by_vm[static_cast<std::size_t>(r.vm)][static_cast<std::size_t>(r.attribution)];
        }
    }
    static std::uint64_t host_mark_key(std::uint64_t page, unsigned level) {
        return ((page >> (9 * (level - 1))) << 2) | (level - 1);
    }
    static std::uint64_t guest_mark_key(int vm, std::uint64_t gpa_page) {
        return (gpa_page << 12) | static_cast<std::uint64_t>(vm);
    }

    JoinOptions options_;
    std::int64_t lag_;
    std::int64_t now_ = ChangeTimes::kNever;
    std::int64_t next_prune_ = ChangeTimes::kNever;
    std::uint64_t generation_ = 1;  // bumped by every mapping change: invalidates the CPU caches

    Contradictions contradictions_;
    HostMap host_;
    std::vector<GuestMap> guests_;
    // Per VM: whether its guest trace says what runs (before its first
    // event, a page no known process maps is guest_untraced, not
    // guest_kernel; after its end every page is).
    enum class Traced : char { not_yet, yes, ended };
    std::vector<Traced> guest_traced_;
    bool host_ended_ = false;
    std::vector<std::int64_t> guest_bounds_;
    CpuChain chain_;
    ChangeMarks host_marks_;
    ChangeMarks guest_marks_;
    std::vector<CpuCache> caches_;  // per CPU
    std::vector<std::int32_t> vm_pids_;
    std::unordered_map<std::int32_t, int> vm_by_pid_;
    std::vector<std::uint64_t> changed_;  // scratch for the guest map's changed pages

    // Held accesses: a ring indexed by sequence numbers.  [head_, final_)
    // final, waiting for drain(); [final_, checked_) host side checked;
    // [checked_, tail_) just attributed.
    std::vector<Pending> ring_;
    std::uint64_t mask_ = 0;
    std::uint64_t head_ = 0;
    std::uint64_t final_ = 0;
    std::uint64_t checked_ = 0;
    std::uint64_t tail_ = 0;

    Counters counters_;
};

}  // namespace vmtrace::isolate
