// SPDX-License-Identifier: MIT
#include "analysis_engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <stdexcept>

namespace vmtrace::analysis {

AnalysisEngine::AnalysisEngine(AnalysisOptions options)
    : options_(std::move(options)), states_(options_.timeline_bins) {
    if (options_.timeline_bins < 2 || options_.timeline_bins % 2 != 0) {
        throw std::invalid_argument(
            fmt::format("timeline-bins: {} is not an even number >= 2", options_.timeline_bins));
    }
    writer_ = std::make_unique<OutputWriter>(options_.output_dir, options_.intervals);
    logs_ = !options_.output_dir.empty();
    if (options_.window_ns > 0) {
        window_ = std::make_unique<LiveWindow>(options_.window_ns);
    }
}

AnalysisEngine::~AnalysisEngine() = default;

unsigned AnalysisEngine::add_machine(const MachineInfo& info) {
    Machine m;
    m.info = info;
    m.hostname = std::string(info.hostname);
    m.info.hostname = {};  // the view may dangle; hostname owns it
    if (info.host) {
        host_info_ = m.info;
    }
    machines_.push_back(std::move(m));
    pending_ = compute_pending();
    // a guest whose VM the host trace already named
    for (int vm = 0; vm < identity_.size(); ++vm) {
        link_guest(vm);
    }
    flush_held(false);
    return static_cast<unsigned>(machines_.size() - 1);
}

void AnalysisEngine::declare_cpu(unsigned machine, std::uint32_t cpu) {
    Machine& m = machines_.at(machine);
    if (cpu >= kMaxCpus) {
        throw std::runtime_error(fmt::format(
            "trace `{}`: a packet declares cpu_id {}, beyond the {} CPUs Linux supports: damaged packet context",
            m.hostname, cpu, kMaxCpus));
    }
    if (cpu >= m.cpus.size()) {
        m.cpus.resize(cpu + 1, false);
    }
    m.cpus[cpu] = true;
}

namespace {

std::string event_label(const TraceEvent& e) {
    return e.name.empty() ? std::string("an event") : fmt::format("`{}`", e.name);
}

// "0-3, 6": the CPUs a trace declares, for messages.
std::string cpu_list(const std::vector<bool>& cpus) {
    std::string out;
    for (std::size_t c = 0; c < cpus.size(); ++c) {
        if (!cpus[c] || (c > 0 && cpus[c - 1])) {
            continue;
        }
        std::size_t last = c;
        while (last + 1 < cpus.size() && cpus[last + 1]) {
            ++last;
        }
        out += fmt::format("{}{}", out.empty() ? "" : ", ", c);
        if (last > c) {
            out += fmt::format("-{}", last);
        }
    }
    return out.empty() ? "none" : out;
}

bool declared(const std::vector<bool>& cpus, std::int64_t cpu) {
    return cpu >= 0 && static_cast<std::uint64_t>(cpu) < cpus.size() && cpus[static_cast<std::size_t>(cpu)];
}

}  // namespace

void AnalysisEngine::check_cpu(Machine& m, const TraceEvent& e, const char* field, std::int64_t cpu) {
    if (cpu < 0 || cpu >= kMaxCpus) {
        throw std::runtime_error(fmt::format(
            "trace `{}`: event {} at {} ns has {} {}, not a CPU number (the trace declares CPUs {}): damaged event",
            m.hostname, event_label(e), e.time, field, cpu, cpu_list(m.cpus)));
    }
    if (!declared(m.cpus, cpu)) {
        // a CPU whose first packet starts later: known at the end
        m.undeclared.try_emplace(cpu, CpuMention{e.time, event_label(e), field});
    }
}

void AnalysisEngine::check_vcpu_id(const Machine& m, const TraceEvent& e) const {
    if (e.vcpu_id >= kMaxVcpuIds) {
        throw std::runtime_error(
            fmt::format("trace `{}`: event {} at {} ns has vcpu_id {}, beyond KVM's {} vCPU ids: damaged event",
                        m.hostname, event_label(e), e.time, e.vcpu_id, kMaxVcpuIds));
    }
}

void AnalysisEngine::check_declared() const {
    for (const Machine& m : machines_) {
        for (const auto& [cpu, mention] : m.undeclared) {
            if (!declared(m.cpus, cpu)) {
                throw std::runtime_error(fmt::format(
                    "trace `{}`: event {} at {} ns has {} {}, a CPU none of the trace's packets declares (CPUs {}): "
                    "damaged event",
                    m.hostname, mention.event, mention.time, mention.field, cpu, cpu_list(m.cpus)));
            }
        }
    }
    // The vCPUs of a VM are the CPUs of its guest trace.
    for (const auto& [tid, t] : vcpus_) {
        if (t->vm < 0 || identity_.at(t->vm).guest_machine < 0) {
            continue;
        }
        const VmIdentity::Vm& vm = identity_.at(t->vm);
        const Machine& guest = machines_[static_cast<unsigned>(vm.guest_machine)];
        if (!declared(guest.cpus, t->vcpu)) {
            const Machine* host = nullptr;
            for (const Machine& m : machines_) {
                host = host == nullptr && m.info.host ? &m : host;
            }
            throw std::runtime_error(fmt::format(
                "trace `{}`: thread {} runs vCPU {} of the VM of guest trace `{}`, which declares CPUs {}: damaged "
                "vcpu_id",
                host != nullptr ? host->hostname : "?", tid, t->vcpu, guest.hostname, cpu_list(guest.cpus)));
        }
    }
}

void AnalysisEngine::check_reordering() const {
    std::uint64_t total = 0;
    const Machine* culprit = nullptr;
    for (const Machine& m : machines_) {
        total += m.events;
        if (m.retimed > 0 && (culprit == nullptr || m.retimed > culprit->retimed)) {
            culprit = &m;
        }
    }
    if (culprit == nullptr ||
        static_cast<double>(reordered_) <= options_.max_reordered_ratio * static_cast<double>(total)) {
        return;
    }
    throw std::runtime_error(fmt::format(
        "trace `{}`: {} of {} events ({:.1f}%) are older than an event before them (its event at {} ns is {} ns "
        "ahead of the next one): damaged timestamps; at most {}% may be out of order",
        culprit->hostname, reordered_, total, 100.0 * static_cast<double>(reordered_) / static_cast<double>(total),
        culprit->jump_at, culprit->jump_ns, 100.0 * options_.max_reordered_ratio));
}

void AnalysisEngine::on_host_time(std::int64_t time) {
    if (begin_ < 0 || time < begin_) {
        begin_ = time;
    }
    end_ = std::max(end_, time);
    if (window_ && time > last_time_) {
        advance_window(time);  // a packet's end: an idle host's time goes on too
    }
}

void AnalysisEngine::on_other_time(std::int64_t time) {
    ++other_events_;
    if (window_ && time > last_time_) {
        last_event_time_ = std::max(last_event_time_, time);
        advance_window(time);
    }
}

void AnalysisEngine::on_discarded(unsigned machine, std::uint64_t count) {
    discarded_ += count;
    machines_.at(machine).discarded += count;
    if (window_) {
        window_->discarded(machine, count);
    }
}

std::int64_t AnalysisEngine::clamp_time(std::int64_t time, unsigned machine) {
    if (time < last_time_) {
        ++reordered_;
        Machine& culprit = machines_[last_time_machine_];
        ++culprit.retimed;
        if (last_time_ - time > culprit.jump_ns) {
            culprit.jump_ns = last_time_ - time;
            culprit.jump_at = last_time_;
        }
        return last_time_;
    }
    last_time_ = time;
    last_time_machine_ = machine;
    return time;
}

void AnalysisEngine::on_event(const TraceEvent& event) {
    Machine& m = machines_.at(event.machine);
    ++m.events;
    if (!declared(m.cpus, event.cpu)) {
        declare_cpu(event.machine, event.cpu);  // the event's packet declares its CPU
    }
    TraceEvent e = event;
    if (m.info.host) {
        on_host_time(e.time);
    }
    e.time = clamp_time(std::max(e.time, begin_), event.machine);
    last_event_time_ = std::max(last_event_time_, event.time);
    if (window_) {
        if (begin_ >= 0) {
            advance_window(e.time);
        }
        window_->event(event.machine);
    }
    if (m.info.host) {
        host_event(m, e);
    } else {
        guest_event(m, e);
    }
}

AnalysisEngine::VcpuThread& AnalysisEngine::vcpu_thread(std::int64_t tid, std::uint32_t vcpu, std::int64_t now,
                                                        int cpu) {
    auto found = vcpus_.find(tid);
    if (found != vcpus_.end()) {
        return *found->second;
    }
    auto t = std::make_unique<VcpuThread>();
    t->tid = tid;
    t->vcpu = vcpu;
    t->states = &states_.thread(tid, begin_);
    t->place = &placement_.thread(tid);
    t->exits = &exits_.thread(tid);
    t->nondet = &nondet_.thread(tid);
    t->replay = std::make_unique<ReplayLog>(t->vcpu, host_info_);
    t->place->on_cpu_since = now;
    ++unbound_;
    pending_ = true;
    VcpuThread& thread = *t;
    vcpus_.emplace(tid, std::move(t));
    // Until this first KVM event the thread was only known to the
    // scheduler: running in the host since it was switched in.
    const HostScheduler::Thread* host = host_.find(tid);
    if (host != nullptr && host->cpu >= 0 && host->switched_in >= begin_) {
        thread.place->on_cpu_since = host->switched_in;
        set_state(thread, VcpuState::hypervisor, host->switched_in);  // ends `unknown`, off any CPU
    } else if (host != nullptr && host->cpu < 0 && host->switched_out >= begin_) {
        set_state(thread, host->out_state == 0 ? VcpuState::preempted : VcpuState::idle, host->switched_out);
    }
    thread.place->cpu = cpu;
    if (host != nullptr && host->pid > 0) {
        const int vm = identity_.by_pid(host->pid);
        bind(thread, vm, vcpu);
    }
    return thread;
}

void AnalysisEngine::close_interval(VcpuThread& t, std::int64_t now, bool state_ends) {
    const VcpuStates::Thread& states = *t.states;
    const std::int64_t since = states.since;
    if (!VcpuStates::close(*t.states, now, state_ends)) {
        return;
    }
    if (window_) {
        window_->state(t.tid, states.state, since, now);
        if (states.state == VcpuState::guest && t.guest_tid >= 0) {
            window_->guest_thread(t.tid, t.guest_tid, t.guest_comm, since, now);
        }
    }
    HeldRow row;
    row.tid = t.tid;
    row.time = since;
    row.state = states.state;
    row.end = now;
    row.vcpu = t.vcpu;
    row.pcpu = t.place->cpu;
    if (states.state == VcpuState::guest) {
        Machine* guest = guest_machine_of(t);
        if (t.guest_tid >= 0 && guest != nullptr) {
            guest->scheduler.credit(t.guest_tid, t.vcpu, now - since);
            row.guest_tid = t.guest_tid;
            row.guest_comm = t.guest_comm;
        } else {
            // which guest thread ran is known once the vCPU's VM and guest
            // trace are (flush_held replays the guest's history)
            row.replay = true;
        }
    }
    if (writer_->intervals() || row.replay) {
        emit_row(std::move(row));
    }
}

AnalysisEngine::Machine* AnalysisEngine::guest_machine_of(const VcpuThread& t) {
    if (t.vm < 0 || identity_.at(t.vm).guest_machine < 0) {
        return nullptr;
    }
    return &machines_[static_cast<unsigned>(identity_.at(t.vm).guest_machine)];
}

void AnalysisEngine::set_state(VcpuThread& t, VcpuState state, std::int64_t now) {
    const VcpuState was = t.states->state;
    if (state == was) {
        return;
    }
    close_interval(t, now);
    if (t.vm >= 0 && (state == VcpuState::guest) != (was == VcpuState::guest)) {
        cosched_.change(t.vm, state == VcpuState::guest ? 1 : -1, now);
    }
    VcpuStates::enter(*t.states, state, now);
    t.guest_tid = -1;
    t.guest_comm.clear();
    if (state == VcpuState::guest && t.vm >= 0) {
        const VmIdentity::Vm& vm = identity_.at(t.vm);
        if (vm.guest_machine >= 0) {
            const Machine& guest = machines_[static_cast<unsigned>(vm.guest_machine)];
            if (const GuestScheduler::Current* current = guest.scheduler.current(t.vcpu)) {
                t.guest_tid = current->tid;
                t.guest_comm = current->comm;
            }
        }
    }
}

int AnalysisEngine::vm_by_uid(std::uint64_t vm_uid, std::int64_t pid) {
    const int vm = identity_.by_uid(vm_uid, pid);
    link_guest(vm);  // (a no-op for a VM that had this vm_uid already)
    return vm;
}

void AnalysisEngine::adopt_pid(VcpuThread& t, int vm_of_pid) {
    // The thread's VM, known so far by its vm_uid, may be this process: one VM.
    if (t.vm >= 0 && t.vm != vm_of_pid && identity_.merge_process(t.vm, vm_of_pid)) {
        return;
    }
    bind(t, vm_of_pid, t.vcpu);
}

void AnalysisEngine::link_guest(int vm) {
    VmIdentity::Vm& v = identity_.at(vm);
    if (v.guest_machine >= 0) {
        return;
    }
    for (std::size_t i = 0; i < machines_.size(); ++i) {
        Machine& m = machines_[i];
        if (!m.info.host && m.info.synchronized && m.info.vm_uid == v.vm_uid && v.vm_uid != 0) {
            v.guest_machine = static_cast<int>(i);
            m.vm = vm;
            pending_ = compute_pending();
        }
    }
}

void AnalysisEngine::bind(VcpuThread& t, int vm, std::uint32_t vcpu) {
    if (t.vm == vm) {
        return;
    }
    if (t.vm < 0) {
        --unbound_;
    } else if (t.states->state == VcpuState::guest) {
        cosched_.change(t.vm, -1, t.states->since);
    }
    t.vm = vm;
    t.vcpu = vcpu;
    identity_.at(vm).vcpu_tids[vcpu] = t.tid;
    pending_ = compute_pending();
    cosched_.start(vm, last_time_);
    if (t.states->state == VcpuState::guest) {
        // co-scheduling counts from the VM's identification on
        cosched_.change(vm, 1, std::max(t.states->since, last_time_));
    }
    flush_held(false);
}

bool AnalysisEngine::compute_pending() const {
    if (unbound_ > 0) {
        return true;
    }
    // a guest trace that some VM has not been matched with yet
    bool unlinked_guest = false;
    for (const Machine& m : machines_) {
        unlinked_guest = unlinked_guest || (!m.info.host && m.info.synchronized && m.vm < 0);
    }
    if (!unlinked_guest) {
        return false;
    }
    for (const auto& [tid, t] : vcpus_) {
        if (identity_.at(t->vm).guest_machine < 0) {
            return true;
        }
    }
    return false;
}

void AnalysisEngine::write_row(const HeldRow& row) {
    const VcpuThread& t = *vcpus_.at(row.tid);
    if (row.nondet) {
        writer_->nondet_row(row.time, t.vm, row.tail);
        return;
    }
    if (row.replay_line) {
        writer_->replay_line(t.vm, row.tail);
        return;
    }
    writer_->state_row(
        StateRow{t.vm, row.vcpu, row.tid, row.state, row.time, row.end, row.pcpu, row.guest_tid, row.guest_comm});
}

void AnalysisEngine::emit_row(HeldRow row) {
    if (held_.empty() && !pending_) {
        write_row(row);
        return;
    }
    held_.push_back(std::move(row));
    if (held_.size() > options_.max_held_rows) {
        if (!held_overflowed_) {
            warnings_.push_back(fmt::format(
                "more than {} CSV rows waited for vCPU threads to be identified or matched with their guest trace; "
                "rows before that have an empty vm_id or guest thread",
                options_.max_held_rows));
            held_overflowed_ = true;
        }
        flush_held(true);
    }
}

void AnalysisEngine::replay(const HeldRow& row) {
    const VcpuThread& t = *vcpus_.at(row.tid);
    Machine* guest = guest_machine_of(t);
    HeldRow piece = row;
    piece.replay = false;
    const bool split = guest != nullptr && guest->scheduler.split(row.vcpu, row.time, row.end,
                                                                  [&](std::int64_t start, std::int64_t end,
                                                                      std::int64_t tid, std::string_view comm) {
                                                                      piece.time = start;
                                                                      piece.end = end;
                                                                      piece.guest_tid = tid;
                                                                      piece.guest_comm = comm;
                                                                      write_row(piece);
                                                                  });
    if (!split) {
        write_row(row);
    }
}

void AnalysisEngine::flush_held(bool force) {
    if (!force && pending_) {
        return;
    }
    for (const HeldRow& row : held_) {
        if (row.replay) {
            replay(row);
        } else {
            write_row(row);
        }
    }
    held_.clear();
    if (!pending_) {
        for (Machine& m : machines_) {
            m.scheduler.clear_history();  // every row that needed it is written
        }
    }
}

}  // namespace vmtrace::analysis

