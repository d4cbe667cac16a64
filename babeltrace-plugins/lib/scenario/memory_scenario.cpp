// SPDX-License-Identifier: MIT
#include "memory_scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

namespace vmtrace::scenario {
namespace {

// Guest events keep this far from the edges of the guest-mode window they
// are placed in, as the base simulation's guest events do (a guest's
// tracer runs some instructions after entry and before an exit).
constexpr std::int64_t kGuestMargin = 2'000;
// A guest page fault: the guest kernel zeroes the new page (the host's
// NPF, if any, comes then), installs the PTE (guest_mm_map) and returns
// to the access.
constexpr std::int64_t kFaultToAccess = 1'500;
constexpr std::int64_t kNpfBeforeFault = 1'000;
constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kHeapVa = 0x0000'5555'5555'0000ULL;     // private pages: a heap
constexpr std::uint64_t kLibraryVa = 0x0000'7f3a'c000'0000ULL;  // the shared library, at one address everywhere
constexpr std::uint64_t kKernelGfns = 2048;                     // guest kernel text and data
constexpr std::uint64_t kHostKernelPfn = 0x10000;               // host memory no VM ever gets
constexpr std::uint64_t kHostKernelPages = 8192;
constexpr std::uint64_t kFirstVmPfn = 0x40000;
constexpr std::size_t kPfnReuseDelay = 256;  // freed host pages wait this many allocations
const char* const kQemuComm = "qemu-system-x86";

std::uint64_t page_of(std::uint64_t address) {
    return address / kPage;
}

}  // namespace

struct MemoryScenario::State {
    struct Process {
        std::int32_t pid = 0;
        const std::string* comm = nullptr;
        std::vector<std::uint64_t> priv;        // gfn of private page i, kNone: not mapped
        std::vector<std::uint32_t> mapped;      // indexes of mapped private pages
        std::vector<std::uint32_t> mapped_pos;  // position in `mapped` of each index
        std::vector<bool> library;              // library page i mapped by the process
        std::uint32_t last = std::numeric_limits<std::uint32_t>::max();
    };
    struct Owner {
        std::int32_t pid;
        std::uint64_t gva_page;
    };
    struct Guest {
        std::int32_t vm_pid = 0;
        std::unordered_map<std::uint64_t, std::uint64_t> pfn4k;  // gfn -> pfn
        std::unordered_map<std::uint64_t, std::uint64_t> pfn2m;  // gfn >> 9 -> first pfn
        std::vector<std::uint64_t> traced;                       // 4 KiB gfns installed by a traced event
        std::unordered_map<std::uint64_t, std::size_t> traced_pos;
        std::vector<std::uint64_t> free_gfns;
        std::unordered_map<std::uint64_t, std::vector<Owner>> owners;  // gfn -> processes mapping it
        std::vector<Process> processes;
        std::unordered_map<std::int32_t, int> process_of_tid;
        std::vector<std::uint64_t> library_gfns;
        std::uint64_t kernel_base = 0;
        std::uint64_t premapped_kernel = 0;  // kernel gfns below kernel_base + this: mapped before tracing
        std::uint64_t huge_limit = 0;        // gfns below: 2 MiB host pages
        bool statedump_done = false;
    };
    struct Pcpu {
        std::int32_t host_tid = 0;
        int guest_vcpu = -1;  // global vCPU index in guest mode here
    };
    struct Vcpu {
        unsigned guest = 0;
        unsigned index = 0;
        std::int64_t entry = 0;
        std::int32_t guest_tid = 0;
    };

    std::vector<Guest> guests;
    std::vector<Pcpu> pcpus;
    std::vector<Vcpu> vcpus;
    std::unordered_map<std::int32_t, unsigned> vcpu_of_tid;  // host vCPU thread -> global vCPU
    std::uint64_t next_pfn = kFirstVmPfn;
    std::deque<std::uint64_t> freed_pfns;
    std::uint64_t next_huge_pfn = 0x4000000;
    std::int64_t next_memsync = 0;
    std::uint32_t memsync_cnt = 0;
    std::uint64_t released_accesses = 0;
    std::uint32_t dropping = 0;       // records of a lost burst still to drop
    std::uint64_t host_mappings = 0;  // kvm_tdp_mmu_map events made
    std::mt19937_64 rng;

