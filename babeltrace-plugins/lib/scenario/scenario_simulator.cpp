// SPDX-License-Identifier: MIT
#include "scenario_simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vmtrace::scenario {
namespace {

// Guest events keep this far from their vCPU's entry and exit, as the
// guest's tracer runs some instructions after entry and before the exit.
constexpr std::int64_t kGuestMargin = 2'000;
constexpr std::int64_t kEntryLatency = 500;                           // kvm entry tracepoint -> guest code
constexpr std::int64_t kHostEpochOffset = 1'790'000'000'000'000'000;  // Unix ns
constexpr std::int64_t kHostUptime = 4'000'000'000'000;               // boot -> start
constexpr std::int32_t kNormalPrio = 20;
constexpr std::uint64_t kMmioBase = 0xfebf0000;  // a virtio device's BAR in guest-physical space
constexpr std::uint32_t kIntrVector = 0xec;      // the local APIC timer

std::int64_t ns_from_seconds(double seconds) {
    return static_cast<std::int64_t>(std::llround(seconds * 1e9));
}

}  // namespace

const char* to_string(VcpuState state) {
    switch (state) {
    case VcpuState::guest:
        return "guest";
    case VcpuState::hypervisor:
        return "hypervisor";
    case VcpuState::preempted:
        return "preempted";
    case VcpuState::idle:
        return "idle";
    }
    return "unknown";
}

ScenarioSimulator::ScenarioSimulator(const ScenarioConfig& config, StateObserver* observer)
    : config_(config), observer_(observer), rng_(config.seed) {
    config_.validate();
    host_clock_ = MachineClock{kHostEpochOffset, kHostUptime, 0};

    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    for (unsigned g = 0; g < config_.guests; ++g) {
        GuestIdentity id;
        id.vm_uid = rng_() | 1;
        id.hostname = fmt::format("vmtrace-sim-guest{}", g);
        id.offset_s =
            config_.guest_offsets_s.empty() ? unit(rng_) * config_.max_guest_offset_s : config_.guest_offsets_s[g];
        id.drift_ppm =
            config_.guest_drifts_ppm.empty() ? unit(rng_) * config_.max_drift_ppm : config_.guest_drifts_ppm[g];
        // A guest booted later than the host: smaller uptime, and a wall
        // clock set `offset_s` away from the host's.
        const std::int64_t uptime = 20'000'000'000 + static_cast<std::int64_t>(rng_() % 1'000'000'000'000);
        id.clock.base_ns = uptime;
        id.clock.offset_ns = host_clock_.ns_from_origin_at(0) + ns_from_seconds(id.offset_s) - uptime;
        id.clock.drift_ppb = static_cast<std::int64_t>(std::llround(id.drift_ppm * 1000.0));
        id.clock.step_at = config_.duration_ns / 2;
        id.clock.step_ns = config_.guest_clock_step_ns;
        id.qemu_pid = static_cast<std::int32_t>(3000 + 100 * g);
        guest_ids_.push_back(id);

        Guest guest;
        const unsigned thread_count = config_.vcpus_per_guest * config_.threads_per_vcpu;
        guest.threads.reserve(thread_count);
        for (unsigned t = 0; t < thread_count; ++t) {
            static constexpr const char* kNames[] = {"postgres", "nginx", "kworker/u8:2", "sshd", "stress-ng", "java"};
            guest.threads.push_back(
                GuestThread{Thread{static_cast<std::int32_t>(400 + t), fmt::format("{}", kNames[t % 6]), kNormalPrio}});
        }
        for (unsigned v = 0; v < config_.vcpus_per_guest; ++v) {
            guest.idle.push_back(Thread{0, fmt::format("swapper/{}", v), kNormalPrio});
        }
        guest_state_.push_back(std::move(guest));
    }

    const unsigned cpu_count = config_.effective_host_cpus();
    pcpus_.resize(cpu_count);
    for (unsigned c = 0; c < cpu_count; ++c) {
        pcpus_[c].idle = Thread{0, fmt::format("swapper/{}", c), kNormalPrio};
        pcpus_[c].noise = Thread{static_cast<std::int32_t>(100 + c), fmt::format("kworker/{}:1", c), kNormalPrio};
        pcpus_[c].current = &pcpus_[c].idle;
    }

    vcpus_.resize(static_cast<std::size_t>(config_.guests) * config_.vcpus_per_guest);
    for (unsigned g = 0; g < config_.guests; ++g) {
        for (unsigned v = 0; v < config_.vcpus_per_guest; ++v) {
            const unsigned index = g * config_.vcpus_per_guest + v;
            Vcpu& vcpu = vcpus_[index];
            vcpu.guest = g;
            vcpu.index = v;
            vcpu.thread = Thread{guest_ids_[g].qemu_pid + 1 + static_cast<std::int32_t>(v),
                                 fmt::format("CPU {}/KVM", v), kNormalPrio};
            vcpu.pcpu = index;
            pcpus_[index].owner = static_cast<int>(index);
            vcpu.next_sync = config_.sync_period_ns / 2 +
                             static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(config_.sync_period_ns / 2));
            vcpu.next_switch = draw_exp(config_.mean_guest_switch_ns);
        }
    }
    // The first instant: every vCPU thread is switched in on its CPU, so
    // that a reader knows what runs where from the start.
    for (Vcpu& vcpu : vcpus_) {
        host_switch(vcpu.pcpu, vcpu.thread, 0, 0);
        schedule(vcpu, Action::entry, 1'000 + static_cast<std::int64_t>(rng_() % 1'000));
    }
}

