// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "coscheduling.hpp"
#include "exit_tracker.hpp"
#include "guest_scheduler.hpp"
#include "host_scheduler.hpp"
#include "lib/sync/linear_transform.hpp"
#include "live_window.hpp"
#include "nondet_log.hpp"
#include "output_writer.hpp"
#include "placement.hpp"
#include "replay_log.hpp"
#include "trace_event.hpp"
#include "vcpu_states.hpp"
#include "vm_identity.hpp"

namespace vmtrace::analysis {

struct AnalysisOptions {
    std::string output_dir;  // must exist
    unsigned timeline_bins = 1000;
    bool intervals = true;  // write vcpu_states.csv
    // filter.vmtrace.sync's statistics, read at the end for each VM's
    // sync quality; empty: none
    std::string sync_stats_path;
    // Rows of the streamed CSV files held while some vCPU thread is not
    // yet identified (its VM names the rows); past this, the threads still
    // unidentified are named after their process or tid.
    std::size_t max_held_rows = 1'000'000;
    // Events older than one before them are taken at that earlier time;
    // past this fraction of all events the timestamps are damaged and the
    // analysis fails instead of retiming them.
    double max_reordered_ratio = 0.001;
    // Snapshots for a live view: every `window_ns` of host time (aligned
    // on multiples of it), `on_window` gets that interval's analyses
    // (docs/analysis-output.md, "Snapshots"); 0: none.
    std::int64_t window_ns = 0;
    std::function<void(const nlohmann::json&)> on_window;
};

// The analyses of docs/analysis-output.md over one time-ordered stream of
// events of a host and its (synchronised) guests: vCPU states, exits and
// their latencies, migrations and placement, co-scheduling and the log of
// non-deterministic events.  The engine checks the events, ties vCPU
// threads to their VMs and guest traces, and hands each event to the
// trackers that own one concern each (host and guest scheduling, vCPU
// states, placement, exits, co-scheduling, the log, VM identity); rows go
// to the one writer of output files, held while a vCPU thread's VM is not
// known yet.  Memory grows with the number of threads, VMs and distinct
// exit reasons, never with the trace's length; per-interval and per-event
// output is streamed to CSV files.
class AnalysisEngine {
public:
    explicit AnalysisEngine(AnalysisOptions options);
    ~AnalysisEngine();
    AnalysisEngine(const AnalysisEngine&) = delete;
    AnalysisEngine& operator=(const AnalysisEngine&) = delete;

    // Declares a machine; returns the index events carry.
    unsigned add_machine(const MachineInfo& info);
    // A CPU the machine's trace declares (a packet's cpu_id): the CPUs its
    // events may name.  Throws beyond kMaxCpus.
    void declare_cpu(unsigned machine, std::uint32_t cpu);
    // A host message's time (event, packet or stream boundary): the range
    // the analyses cover.
    void on_host_time(std::int64_t time);
    void on_event(const TraceEvent& event);
    // The time of an event the engine does not analyse (a trace a live
    // view only counts): the snapshots' intervals go on with it.
    void on_other_time(std::int64_t time);
    // LTTng discarded `count` events of `machine`'s trace.
    void on_discarded(unsigned machine, std::uint64_t count);
    // The analysis ends before the end of its traces (a live analysis
    // stopped by its user): the results and summary say so.
    void set_ended_early(std::string reason) { ended_early_ = std::move(reason); }
    // Closes every interval at the end of the range, writes the files.
    // Throws when the trace names CPUs it does not declare or too many
    // events were out of order.
    void finish();

