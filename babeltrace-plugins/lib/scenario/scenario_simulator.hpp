// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <deque>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "machine_clock.hpp"
#include "scenario_config.hpp"
#include "sim_event.hpp"

namespace vmtrace::scenario {

// What a vCPU is doing, as the ground truth records it.
enum class VcpuState : std::uint8_t { guest, hypervisor, preempted, idle };
const char* to_string(VcpuState state);

// Receives the true per-vCPU state intervals as the simulation runs.
class StateObserver {
public:
    virtual ~StateObserver() = default;
    virtual void on_interval(unsigned guest, unsigned vcpu, VcpuState state, std::int64_t start, std::int64_t end) = 0;
    // `tid` ran in guest mode on the vCPU for `ns` (the guest's idle task: tid 0).
    virtual void on_guest_thread(unsigned /*guest*/, unsigned /*vcpu*/, std::int32_t /*tid*/, std::int64_t /*ns*/) {}
};

struct GuestIdentity {
    std::uint64_t vm_uid;
    std::string hostname;
    double offset_s;
    double drift_ppm;
    MachineClock clock;
    std::int32_t qemu_pid;
};

// A discrete-event simulation of one KVM host running guests.  It yields
// the events of every machine in true-time order, one at a time, and keeps
// state proportional to the number of vCPUs and threads, never to the
// length of the run.
//
// vCPU life cycle on the host: kvm entry -> guest mode -> kvm exit ->
// hypervisor work -> entry again; an HLT exit blocks the vCPU thread until
// a wake-up, an interrupt exit may let the host preempt it, and it may
// migrate to another physical CPU when it runs again.  Guest events happen
// only while their vCPU is in guest mode, at least a margin away from its
// entry and exit, as in a real guest whose tracer runs in guest mode.
class ScenarioSimulator {
public:
    explicit ScenarioSimulator(const ScenarioConfig& config, StateObserver* observer = nullptr);

    // Fills `event` with the next event; false at the end of the run.
    bool next(SimEvent& event);

    [[nodiscard]] const ScenarioConfig& config() const { return config_; }
    [[nodiscard]] const MachineClock& host_clock() const { return host_clock_; }
    [[nodiscard]] const std::vector<GuestIdentity>& guests() const { return guest_ids_; }
    [[nodiscard]] unsigned host_cpus() const { return static_cast<unsigned>(pcpus_.size()); }
    [[nodiscard]] std::string host_hostname() const { return "vmtrace-sim-host"; }
    // Host tid of each vCPU thread, by guest then vCPU.
    [[nodiscard]] std::int32_t vcpu_tid(unsigned guest, unsigned vcpu) const;
    // The threads of a guest other than its idle tasks: tid and comm.
    struct ThreadName {
        std::int32_t tid;
        const std::string* comm;
    };
    [[nodiscard]] std::vector<ThreadName> guest_threads(unsigned guest) const;

private:
    enum class Action : std::uint8_t {
        entry,
        guest_switch,
        guest_idle,
        hg_receipt,
        sync,
        exit,
        gh_host,
        block,
        preempt,
        wake,
        resume,
        done
    };
    enum class Phase : std::uint8_t { guest, hypervisor, preempted, idle };

    struct Thread {
        std::int32_t tid;
        std::string comm;
        std::int32_t prio;
    };
    struct GuestThread {
        Thread thread;
        int last_cpu = -1;
        bool running = false;
    };
    struct Pcpu {
        Thread idle;
        Thread noise;
        const Thread* current = nullptr;
        int owner = -1;  // vCPU (global index) whose thread lives here
    };
    struct Vcpu {
        unsigned guest = 0;
        unsigned index = 0;
        Thread thread;
        unsigned pcpu = 0;
        Phase phase = Phase::hypervisor;
        std::int64_t phase_since = 0;
        std::int64_t thread_since = 0;  // the current guest thread's share of guest mode starts
        Action action = Action::entry;
        std::int64_t action_time = 0;
        std::int64_t guest_start = 0;
        std::int64_t exit_time = 0;
        std::uint32_t exit_reason = 0;
        std::int64_t next_switch = 0;
        std::int64_t next_sync = 0;
        std::int64_t hg_receipt = -1;
        std::int64_t gh_host_time = 0;
        std::uint32_t sync_cnt = 0;
        bool sync_in_flight = false;
        bool hg_pending = false;
        int guest_current = -1;  // guest thread running on this vCPU, -1: idle
        bool switch_in_pending = true;
        std::int64_t held_cnt = -1;  // cnt reserved by a reorder corruption
    };
    struct Guest {
        std::vector<GuestThread> threads;
        std::vector<Thread> idle;  // swapper/N per vCPU
        std::uint32_t next_cnt = 0;
        std::uint32_t handshakes = 0;
    };
    struct Scheduled {
        std::int64_t time;
        std::uint64_t seq;
        unsigned vcpu;
        bool operator>(const Scheduled& other) const {
            return time != other.time ? time > other.time : seq > other.seq;
        }
    };

    void run_action(Vcpu& vcpu);
    void schedule(Vcpu& vcpu, Action action, std::int64_t time);
    void plan_guest_mode(Vcpu& vcpu, std::int64_t now);
    void set_phase(Vcpu& vcpu, Phase phase, std::int64_t now);
    void credit_guest_thread(Vcpu& vcpu, std::int64_t now);
    void host_switch(unsigned pcpu, const Thread& next, std::int64_t prev_state, std::int64_t now);
    void guest_switch(Vcpu& vcpu, std::int64_t now, bool to_idle);
    std::int64_t draw_exp(std::int64_t mean);
    std::int64_t draw_latency();
    std::uint32_t draw_exit_reason();
    std::uint32_t take_cnt(Guest& guest, Vcpu& vcpu);
    SimEvent& emit(std::int64_t time, unsigned machine, unsigned cpu, EventType type);
    void fill_exit_info(SimEvent& event, const Vcpu& vcpu);
    void emit_exit_handling(const Vcpu& vcpu, const SimEvent& exit);

    ScenarioConfig config_;
    StateObserver* observer_;
    std::mt19937_64 rng_;
    MachineClock host_clock_;
    std::vector<GuestIdentity> guest_ids_;
    std::vector<Guest> guest_state_;
    std::vector<Pcpu> pcpus_;
    std::vector<Vcpu> vcpus_;
    std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> agenda_;
    std::uint64_t seq_ = 0;
    std::deque<SimEvent> ready_;  // events of the current instant
    bool finished_ = false;
};

}  // namespace vmtrace::scenario