std::int32_t ScenarioSimulator::vcpu_tid(unsigned guest, unsigned vcpu) const {
    return vcpus_.at(guest * config_.vcpus_per_guest + vcpu).thread.tid;
}

std::vector<ScenarioSimulator::ThreadName> ScenarioSimulator::guest_threads(unsigned guest) const {
    std::vector<ThreadName> names;
    for (const GuestThread& t : guest_state_.at(guest).threads) {
        names.push_back(ThreadName{t.thread.tid, &t.thread.comm});
    }
    return names;
}

std::int64_t ScenarioSimulator::draw_exp(std::int64_t mean) {
    // 53 random bits -> (0, 1]; -log gives an exponential of mean 1
    const double u = (static_cast<double>(rng_() >> 11) + 1.0) * 0x1.0p-53;
    return static_cast<std::int64_t>(-std::log(u) * static_cast<double>(mean));
}

std::int64_t ScenarioSimulator::draw_latency() {
    const std::int64_t tail = config_.latency_mean_ns > 0 ? draw_exp(config_.latency_mean_ns) : 0;
    return std::min(config_.latency_min_ns + tail, config_.latency_max_ns);
}

std::uint32_t ScenarioSimulator::draw_exit_reason() {
    // Mix of a busy Linux guest under nested paging.
    const unsigned roll = static_cast<unsigned>(rng_() % 100);
    if (roll < 30) {
        return svm_exit::npf;
    }
    if (roll < 50) {
        return svm_exit::intr;
    }
    if (roll < 68) {
        return svm_exit::ioio;
    }
    if (roll < 80) {
        return svm_exit::msr;
    }
    if (roll < 92) {
        return svm_exit::hlt;
    }
    return svm_exit::cpuid;
}

std::uint32_t ScenarioSimulator::take_cnt(Guest& guest, Vcpu& vcpu) {
    ++guest.handshakes;
    if (vcpu.held_cnt >= 0) {
        // second half of a swap: the number this vCPU skipped before
        const auto cnt = static_cast<std::uint32_t>(vcpu.held_cnt);
        vcpu.held_cnt = -1;
        return cnt;
    }
    const bool corrupt =
        config_.cnt_corruption != CntCorruption::none && guest.handshakes % config_.cnt_corruption_every == 0;
    if (corrupt && config_.cnt_corruption == CntCorruption::duplicate && guest.next_cnt > 0) {
        return guest.next_cnt - 1;
    }
    if (corrupt && config_.cnt_corruption == CntCorruption::reorder) {
        vcpu.held_cnt = guest.next_cnt;
        guest.next_cnt += 2;
        return static_cast<std::uint32_t>(vcpu.held_cnt + 1);
    }
    return guest.next_cnt++;
}

SimEvent& ScenarioSimulator::emit(std::int64_t time, unsigned machine, unsigned cpu, EventType type) {
    SimEvent& event = ready_.emplace_back();
    event.time = time;
    event.machine = machine;
    event.cpu = cpu;
    event.type = type;
    return event;
}

void ScenarioSimulator::schedule(Vcpu& vcpu, Action action, std::int64_t time) {
    vcpu.action = action;
    vcpu.action_time = time;
    agenda_.push(Scheduled{time, seq_++, static_cast<unsigned>(&vcpu - vcpus_.data())});
}