    [[nodiscard]] const nlohmann::json& results() const { return results_; }
    [[nodiscard]] const std::string& summary() const { return summary_; }

private:
    // A CSV row: written at once, or held until its vCPU thread's VM and
    // guest trace are known.
    struct HeldRow {
        std::int64_t tid = 0;
        bool nondet = false;       // else a state interval
        bool replay_line = false;  // nondet.jsonl: tail is the line's members after vm
        std::int64_t time = 0;     // the event's, or the interval's start
        std::string tail;          // nondet: the columns after vm_id
        VcpuState state = VcpuState::unknown;
        std::int64_t end = 0;
        std::uint32_t vcpu = 0;
        int pcpu = -1;  // the physical CPU the vCPU thread ran on, -1: not running
        std::int64_t guest_tid = -1;
        std::string guest_comm;
        bool replay = false;  // a guest interval whose guest threads are not known yet
    };
    // A vCPU thread: what ties it to its VM and guest trace, and its
    // entries in the trackers.
    struct VcpuThread {
        std::int64_t tid = 0;
        int vm = -1;  // -1: not identified yet
        std::uint32_t vcpu = 0;
        std::int64_t guest_tid = -1;  // the guest thread of the current guest interval
        std::string guest_comm;
        VcpuStates::Thread* states = nullptr;  // in states_
        Placement::Thread* place = nullptr;    // in placement_
        ExitTracker::Thread* exits = nullptr;  // in exits_
        NondetLog::Counts* nondet = nullptr;   // in nondet_
        std::unique_ptr<ReplayLog> replay;     // nondet.jsonl's lines of this vCPU
    };
    // The first event that named a CPU not declared (yet) by the trace.
    struct CpuMention {
        std::int64_t time = 0;
        std::string event;  // its name, quoted
        const char* field = "";
    };
    struct Machine {
        MachineInfo info;
        std::string hostname;
        int vm = -1;                                    // a guest's VM once known
        GuestScheduler scheduler;                       // a guest's
        std::vector<bool> cpus;                         // declared, by cpu_id
        std::map<std::int64_t, CpuMention> undeclared;  // checked again at the end
        std::uint64_t events = 0;
        std::uint64_t discarded = 0;  // LTTng's discarded-events counts
        std::uint64_t retimed = 0;    // later events taken at the time of one of this machine's events
        std::int64_t jump_ns = 0;     // the largest such step back
        std::int64_t jump_at = 0;     // the time of that machine's event
    };
    void host_event(Machine& m, const TraceEvent& e);
    void guest_event(Machine& m, const TraceEvent& e);
    VcpuThread& vcpu_thread(std::int64_t tid, std::uint32_t vcpu, std::int64_t now, int cpu);
    void set_state(VcpuThread& t, VcpuState state, std::int64_t now);
    // Ends the current row of `t` at `now`; `state_ends`: and its state.
    void close_interval(VcpuThread& t, std::int64_t now, bool state_ends = true);
    void bind(VcpuThread& t, int vm, std::uint32_t vcpu);
    int vm_by_uid(std::uint64_t vm_uid, std::int64_t pid);
    void link_guest(int vm);
    // `t` belongs to the process of VM `vm_of_pid`: bind it, or merge that
    // VM into the one `t` is already bound to.
    void adopt_pid(VcpuThread& t, int vm_of_pid);
    void log_nondet(VcpuThread& t, std::int64_t time, const NondetEntry& entry);
    void emit_replay(VcpuThread& t);
    void emit_row(HeldRow row);
    void replay(const HeldRow& row);
    Machine* guest_machine_of(const VcpuThread& t);
    void write_row(const HeldRow& row);
    // Whether rows must wait: a vCPU thread not yet identified, or a guest
    // trace not yet matched while some VM has none.
    [[nodiscard]] bool compute_pending() const;
    void flush_held(bool force);
    std::int64_t clamp_time(std::int64_t time, unsigned machine);
    // A CPU number an event names: beyond kMaxCpus it throws; not declared
    // yet, it is checked again at the end.
    void check_cpu(Machine& m, const TraceEvent& e, const char* field, std::int64_t cpu);
    void check_vcpu_id(const Machine& m, const TraceEvent& e) const;
    // finish(): every CPU named was declared; few events out of order.
    void check_declared() const;
    void check_reordering() const;

    // analysis_results.cpp
    void build_results();
    // analysis_window.cpp: the snapshots
    void advance_window(std::int64_t now);
    void close_window(std::int64_t end, bool final);
    [[nodiscard]] nlohmann::json window_json(std::int64_t end, bool final) const;

    AnalysisOptions options_;
    std::vector<Machine> machines_;
    VmIdentity identity_;
    Coscheduling cosched_;
    HostScheduler host_;
    VcpuStates states_;
    Placement placement_;
    std::unordered_map<std::int64_t, std::unique_ptr<VcpuThread>> vcpus_;
    std::vector<VcpuThread*> host_current_vcpu_;  // per physical CPU: its vCPU thread, once a KVM event said so
    std::deque<HeldRow> held_;
    unsigned unbound_ = 0;
    bool pending_ = false;  // compute_pending(), kept up to date
    bool held_overflowed_ = false;
    ExitTracker exits_;
    NondetLog nondet_;
    MachineInfo host_info_;  // the host trace's, for the replay logs
    // Per VM: its guest's clock (the sync transform), for the replay
    // log's guest times; set by build_results().
    std::map<int, std::optional<clocksync::LinearTransform>> guest_clocks_;
    std::vector<ReplayLine> replay_lines_;  // reused
    std::unique_ptr<OutputWriter> writer_;  // every file of the analysis
    std::int64_t begin_ = -1;
    std::int64_t end_ = -1;
    std::int64_t last_time_ = 0;
    unsigned last_time_machine_ = 0;  // whose event last_time_ is
    std::uint64_t unattributed_ = 0;  // KVM events on a CPU whose thread is unknown
    std::uint64_t reordered_ = 0;     // events older than one already seen
    std::uint64_t other_events_ = 0;
    std::uint64_t discarded_ = 0;
    std::unique_ptr<LiveWindow> window_;  // with options_.window_ns
    std::int64_t last_event_time_ = -1;   // the latest event's, any machine (for a live view's delay)
    std::string ended_early_;
    // The logs of non-deterministic events (nondet.csv, nondet.jsonl) are
    // kept only when they are written: a live view without files skips them.
    bool logs_ = true;
    std::vector<std::string> warnings_;
    nlohmann::json results_;
    std::string summary_;
    bool finished_ = false;
};

}  // namespace vmtrace::analysis