    double unit() { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
    std::int64_t exp_ns(double mean) {
        const double u = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
        return static_cast<std::int64_t>(-std::log(u) * mean);
    }
    std::uint64_t below(std::uint64_t n) { return rng() % n; }

    std::uint64_t allocate_pfn() {
        if (freed_pfns.size() > kPfnReuseDelay) {
            const std::uint64_t pfn = freed_pfns.front();
            freed_pfns.pop_front();
            return pfn;
        }
        next_pfn += 1 + below(3);  // not contiguous: host RAM is fragmented
        return next_pfn;
    }
};

// One thing to do at one time on one CPU, planned for a window in which
// the CPU's state is constant.
struct MemoryScenario::Planned {
    enum class What : std::uint8_t { access, munmap, exec, remap, memsync, statedump };
    std::int64_t time;
    unsigned cpu;
    What what;
    // the window's guest-event limits (guest mode only)
    std::int64_t guest_lo;
    std::int64_t guest_hi;
    unsigned guest = 0;     // remap, statedump
    std::int64_t from = 0;  // the window's start: nothing may happen before it
};

MemoryScenario::MemoryScenario(const ScenarioConfig& config, StateObserver* observer, MemoryTruth* truth)
    : base_(config, observer), truth_(truth), state_(std::make_unique<State>()) {
    const MemoryConfig& mem = base_.config().memory;
    if (!mem.enabled) {
        return;
    }
    State& s = *state_;
    s.rng.seed(base_.config().seed * 0x9e3779b97f4a7c15ULL + 0x6d656d);
    // The tracer's clock: its own origin and drift, the host's reference.
    const MachineClock& host = base_.host_clock();
    tracer_clock_.offset_ns = host.offset_ns;
    tracer_clock_.base_ns = host.base_ns + static_cast<std::int64_t>(std::llround(mem.tracer_offset_s * 1e9));
    tracer_clock_.drift_ppb = static_cast<std::int64_t>(std::llround(mem.tracer_drift_ppm * 1000.0));

    const unsigned guests = base_.config().guests;
    const unsigned vcpus = base_.config().vcpus_per_guest;
    s.pcpus.resize(base_.host_cpus());
    s.guests.resize(guests);
    for (unsigned g = 0; g < guests; ++g) {
        State::Guest& guest = s.guests[g];
        guest.vm_pid = base_.guests()[g].qemu_pid;
        const std::uint64_t ram_pages = std::uint64_t{mem.guest_ram_mb} << 8;
        guest.huge_limit = static_cast<std::uint64_t>(static_cast<double>(ram_pages) * mem.huge_share) & ~511ULL;
        guest.kernel_base = guest.huge_limit;
        guest.premapped_kernel =
            static_cast<std::uint64_t>(std::llround(static_cast<double>(kKernelGfns) * mem.premapped_kernel_share));
        for (std::uint64_t k = 0; k < guest.premapped_kernel; ++k) {
            guest.pfn4k[guest.kernel_base + k] = s.allocate_pfn();
        }
        // Free guest RAM: a share of it in the 2 MiB-backed range, the rest
        // above the kernel, in the scattered order a buddy allocator gives.
        for (std::uint64_t gfn = 0x100; gfn < guest.huge_limit; ++gfn) {
            guest.free_gfns.push_back(gfn);
        }
        for (std::uint64_t gfn = guest.kernel_base + kKernelGfns; gfn < ram_pages; ++gfn) {
            guest.free_gfns.push_back(gfn);
        }
        std::shuffle(guest.free_gfns.begin(), guest.free_gfns.end(), s.rng);
        for (unsigned i = 0; i < mem.shared_pages; ++i) {
            guest.library_gfns.push_back(guest.free_gfns.back());
            guest.free_gfns.pop_back();
        }
        const auto threads = base_.guest_threads(g);
        const unsigned processes = mem.processes_per_guest != 0
                                       ? mem.processes_per_guest
                                       : static_cast<unsigned>(std::max<std::size_t>(1, threads.size() / 2));
        guest.processes.resize(processes);
        for (std::size_t t = 0; t < threads.size(); ++t) {
            const auto p = static_cast<unsigned>(t * processes / threads.size());
            State::Process& process = guest.processes[p];
            if (process.comm == nullptr) {
                process.pid = threads[t].tid;
                process.comm = threads[t].comm;
                process.priv.assign(mem.pages_per_process, kNone);
                process.mapped_pos.assign(mem.pages_per_process, 0);
                process.library.assign(mem.shared_pages, false);
            }
            guest.process_of_tid[threads[t].tid] = static_cast<int>(p);
        }
        for (unsigned v = 0; v < vcpus; ++v) {
            s.vcpu_of_tid[base_.vcpu_tid(g, v)] = static_cast<unsigned>(s.vcpus.size());
            s.vcpus.push_back(State::Vcpu{g, v, 0, 0});
        }
    }
    s.next_memsync = mem.memsync_period_ns / 2;
    emit_statedumps_host();
}

MemoryScenario::~MemoryScenario() = default;

std::vector<std::string> MemoryScenario::guest_names() const {
    std::vector<std::string> names;
    for (const GuestIdentity& id : base_.guests()) {
        names.push_back(id.hostname);
    }
    return names;
}

void MemoryScenario::push(const SimEvent& event, const MemoryTruthRecord* truth) {
    Queued q{event.time, seq_++, event};
    if (truth != nullptr) {
        q.has_truth = true;
        q.truth = *truth;
    }
    queue_.push(std::move(q));
}

void MemoryScenario::emit_statedumps_host() {
    State& s = *state_;
    const MemoryConfig& mem = base_.config().memory;
    for (unsigned g = 0; g < s.guests.size(); ++g) {
        SimEvent vm;
        vm.machine = 0;
        vm.type = EventType::vm_statedump_vm;
        vm.pid = s.guests[g].vm_pid;
        vm.tid = s.guests[g].vm_pid;
        vm.count = base_.config().vcpus_per_guest;
        vm.comm = kQemuComm;
        push(vm);
        for (unsigned v = 0; v < base_.config().vcpus_per_guest; ++v) {
            SimEvent vcpu = vm;
            vcpu.type = EventType::vm_statedump_vcpu;
            vcpu.count = v;
            vcpu.tid = base_.vcpu_tid(g, v);
            push(vcpu);
        }
        if (!mem.statedump || !mem.host_mappings) {
            continue;
        }
        // The host module's mapping statedump: the guest kernel pages
        // mapped before tracing (never zapped or moved afterwards).
        const State::Guest& guest = s.guests[g];
        for (std::uint64_t gfn = guest.kernel_base; gfn < guest.kernel_base + guest.premapped_kernel; ++gfn) {
            SimEvent e;
            e.machine = 0;
            e.type = EventType::tdp_mmu_map;
            e.pid = guest.vm_pid;
            e.addr = gfn;
            e.addr2 = guest.pfn4k.at(gfn);
            e.level = 1;
            e.op = 4;
            push(e);
            if (truth_ != nullptr) {
                truth_->on_mapping_event();
            }
        }
    }
}

void MemoryScenario::apply_base(const SimEvent& e) {
    State& s = *state_;
    if (e.machine == 0) {
        State::Pcpu& cpu = s.pcpus.at(e.cpu);
        switch (e.type) {
        case EventType::sched_switch:
            cpu.host_tid = e.next_tid;
            break;
        case EventType::kvm_entry: {
            const unsigned v = static_cast<unsigned>(e.guest) * base_.config().vcpus_per_guest + e.vcpu_id;
            cpu.guest_vcpu = static_cast<int>(v);
            s.vcpus[v].entry = e.time;
            break;
        }
        case EventType::kvm_exit:
            cpu.guest_vcpu = -1;
            break;
        default:
            break;
        }
        return;
    }
    if (e.machine <= s.guests.size() && e.type == EventType::sched_switch) {
        const unsigned v = (e.machine - 1) * base_.config().vcpus_per_guest + e.cpu;
        s.vcpus.at(v).guest_tid = e.next_tid;
    }
}

void MemoryScenario::plan_window(std::int64_t from, std::int64_t to) {
    if (to <= from) {
        return;
    }
    State& s = *state_;
    const MemoryConfig& mem = base_.config().memory;
    const double gap = 1000.0 / mem.accesses_per_us;
    std::vector<Planned> plan;
    for (unsigned c = 0; c < s.pcpus.size(); ++c) {
        const State::Pcpu& cpu = s.pcpus[c];
        if (cpu.guest_vcpu < 0 && cpu.host_tid == 0) {
            continue;  // the idle task touches nothing the tracer would see
        }
        std::int64_t lo = 0;
        std::int64_t hi = 0;
        if (cpu.guest_vcpu >= 0) {
            lo = std::max(from, s.vcpus[static_cast<unsigned>(cpu.guest_vcpu)].entry + kGuestMargin);
            hi = to - kGuestMargin;
            const State::Vcpu& vcpu = s.vcpus[static_cast<unsigned>(cpu.guest_vcpu)];
            const State::Guest& guest = s.guests[vcpu.guest];
            if (hi > lo && !guest.statedump_done) {
                plan.push_back(Planned{lo, c, Planned::What::statedump, lo, hi, vcpu.guest});
            }
            const double span = static_cast<double>(to - from);
            if (hi > lo && vcpu.guest_tid != 0) {
                if (s.unit() < span / static_cast<double>(mem.mean_munmap_ns)) {
                    plan.push_back(Planned{lo + static_cast<std::int64_t>(s.below(static_cast<std::uint64_t>(hi - lo))),
                                           c, Planned::What::munmap, lo, hi});
                }
                if (s.unit() < span / static_cast<double>(mem.mean_exec_ns)) {
                    plan.push_back(Planned{lo + static_cast<std::int64_t>(s.below(static_cast<std::uint64_t>(hi - lo))),
                                           c, Planned::What::exec, lo, hi});
                }
            }
        }
        for (std::int64_t t = from + s.exp_ns(gap); t < to; t += 1 + s.exp_ns(gap)) {
            plan.push_back(Planned{t, c, Planned::What::access, lo, hi});
        }
    }
    for (unsigned g = 0; g < s.guests.size(); ++g) {
        if (s.unit() < static_cast<double>(to - from) / static_cast<double>(mem.mean_remap_ns)) {
            plan.push_back(Planned{from + static_cast<std::int64_t>(s.below(static_cast<std::uint64_t>(to - from))), 0,
                                   Planned::What::remap, 0, 0, g});
        }
    }
    while (s.next_memsync < to) {
        if (s.next_memsync >= from) {
            plan.push_back(Planned{s.next_memsync, 0, Planned::What::memsync, 0, 0});
        }
        s.next_memsync += mem.memsync_period_ns;
    }
    for (Planned& action : plan) {
        action.from = from;
    }
    std::stable_sort(plan.begin(), plan.end(), [](const Planned& a, const Planned& b) { return a.time < b.time; });
    for (const Planned& action : plan) {
        carry_out(action);
        // What an action emits is stamped no earlier than the previous
        // action: a page fault placed before an munmap or a zap already
        // carried out would contradict the state it was planned against.
        floor_ = std::max(floor_, action.time);
    }
}

void MemoryScenario::carry_out(const Planned& action) {
    State& s = *state_;
    const MemoryConfig& mem = base_.config().memory;
    const std::int64_t t = action.time;
    const State::Pcpu& cpu = s.pcpus[action.cpu];

    auto tdp = [&](std::int64_t time, unsigned g, std::uint64_t gfn, std::uint64_t pfn, std::uint64_t old_pfn,
                   std::uint8_t level, std::uint8_t op, bool named) {
        SimEvent e;
        e.time = time;
        e.machine = 0;
        e.cpu = action.cpu;
        e.type = EventType::tdp_mmu_map;
        e.pid = named ? s.guests[g].vm_pid : 0;
        e.addr = gfn;
        e.addr2 = pfn;
        e.addr3 = old_pfn;
        e.level = level;
        e.op = op;
        const bool dropped = mem.drop_host_mapping_every != 0 && ++s.host_mappings % mem.drop_host_mapping_every == 0;
        if (mem.host_mappings && !dropped) {
            push(e);
        }
        if (truth_ != nullptr) {
            truth_->on_mapping_event();
        }
    };
    // The host page of guest page gfn, installing its mapping at `when`
    // if the host has none; kNone if it cannot be installed that early.
    auto host_page = [&](unsigned g, std::uint64_t gfn, std::int64_t when) -> std::uint64_t {
        State::Guest& guest = s.guests[g];
        if (gfn < guest.huge_limit) {
            const std::uint64_t block = gfn >> 9;
            auto found = guest.pfn2m.find(block);
            if (found == guest.pfn2m.end()) {
                const std::uint64_t base = s.next_huge_pfn;
                s.next_huge_pfn += 512 * (1 + s.below(2));
                found = guest.pfn2m.emplace(block, base).first;
                tdp(when, g, block << 9, base, 0, 2, 1, true);
            }
            return found->second + (gfn & 511);
        }
        auto found = guest.pfn4k.find(gfn);
        if (found == guest.pfn4k.end()) {
            found = guest.pfn4k.emplace(gfn, s.allocate_pfn()).first;
            guest.traced_pos[gfn] = guest.traced.size();
            guest.traced.push_back(gfn);
            tdp(when, g, gfn, found->second, 0, 1, 1, true);
        }
        return found->second;
    };
    auto forget_traced = [&](State::Guest& guest, std::uint64_t gfn) {
        auto pos = guest.traced_pos.find(gfn);
        if (pos == guest.traced_pos.end()) {
            return;
        }
        const std::uint64_t last = guest.traced.back();
        guest.traced[pos->second] = last;
        guest.traced_pos[last] = pos->second;
        guest.traced.pop_back();
        guest.traced_pos.erase(gfn);
    };
    auto emit_access = [&](std::uint64_t hpa, std::uint64_t va, const MemoryTruthRecord& truth) {
        SimEvent e;
        e.time = t;
        e.machine = tracer_machine();
        e.cpu = action.cpu;
        e.type = EventType::mem_access;
        e.count = action.cpu;
        e.addr = hpa;
        e.addr2 = va;
        e.level = truth.size;
        e.op = truth.kind;
        push(e, &truth);
    };
    auto base_truth = [&]() {
        MemoryTruthRecord r{};
        r.time = t;
        r.cpu = action.cpu;
        r.vm = -1;
        r.pid = -1;
        r.tid = -1;
        r.host_tid = cpu.host_tid;
        const double roll = s.unit();
        r.kind = roll < 0.1 ? 2 : roll < 0.4 ? 1 : 0;
        r.size = r.kind == 2 ? 4 : static_cast<std::uint8_t>(1u << s.below(4));
        return r;
    };

    switch (action.what) {
    case Planned::What::memsync: {
        // On a CPU in host mode: the host's kernel makes the mark.
        unsigned c = 0;
        for (unsigned i = 0; i < s.pcpus.size(); ++i) {
            if (s.pcpus[i].guest_vcpu < 0) {
                c = i;
                break;
            }
        }
        const std::uint32_t cnt = s.memsync_cnt++;
        const std::int64_t store = t + 500 + s.exp_ns(800);
        const std::int64_t end = store + 500 + s.exp_ns(800);
        SimEvent e;
        e.machine = 0;
        e.cpu = c;
        e.cnt = cnt;
        e.addr = kMemsyncPage;
        e.time = t;
        e.type = EventType::memsync_begin;
        if (mem.memsync) {
            push(e);
        }
        e.time = end;
        e.type = EventType::memsync_end;
        if (mem.memsync) {
            push(e);
        }
        e.time = store;
        e.machine = tracer_machine();
        e.type = EventType::mem_sync;
        e.count = c;
        push(e);
        return;
    }
    case Planned::What::remap: {
        State::Guest& guest = s.guests[action.guest];
        if (guest.traced.empty()) {
            return;
        }
        const std::uint64_t gfn = guest.traced[s.below(guest.traced.size())];
        const std::uint64_t old_pfn = guest.pfn4k.at(gfn);
        if (s.unit() < 0.5) {
            // compaction or NUMA balancing moves the page
            const std::uint64_t pfn = s.allocate_pfn();
            guest.pfn4k[gfn] = pfn;
            tdp(t, action.guest, gfn, pfn, old_pfn, 1, 2, true);
        } else {
            // reclaim zaps it; half of the time from a context naming no VM
            guest.pfn4k.erase(gfn);
            forget_traced(guest, gfn);
            tdp(t, action.guest, gfn, old_pfn, old_pfn, 1, 3, s.unit() < 0.5);
        }
        s.freed_pfns.push_back(old_pfn);
        return;
    }
    default:
        break;
    }

    // The rest runs on action.cpu in its window's state.
    if (cpu.guest_vcpu < 0) {
        if (action.what != Planned::What::access) {
            return;
        }
        MemoryTruthRecord r = base_truth();
        const auto found = s.vcpu_of_tid.find(cpu.host_tid);
        if (found != s.vcpu_of_tid.end() && s.unit() < mem.host_on_behalf_share) {
            // The vCPU thread emulates a device: it reads or writes its
            // VM's RAM (a page the host mapped while tracing).
            const unsigned g = s.vcpus[found->second].guest;
            State::Guest& guest = s.guests[g];
            if (!guest.traced.empty()) {
                const std::uint64_t gfn = guest.traced[s.below(guest.traced.size())];
                const std::uint64_t offset = s.below(kPage) & ~7ULL;
                r.vm = static_cast<std::int32_t>(g);
                r.gpa = gfn * kPage + offset;
                r.hpa = guest.pfn4k.at(gfn) * kPage + offset;
                r.attribution = static_cast<std::uint8_t>(TrueAttribution::host_on_behalf);
                emit_access(r.hpa, 0x7f0000000000ULL + r.gpa, r);
                return;
            }
        }
        const std::uint64_t offset = s.below(kPage) & ~7ULL;
        r.hpa = (kHostKernelPfn + s.below(kHostKernelPages)) * kPage + offset;
        r.attribution = static_cast<std::uint8_t>(TrueAttribution::host);
        emit_access(r.hpa, 0xffff888000000000ULL + r.hpa, r);
        return;
    }

    State::Vcpu& vcpu = s.vcpus[static_cast<unsigned>(cpu.guest_vcpu)];
    const unsigned g = vcpu.guest;
    State::Guest& guest = s.guests[g];
    const unsigned guest_machine = g + 1;
    auto guest_event = [&](std::int64_t time, EventType type) {
        SimEvent e;
        e.time = time;
        e.machine = guest_machine;
        e.cpu = vcpu.index;
        e.type = type;
        return e;
    };
    if (action.what == Planned::What::statedump) {
        if (guest.statedump_done) {
            return;
        }
        guest.statedump_done = true;
        std::int64_t time = action.time;
        for (const auto& thread : base_.guest_threads(g)) {
            SimEvent e = guest_event(time++, EventType::process_statedump);
            e.tid = thread.tid;
            e.pid = guest.processes[static_cast<unsigned>(guest.process_of_tid.at(thread.tid))].pid;
            e.comm = thread.comm->c_str();
            push(e);
        }
        return;
    }
    const std::int32_t tid = vcpu.guest_tid;
    State::Process* process = nullptr;
    if (tid != 0 && guest.statedump_done) {
        process = &guest.processes[static_cast<unsigned>(guest.process_of_tid.at(tid))];
    }
    auto drop_owner = [&](std::uint64_t gfn, std::int32_t pid) {
        auto owners = guest.owners.find(gfn);
        if (owners == guest.owners.end()) {
            return;
        }
        auto& list = owners->second;
        list.erase(std::remove_if(list.begin(), list.end(), [&](const State::Owner& o) { return o.pid == pid; }),
                   list.end());
        if (list.empty()) {
            guest.owners.erase(owners);
        }
    };
    auto unmap_private = [&](State::Process& p, std::uint32_t index) {
        const std::uint64_t gfn = p.priv[index];
        if (gfn == kNone) {
            return;
        }
        drop_owner(gfn, p.pid);
        if (guest.owners.find(gfn) == guest.owners.end()) {
            guest.free_gfns.insert(
                guest.free_gfns.begin() + static_cast<std::ptrdiff_t>(s.below(guest.free_gfns.size() + 1)), gfn);
        }
        p.priv[index] = kNone;
        const std::uint32_t pos = p.mapped_pos[index];
        p.mapped[pos] = p.mapped.back();
        p.mapped_pos[p.mapped.back()] = pos;
        p.mapped.pop_back();
    };
    if (action.what == Planned::What::munmap || action.what == Planned::What::exec) {
        if (process == nullptr) {
            return;
        }
        SimEvent e = guest_event(t, EventType::guest_mm_unmap);
        e.pid = process->pid;
        e.tid = tid;
        if (action.what == Planned::What::exec) {
            for (std::uint32_t i = 0; i < process->priv.size(); ++i) {
                unmap_private(*process, i);
            }
            for (std::size_t i = 0; i < process->library.size(); ++i) {
                if (process->library[i]) {
                    drop_owner(guest.library_gfns[i], process->pid);
                    process->library[i] = false;
                }
            }
            e.addr = 0;
            e.addr2 = kNone;
            e.op = 2;
        } else {
            const auto first = static_cast<std::uint32_t>(s.below(process->priv.size()));
            const auto count =
                static_cast<std::uint32_t>(std::min<std::uint64_t>(1 + s.below(16), process->priv.size() - first));
            for (std::uint32_t i = first; i < first + count; ++i) {
                unmap_private(*process, i);
            }
            e.addr = kHeapVa + std::uint64_t{first} * kPage;
            e.addr2 = kHeapVa + std::uint64_t{first + count} * kPage;
            e.op = 0;
        }
        if (mem.guest_mappings) {
            push(e);
        }
        return;
    }
    if (!guest.statedump_done) {
        return;  // the guest's threads are not known yet
    }

    // An access in guest mode.
    MemoryTruthRecord r = base_truth();
    r.vm = static_cast<std::int32_t>(g);
    r.tid = tid;
    r.pid = process != nullptr ? process->pid : 0;
    const std::uint64_t offset = s.below(kPage) & ~7ULL;
    // A page fault before this access, if the window leaves room for it.
    const std::int64_t fault_time = t - kFaultToAccess;
    const bool may_fault = process != nullptr && fault_time - kNpfBeforeFault >= std::max(action.guest_lo, floor_) &&
                           fault_time < action.guest_hi;
    auto fault = [&](std::uint64_t gva_page, std::uint64_t gfn) {
        host_page(g, gfn, fault_time - kNpfBeforeFault);
        SimEvent e = guest_event(fault_time, EventType::guest_mm_map);
        e.pid = process->pid;
        e.tid = tid;
        e.addr = gva_page * kPage;
        e.addr2 = gfn * kPage;
        e.op = static_cast<std::uint8_t>(4 | (r.kind == 1 ? 1 : 0) | (r.kind == 2 ? 2 : 0));
        if (mem.guest_mappings) {
            push(e);
        }
        guest.owners[gfn].push_back(State::Owner{process->pid, gva_page});
        if (truth_ != nullptr) {
            truth_->on_mapping_event();
        }
    };
    std::uint64_t gfn = kNone;
    std::uint64_t gva_page = 0;
    const double roll = s.unit();
    const double cross = mem.cross_process_share;
    if (process != nullptr && roll >= 0.10 && roll < 0.10 + cross) {
        // copy_to_user into another process's page (a pipe, a futex)
        const auto& other = guest.processes[s.below(guest.processes.size())];
        if (&other != process && !other.mapped.empty()) {
            gfn = other.priv[other.mapped[s.below(other.mapped.size())]];
        }
    } else if (process != nullptr && roll >= 0.10 + cross && roll < 0.25 + cross) {
        const std::uint64_t i = s.below(guest.library_gfns.size());
        if (process->library[i] || may_fault) {
            gfn = guest.library_gfns[i];
            gva_page = page_of(kLibraryVa) + i;
            if (!process->library[i]) {
                process->library[i] = true;
                fault(gva_page, gfn);
            }
        }
    } else if (process != nullptr && roll >= 0.25 + cross) {
        const bool grow = process->mapped.size() < process->priv.size() && (process->mapped.empty() || s.unit() < 0.05);
        if (grow && may_fault && !guest.free_gfns.empty()) {
            std::uint32_t index = static_cast<std::uint32_t>(s.below(process->priv.size()));
            while (process->priv[index] != kNone) {
                index = (index + 1) % static_cast<std::uint32_t>(process->priv.size());
            }
            gfn = guest.free_gfns.back();
            guest.free_gfns.pop_back();
            process->priv[index] = gfn;
            process->mapped_pos[index] = static_cast<std::uint32_t>(process->mapped.size());
            process->mapped.push_back(index);
            process->last = index;
            gva_page = page_of(kHeapVa) + index;
            fault(gva_page, gfn);
        } else if (!process->mapped.empty()) {
            std::uint32_t index = process->last;
            if (index >= process->priv.size() || process->priv[index] == kNone || s.unit() < 0.2) {
                index = process->mapped[s.below(process->mapped.size())];
            }
            process->last = index;
            gfn = process->priv[index];
            gva_page = page_of(kHeapVa) + index;
        }
    }
    if (gfn == kNone) {
        // the guest kernel: its text and data, mapped by no process
        gfn = guest.kernel_base + s.below(kKernelGfns);
        gva_page = 0;
    }
    const bool premapped = gfn >= guest.kernel_base && gfn < guest.kernel_base + guest.premapped_kernel;
    const std::uint64_t pfn = host_page(g, gfn, std::max({action.from, floor_, t - kNpfBeforeFault}));
    r.gpa = gfn * kPage + offset;
    r.hpa = pfn * kPage + offset;
    // What a join that reads every mapping event must say.
    const auto owners = guest.owners.find(gfn);
    const bool own = owners != guest.owners.end() && process != nullptr &&
                     std::any_of(owners->second.begin(), owners->second.end(),
                                 [&](const State::Owner& o) { return o.pid == process->pid; });
    TrueAttribution attribution = TrueAttribution::guest_kernel;
    if (premapped && !mem.statedump) {
        attribution = TrueAttribution::before_map;
        r.gpa = 0;
    } else if (own) {
        attribution = TrueAttribution::guest;
        for (const State::Owner& o : owners->second) {
            if (o.pid == process->pid) {
                r.gva = o.gva_page * kPage + offset;
            }
        }
    } else if (owners != guest.owners.end()) {
        attribution = TrueAttribution::shared_other;
    }
    r.attribution = static_cast<std::uint8_t>(attribution);
    const std::uint64_t va = gva_page != 0 ? gva_page * kPage + offset : 0xffffffff81000000ULL + r.gpa;
    emit_access(r.hpa, va, r);
}

bool MemoryScenario::release(SimEvent& event) {
    State& s = *state_;
    const MemoryConfig& mem = base_.config().memory;
    while (!queue_.empty() && (base_done_ || queue_.top().time < horizon_)) {
        Queued q = queue_.top();
        queue_.pop();
        event = q.event;
        if (event.machine == tracer_machine()) {
            // The tracer's timestamps are strictly increasing, so that
            // record k of the truth is the k-th record of the trace.
            while (tracer_clock_.value_at(event.time) <= last_tracer_value_) {
                ++event.time;
            }
            last_tracer_value_ = tracer_clock_.value_at(event.time);
        }
        if (event.type == EventType::mem_access) {
            q.truth.time = event.time;
            q.truth.tracer_ns = tracer_clock_.ns_from_origin_at(event.time);
            if (s.dropping == 0 && mem.lost_every != 0 && ++s.released_accesses % mem.lost_every == 0) {
                s.dropping = mem.lost_burst;
            }
            if (s.dropping != 0) {
                q.truth.lost = 1;
                if (truth_ != nullptr) {
                    truth_->add(q.truth);
                }
                if (--s.dropping != 0) {
                    continue;
                }
                // the tracer notices the burst at its end
                event.type = EventType::mem_lost;
                event.addr = mem.lost_burst;
                return true;
            }
            if (truth_ != nullptr) {
                truth_->add(q.truth);
            }
        }
        return true;
    }
    return false;
}

bool MemoryScenario::next(SimEvent& event) {
    if (!base_.config().memory.enabled) {
        return base_.next(event);
    }
    for (;;) {
        if (release(event)) {
            return true;
        }
        if (base_done_) {
            return false;
        }
        SimEvent e;
        if (!base_.next(e)) {
            plan_window(horizon_, base_.config().duration_ns);
            base_done_ = true;
            continue;
        }
        plan_window(horizon_, e.time);
        horizon_ = std::max(horizon_, e.time);
        apply_base(e);
        push(e);
    }
}

}  // namespace vmtrace::scenario