void ScenarioSimulator::set_phase(Vcpu& vcpu, Phase phase, std::int64_t now) {
    if (observer_ != nullptr && now > vcpu.phase_since) {
        observer_->on_interval(vcpu.guest, vcpu.index, static_cast<VcpuState>(vcpu.phase), vcpu.phase_since, now);
    }
    if (vcpu.phase == Phase::guest) {
        credit_guest_thread(vcpu, now);
    }
    vcpu.phase = phase;
    vcpu.phase_since = now;
    vcpu.thread_since = now;
}

void ScenarioSimulator::credit_guest_thread(Vcpu& vcpu, std::int64_t now) {
    if (observer_ != nullptr && now > vcpu.thread_since) {
        const Guest& guest = guest_state_[vcpu.guest];
        const std::int32_t tid =
            vcpu.guest_current < 0 ? guest.idle[vcpu.index].tid : guest.threads[vcpu.guest_current].thread.tid;
        observer_->on_guest_thread(vcpu.guest, vcpu.index, tid, now - vcpu.thread_since);
    }
    vcpu.thread_since = now;
}

void ScenarioSimulator::host_switch(unsigned pcpu, const Thread& next, std::int64_t prev_state, std::int64_t now) {
    Pcpu& cpu = pcpus_[pcpu];
    SimEvent& e = emit(now, 0, pcpu, EventType::sched_switch);
    e.prev_comm = cpu.current->comm.c_str();
    e.prev_tid = cpu.current->tid;
    e.prev_prio = cpu.current->prio;
    e.prev_state = prev_state;
    e.next_comm = next.comm.c_str();
    e.next_tid = next.tid;
    e.next_prio = next.prio;
    cpu.current = &next;
}

void ScenarioSimulator::guest_switch(Vcpu& vcpu, std::int64_t now, bool to_idle) {
    Guest& guest = guest_state_[vcpu.guest];
    const unsigned machine = vcpu.guest + 1;
    int next = -1;
    if (!to_idle) {
        // any thread not running elsewhere, other than the current one
        const auto count = static_cast<unsigned>(guest.threads.size());
        const unsigned start = static_cast<unsigned>(rng_() % count);
        for (unsigned i = 0; i < count; ++i) {
            const unsigned candidate = (start + i) % count;
            if (!guest.threads[candidate].running && static_cast<int>(candidate) != vcpu.guest_current) {
                next = static_cast<int>(candidate);
                break;
            }
        }
        if (next < 0) {
            return;
        }
    }
    const Thread& prev = vcpu.guest_current < 0 ? guest.idle[vcpu.index] : guest.threads[vcpu.guest_current].thread;
    const Thread& next_thread = next < 0 ? guest.idle[vcpu.index] : guest.threads[next].thread;
    if (next >= 0) {
        GuestThread& moving = guest.threads[next];
        if (moving.last_cpu >= 0 && moving.last_cpu != static_cast<int>(vcpu.index)) {
            SimEvent& m = emit(now, machine, vcpu.index, EventType::sched_migrate_task);
            m.prev_comm = moving.thread.comm.c_str();
            m.prev_tid = moving.thread.tid;
            m.prev_prio = moving.thread.prio;
            m.orig_cpu = moving.last_cpu;
            m.dest_cpu = static_cast<std::int32_t>(vcpu.index);
        }
        moving.last_cpu = static_cast<int>(vcpu.index);
        moving.running = true;
    }
    SimEvent& e = emit(now, machine, vcpu.index, EventType::sched_switch);
    e.prev_comm = prev.comm.c_str();
    e.prev_tid = prev.tid;
    e.prev_prio = prev.prio;
    e.prev_state = to_idle || (rng_() & 1) ? 1 : 0;
    e.next_comm = next_thread.comm.c_str();
    e.next_tid = next_thread.tid;
    e.next_prio = next_thread.prio;
    if (vcpu.guest_current >= 0) {
        guest.threads[vcpu.guest_current].running = false;
    }
    if (vcpu.phase == Phase::guest) {
        credit_guest_thread(vcpu, now);
    }
    vcpu.guest_current = next;
}