namespace vmtrace::analysis {

void AnalysisEngine::host_event(Machine& m, const TraceEvent& e) {
    const std::int64_t now = e.time;
    host_.see_cpu(e.cpu);
    if (e.cpu >= host_current_vcpu_.size()) {
        host_current_vcpu_.resize(e.cpu + 1, nullptr);
    }
    switch (e.kind) {
    case EventKind::sched_switch: {
        host_.on_switch(e.cpu, e.prev_tid, e.prev_state, e.prev_comm, e.next_tid, e.next_comm, now);
        if (auto found = vcpus_.find(e.prev_tid); found != vcpus_.end() && e.prev_tid != 0) {
            VcpuThread& t = *found->second;
            set_state(t, e.prev_state == 0 ? VcpuState::preempted : VcpuState::idle, now);  // its row had the CPU
            Placement::leave(*t.place, now);
        }
        if (auto found = vcpus_.find(e.next_tid); found != vcpus_.end() && e.next_tid != 0) {
            VcpuThread& t = *found->second;
            set_state(t, VcpuState::hypervisor, now);  // closes a row off any CPU
            Placement::arrive(*t.place, static_cast<int>(e.cpu), now);
        }
        host_current_vcpu_[e.cpu] = nullptr;  // found again at its first KVM event
        return;
    }
    case EventKind::sched_migrate_task:
        if (auto found = vcpus_.find(e.tid); found != vcpus_.end()) {
            check_cpu(m, e, "orig_cpu", e.orig_cpu);
            check_cpu(m, e, "dest_cpu", e.dest_cpu);
            Placement::migrated(*found->second->place);
            if (window_) {
                window_->migrated(e.tid);
            }
            writer_->migration_row(now, m.hostname, "vcpu-thread", e.tid, e.comm, e.orig_cpu, e.dest_cpu);
        }
        return;
    case EventKind::process_state: {
        host_.set_process(e.tid, e.pid);
        host_.set_comm(e.tid, e.comm);
        if (auto found = vcpus_.find(e.tid); found != vcpus_.end() && e.pid > 0) {
            adopt_pid(*found->second, identity_.by_pid(e.pid));
        }
        return;
    }
    case EventKind::vcpu_thread: {
        check_vcpu_id(m, e);
        const int vm = identity_.by_pid(e.pid);
        if (!e.comm.empty()) {
            identity_.at(vm).comm = e.comm;
        }
        if (e.tid <= 0) {
            return;  // a VM, or a vCPU that has not run yet: no thread
        }
        host_.set_process(e.tid, e.pid);
        VcpuThread& t = vcpu_thread(e.tid, e.vcpu_id, now, host_.find(e.tid)->cpu);
        adopt_pid(t, vm);
        return;
    }
    default:
        break;
    }
    if (e.kind == EventKind::other) {
        ++other_events_;
        return;
    }
    check_vcpu_id(m, e);

    // The KVM events run in the vCPU's thread: the one current on the CPU.
    const std::int64_t tid = host_.current(e.cpu);
    if (tid <= 0) {
        ++unattributed_;
        return;
    }
    VcpuThread*& current = host_current_vcpu_[e.cpu];
    if (current == nullptr) {
        current = &vcpu_thread(tid, e.vcpu_id, now, static_cast<int>(e.cpu));
    }
    VcpuThread& t = *current;
    if (t.vm < 0) {
        t.vcpu = e.vcpu_id;
    }
    switch (e.kind) {
    case EventKind::kvm_entry:
        ExitTracker::on_entry(*t.exits, now);
        if (window_) {
            window_->entry(t.tid, now);
        }
        set_state(t, VcpuState::guest, now);
        if (logs_) {
            t.replay->on_entry(e, replay_lines_);
            emit_replay(t);
        }
        return;
    case EventKind::kvm_exit:
        ExitTracker::on_exit(*t.exits, e.isa, e.exit_reason, now);
        if (window_) {
            window_->exit(t.tid, {e.isa, e.exit_reason}, now);
        }
        set_state(t, VcpuState::hypervisor, now);
        if (!logs_) {
            return;
        }
        t.replay->on_exit(e, replay_lines_);
        emit_replay(t);
        // Without KVM's handler events, the exit says what it can.
        if (auto entry = NondetLog::from_exit(e, m.info)) {
            log_nondet(t, now, *entry);
        }
        return;
    case EventKind::kvm_pio:
    case EventKind::kvm_mmio:
    case EventKind::kvm_msr:
    case EventKind::kvm_msr_user:
    case EventKind::kvm_inj_virq:
    case EventKind::kvm_inj_exception:
    case EventKind::kvm_hypercall:
        if (logs_) {
            t.replay->on_handler(e);
            log_nondet(t, now, *NondetLog::from_handler(e));
        }
        return;
    case EventKind::vmsync_host:
        bind(t, vm_by_uid(e.vm_uid, host_.pid_of(tid)), e.vcpu_id);
        return;
    default:
        return;
    }
}

void AnalysisEngine::guest_event(Machine& m, const TraceEvent& e) {
    const std::int64_t now = e.time;
    switch (e.kind) {
    case EventKind::sched_switch: {
        m.scheduler.on_switch(e.cpu, e.next_tid, e.next_comm, now, !held_.empty() || pending_);
        if (m.vm < 0) {
            return;
        }
        const VmIdentity::Vm& vm = identity_.at(m.vm);
        const auto tid = vm.vcpu_tids.find(e.cpu);
        if (tid == vm.vcpu_tids.end()) {
            return;
        }
        VcpuThread& t = *vcpus_.at(tid->second);
        if (t.states->state != VcpuState::guest) {
            return;
        }
        if (now > t.states->since) {
            // a new guest thread on this vCPU: a new row, the same state
            close_interval(t, now, false);
            t.states->since = now;
        }
        t.guest_tid = e.next_tid;
        t.guest_comm = e.next_comm;
        return;
    }
    case EventKind::sched_migrate_task:
        // the matrix is built at the end, over the CPUs the trace declares
        check_cpu(m, e, "orig_cpu", e.orig_cpu);
        check_cpu(m, e, "dest_cpu", e.dest_cpu);
        m.scheduler.on_migrate(e.tid, e.comm, static_cast<std::uint32_t>(e.orig_cpu),
                               static_cast<std::uint32_t>(e.dest_cpu));
        if (window_ && m.vm >= 0) {
            const auto& tids = identity_.at(m.vm).vcpu_tids;
            if (const auto to = tids.find(static_cast<std::uint32_t>(e.dest_cpu)); to != tids.end()) {
                window_->guest_migrated(to->second);
            }
        }
        writer_->migration_row(now, m.hostname, "guest-thread", e.tid, e.comm, e.orig_cpu, e.dest_cpu);
        return;
    default:
        ++other_events_;
        return;
    }
}

void AnalysisEngine::log_nondet(VcpuThread& t, std::int64_t time, const NondetEntry& entry) {
    HeldRow row;
    row.tid = t.tid;
    row.nondet = true;
    row.time = time;
    row.tail = NondetLog::add(*t.nondet, t.vcpu, entry);
    emit_row(std::move(row));
}

void AnalysisEngine::emit_replay(VcpuThread& t) {
    for (ReplayLine& line : replay_lines_) {
        HeldRow row;
        row.tid = t.tid;
        row.replay_line = true;
        row.time = line.time;
        row.tail = std::move(line.json);
        emit_row(std::move(row));
    }
    replay_lines_.clear();
}

void AnalysisEngine::finish() {
    if (finished_) {
        return;
    }
    finished_ = true;
    check_declared();
    check_reordering();
    if (end_ < 0) {
        warnings_.push_back("no host event: no vCPU can be analysed");
        begin_ = end_ = 0;
    }
    for (auto& [tid, thread] : vcpus_) {
        VcpuThread& t = *thread;
        if (t.vm < 0) {
            const std::int64_t pid = host_.pid_of(tid);
            bind(t, identity_.by_pid(pid > 0 ? pid : -1), t.vcpu);
        }
    }
    for (auto& [tid, thread] : vcpus_) {
        VcpuThread& t = *thread;
        t.replay->finish(replay_lines_);
        emit_replay(t);
        close_interval(t, end_);
        t.states->since = end_;
        Placement::close(*t.place, end_);
    }
    for (int vm = 0; vm < identity_.size(); ++vm) {
        cosched_.change(vm, 0, end_);
    }
    if (window_ && window_->started()) {
        close_window(end_, true);  // the last interval, up to the end of the host's trace
    }
    flush_held(true);
    writer_->close_streams();
    build_results();
    writer_->add_guest_times(guest_clocks_);
    summary_ = writer_->write_results(results_);
}

}  // namespace vmtrace::analysis
