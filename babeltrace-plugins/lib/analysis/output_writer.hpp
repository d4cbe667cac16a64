// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "csv_file.hpp"
#include "lib/sync/linear_transform.hpp"
#include "state_timeline.hpp"

namespace vmtrace::analysis {

// One interval of a vCPU thread's state: a row of vcpu_states.csv.
struct StateRow {
    int vm = -1;  // -1: not identified (an empty vm_id)
    std::uint32_t vcpu = 0;
    std::int64_t tid = 0;
    VcpuState state = VcpuState::unknown;
    std::int64_t start = 0;
    std::int64_t end = 0;
    int pcpu = -1;  // the physical CPU the vCPU thread ran on, -1: not running
    std::int64_t guest_tid = -1;
    std::string_view guest_comm;
};

// The one writer of an analysis's files (docs/analysis-output.md) in its
// output directory: the streamed files (vcpu_states.csv, nondet.csv, nondet.jsonl,
// migrations.csv) while events are read, then analysis.json, exits.csv,
// vms.csv and summary.txt from the results.  Errors are thrown with the
// file's name.
class OutputWriter {
public:
    // `dir` must exist; `intervals`: write vcpu_states.csv (else remove
    // an earlier run's).  An empty `dir`: no file at all (a live view).
    OutputWriter(const std::string& dir, bool intervals);

    [[nodiscard]] bool intervals() const { return states_ != nullptr; }
    void state_row(const StateRow& row);
    // `tail`: the columns after vm_id (vcpu,kind,source,op,...)
    void nondet_row(std::int64_t time, int vm, std::string_view tail);
    // nondet.jsonl: `members` is the line's object after its vm member
    void replay_line(int vm, std::string_view members);
    // `level`: vcpu-thread or guest-thread
    void migration_row(std::int64_t time, std::string_view machine, const char* level, std::int64_t tid,
                       std::string_view comm, std::int64_t from, std::int64_t to);
    // Closes the streamed files.
    void close_streams();
    // nondet.jsonl, once closed: adds guest_ns (the guest's clock at
    // time_ns) to the lines of the VMs whose guest clock is known.
    void add_guest_times(const std::map<int, std::optional<clocksync::LinearTransform>>& clocks) const;

    // analysis.json, exits.csv and vms.csv, then summary.txt; returns the
    // summary's text.
    std::string write_results(const nlohmann::json& results);

private:
    void write_exits_csv(const nlohmann::json& results) const;
    void write_vms_csv(const nlohmann::json& results) const;

    std::string dir_;
    std::string row_buffer_;  // the hot path's, reused
    std::unique_ptr<CsvFile> states_;
    std::unique_ptr<CsvFile> nondet_;
    std::unique_ptr<CsvFile> replay_;
    std::unique_ptr<CsvFile> migrations_;
};

// summary.txt: the results in a few lines per VM.
std::string summary_text(const nlohmann::json& results);

}  // namespace vmtrace::analysis