void ScenarioSimulator::fill_exit_info(SimEvent& event, const Vcpu& vcpu) {
    event.guest = static_cast<int>(vcpu.guest);
    event.vcpu_id = vcpu.index;
    event.exit_reason = vcpu.exit_reason;
    event.isa = kIsaSvm;
    event.rip = 0xffffffff81000000ULL + (rng_() % 0x800000);
    switch (vcpu.exit_reason) {
    case svm_exit::npf:
        event.info1 = 0x100000004ULL | (rng_() & 0x3);  // fault error code
        // guest-physical address: RAM, or one time in eight a device's MMIO
        event.info2 = rng_() % 8 == 0 ? kMmioBase + ((rng_() % 0x1000) << 2) : (rng_() % (1ULL << 30)) & ~0xfffULL;
        break;
    case svm_exit::ioio:
        event.info1 = (0x3f8ULL << 16) | (rng_() & 1);  // port, direction
        event.info2 = event.rip + 2;
        break;
    case svm_exit::msr:
        event.info1 = rng_() & 1;  // 0: rdmsr, 1: wrmsr
        break;
    case svm_exit::intr:
        event.intr_info = 0x80000000U | kIntrVector;
        break;
    default:
        break;
    }
}

void ScenarioSimulator::emit_exit_handling(const Vcpu& vcpu, const SimEvent& exit) {
    // What KVM's handler of the exit traces.  It carries the exit's
    // timestamp: a later one could overtake another vCPU's event already
    // scheduled, and the events of a machine leave in time order.
    const std::int64_t at = exit.time;
    if (!config_.handler_events) {
        return;
    }
    EventType type;
    switch (vcpu.exit_reason) {
    case svm_exit::ioio:
        type = EventType::kvm_pio;
        break;
    case svm_exit::msr:
        type = EventType::kvm_msr;
        break;
    case svm_exit::vmmcall:
        type = EventType::kvm_hypercall;
        break;
    case svm_exit::npf:
        if (exit.info2 < kMmioBase) {
            return;  // ordinary memory: KVM maps the page, no emulation
        }
        type = EventType::kvm_mmio;
        break;
    default:
        return;
    }
    SimEvent& e = emit(at, 0, vcpu.pcpu, type);
    e.guest = static_cast<int>(vcpu.guest);
    e.vcpu_id = vcpu.index;
    switch (type) {
    case EventType::kvm_pio:
        e.args[0] = (exit.info1 & 1) != 0 ? 0 : 1;  // SVM IOIO bit 0: 1 = in
        e.args[1] = exit.info1 >> 16;
        e.args[2] = 1;
        e.args[3] = 1;
        e.args[4] = rng_() & 0xff;
        break;
    case EventType::kvm_msr:
        e.args[0] = exit.info1 & 1;
        e.args[1] = 0x6e0;  // IA32_TSC_DEADLINE
        e.args[2] = rng_();
        break;
    case EventType::kvm_hypercall:
        e.args[0] = kVmsyncHypercall;
        e.args[1] = vcpu.sync_cnt;
        e.args[2] = guest_ids_[vcpu.guest].vm_uid;
        break;
    case EventType::kvm_mmio:
        e.args[0] = 2;  // write
        e.args[1] = 4;
        e.args[2] = exit.info2;
        e.args[3] = rng_() & 0xffffffffU;
        break;
    default:
        break;
    }
}

void ScenarioSimulator::plan_guest_mode(Vcpu& vcpu, std::int64_t now) {
    const std::int64_t earliest = std::max(vcpu.guest_start + kGuestMargin, now);
    // The candidate that comes first wins; ties go to the earlier listed.
    Action action = Action::exit;
    std::int64_t when = vcpu.exit_time;
    auto consider = [&](Action candidate, std::int64_t time) {
        if (time < when) {
            action = candidate;
            when = time;
        }
    };
    if (vcpu.exit_reason == svm_exit::hlt) {
        action = Action::guest_idle;
        when = std::max(vcpu.exit_time - kGuestMargin / 2, now);
    }
    if (vcpu.hg_receipt >= 0) {
        consider(Action::hg_receipt, std::max(vcpu.hg_receipt, now));
    }
    // Guest scheduling keeps a margin before the exit.
    const std::int64_t switch_time = vcpu.switch_in_pending ? earliest : std::max(vcpu.next_switch, earliest);
    if (vcpu.exit_time - switch_time > kGuestMargin) {
        consider(Action::guest_switch, switch_time);
    }
    if (config_.guest_sync_events && !vcpu.sync_in_flight && vcpu.hg_receipt < 0 && !vcpu.switch_in_pending) {
        consider(Action::sync, std::max(vcpu.next_sync, earliest));
    }
    schedule(vcpu, action, when);
}

bool ScenarioSimulator::next(SimEvent& event) {
    while (ready_.empty()) {
        if (finished_ || agenda_.empty()) {
            finished_ = true;
            return false;
        }
        const Scheduled top = agenda_.top();
        agenda_.pop();
        Vcpu& vcpu = vcpus_[top.vcpu];
        if (top.time > config_.duration_ns) {
            // The end: close every vCPU's open interval.
            for (Vcpu& v : vcpus_) {
                set_phase(v, v.phase, config_.duration_ns);
            }
            finished_ = true;
            continue;
        }
        run_action(vcpu);
    }
    event = ready_.front();
    ready_.pop_front();
    return true;
}

void ScenarioSimulator::run_action(Vcpu& vcpu) {
    const std::int64_t now = vcpu.action_time;
    const unsigned guest_machine = vcpu.guest + 1;
    const std::uint64_t vm_uid = guest_ids_[vcpu.guest].vm_uid;
    Guest& guest = guest_state_[vcpu.guest];

    switch (vcpu.action) {
    case Action::entry: {
        if (vcpu.hg_pending) {
            vcpu.hg_pending = false;
            if (config_.host_sync_events) {
                SimEvent& hg = emit(now, 0, vcpu.pcpu, EventType::vmsync_hg_host);
                hg.guest = static_cast<int>(vcpu.guest);
                hg.cnt = vcpu.sync_cnt;
                hg.vm_uid = vm_uid;
                hg.vcpu_id = vcpu.index;
            }
            vcpu.hg_receipt = now + draw_latency();
        }
        if (vcpu.exit_reason == svm_exit::intr && config_.handler_events) {
            // the interrupt that caused the exit is delivered on this entry
            SimEvent& inj = emit(now, 0, vcpu.pcpu, EventType::kvm_inj_virq);
            inj.guest = static_cast<int>(vcpu.guest);
            inj.vcpu_id = vcpu.index;
            inj.args[0] = kIntrVector;
        }
        SimEvent& e = emit(now, 0, vcpu.pcpu, EventType::kvm_entry);
        e.guest = static_cast<int>(vcpu.guest);
        e.vcpu_id = vcpu.index;
        e.rip = 0xffffffff81000000ULL + (rng_() % 0x800000);
        set_phase(vcpu, Phase::guest, now);
        vcpu.guest_start = now + kEntryLatency;
        vcpu.exit_reason = draw_exit_reason();
        vcpu.exit_time = vcpu.guest_start + 3 * kGuestMargin + draw_exp(config_.mean_guest_run_ns);
        if (vcpu.hg_receipt >= 0) {
            vcpu.exit_time = std::max(vcpu.exit_time, vcpu.hg_receipt + 2 * kGuestMargin);
        }
        plan_guest_mode(vcpu, now);
        return;
    }
    case Action::guest_switch:
        guest_switch(vcpu, now, false);
        vcpu.switch_in_pending = false;
        vcpu.next_switch = now + kGuestMargin + draw_exp(config_.mean_guest_switch_ns);
        plan_guest_mode(vcpu, now);
        return;
    case Action::guest_idle:
        if (vcpu.guest_current >= 0) {
            guest_switch(vcpu, now, true);
        }
        vcpu.switch_in_pending = true;
        schedule(vcpu, Action::exit, vcpu.exit_time);
        return;
    case Action::hg_receipt: {
        if (config_.guest_sync_events) {
            SimEvent& hg = emit(now, guest_machine, vcpu.index, EventType::vmsync_hg_guest);
            hg.cnt = vcpu.sync_cnt;
            hg.vm_uid = vm_uid;
        }
        vcpu.hg_receipt = -1;
        plan_guest_mode(vcpu, now);
        return;
    }
    case Action::sync: {
        vcpu.sync_cnt = take_cnt(guest, vcpu);
        SimEvent& gh = emit(now, guest_machine, vcpu.index, EventType::vmsync_gh_guest);
        gh.cnt = vcpu.sync_cnt;

        gh.vm_uid = vm_uid;
        const std::int64_t latency = draw_latency();
        vcpu.sync_in_flight = true;
        vcpu.exit_reason = svm_exit::vmmcall;
        vcpu.exit_time = now + latency / 2;
        vcpu.gh_host_time = now + latency + config_.host_receive_delay_ns;
        vcpu.next_sync = std::max(vcpu.next_sync + config_.sync_period_ns, now + config_.sync_period_ns / 2);
        schedule(vcpu, Action::exit, vcpu.exit_time);
        return;
    }
    case Action::exit: {
        SimEvent& e = emit(now, 0, vcpu.pcpu, EventType::kvm_exit);
        fill_exit_info(e, vcpu);
        emit_exit_handling(vcpu, e);
        set_phase(vcpu, Phase::hypervisor, now);
        const std::int64_t handling = 300 + draw_exp(1'500);
        switch (vcpu.exit_reason) {
        case svm_exit::vmmcall:
            schedule(vcpu, Action::gh_host, vcpu.gh_host_time);
            break;
        case svm_exit::hlt:
            schedule(vcpu, Action::block, now + handling);
            break;
        case svm_exit::intr:
            if (static_cast<double>(rng_() >> 11) * 0x1.0p-53 < config_.preempt_probability) {
                schedule(vcpu, Action::preempt, now + handling);
            } else {
                schedule(vcpu, Action::entry, now + handling);
            }
            break;
        default:
            schedule(vcpu, Action::entry, now + handling);
            break;
        }
        return;
    }
    case Action::gh_host:
        if (config_.host_sync_events) {
            SimEvent& gh = emit(now, 0, vcpu.pcpu, EventType::vmsync_gh_host);
            gh.guest = static_cast<int>(vcpu.guest);
            gh.cnt = vcpu.sync_cnt;
            gh.vm_uid = vm_uid;
            gh.vcpu_id = vcpu.index;
        }
        vcpu.sync_in_flight = false;
        vcpu.hg_pending = true;
        schedule(vcpu, Action::entry, now + 300 + draw_exp(700));
        return;
    case Action::block:
        host_switch(vcpu.pcpu, pcpus_[vcpu.pcpu].idle, 1, now);
        set_phase(vcpu, Phase::idle, now);
        schedule(vcpu, Action::wake, now + 1'000 + draw_exp(config_.mean_idle_ns));
        return;
    case Action::preempt:
        host_switch(vcpu.pcpu, pcpus_[vcpu.pcpu].noise, 0, now);
        set_phase(vcpu, Phase::preempted, now);
        schedule(vcpu, Action::resume, now + 1'000 + draw_exp(config_.mean_preempt_ns));
        return;
    case Action::wake:
    case Action::resume: {
        const bool migrate = static_cast<double>(rng_() >> 11) * 0x1.0p-53 < config_.migrate_probability;
        if (migrate) {
            std::vector<unsigned> free_cpus;
            for (unsigned c = 0; c < pcpus_.size(); ++c) {
                if (pcpus_[c].owner < 0) {
                    free_cpus.push_back(c);
                }
            }
            const unsigned dest = free_cpus[rng_() % free_cpus.size()];
            const unsigned orig = vcpu.pcpu;
            SimEvent& m = emit(now, 0, orig, EventType::sched_migrate_task);
            m.guest = static_cast<int>(vcpu.guest);
            m.vcpu_id = vcpu.index;
            m.prev_comm = vcpu.thread.comm.c_str();
            m.prev_tid = vcpu.thread.tid;
            m.prev_prio = vcpu.thread.prio;
            m.orig_cpu = static_cast<std::int32_t>(orig);
            m.dest_cpu = static_cast<std::int32_t>(dest);
            if (vcpu.action == Action::resume) {
                host_switch(orig, pcpus_[orig].idle, 1, now);  // the preempting work ends
            }
            pcpus_[orig].owner = -1;
            pcpus_[dest].owner = static_cast<int>(&vcpu - vcpus_.data());
            vcpu.pcpu = dest;
        }
        // the previous thread: the idle task keeps running, the preempting
        // work goes to sleep
        host_switch(vcpu.pcpu, vcpu.thread, vcpu.action == Action::resume && !migrate ? 1 : 0, now);
        set_phase(vcpu, Phase::hypervisor, now);
        schedule(vcpu, Action::entry, now + 1'000 + draw_exp(1'000));
        return;
    }
    case Action::done:
        return;
    }
}

}  // namespace vmtrace::scenario
