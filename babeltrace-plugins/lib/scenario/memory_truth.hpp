// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace vmtrace::scenario {

// What a join that reads every mapping event the simulation wrote must say
// of an access (docs/isolation.md names each).  The values are those of
// vmtrace::isolate::Attribution.
enum class TrueAttribution : std::uint8_t {
    guest,
    guest_kernel,
    shared_other,
    host_on_behalf,
    host,
    ambiguous,  // never in the truth: only the join's time uncertainty makes it
    before_map,
};
const char* to_string(TrueAttribution attribution);

// One record of the memory ground truth, in the order the tracer wrote
// the accesses (its timestamps are strictly increasing): record k of the
// file that is not lost is the k-th vmtrace_mem_access of the memory
// trace.  Little-endian, 64 bytes, no padding.
#pragma pack(push, 1)
struct MemoryTruthRecord {
    std::int64_t time;       // true time: ns since the start of the simulation
    std::int64_t tracer_ns;  // the record's timestamp: tracer clock, ns from origin
    std::uint64_t hpa;
    std::uint64_t gpa;  // when vm >= 0
    std::uint64_t gva;  // when attribution is guest or shared-other (the accessing process's, 0 if none)
    std::int32_t vm;    // guest index (hostname vmtrace-sim-guestN), -1: no VM's memory
    std::int32_t pid;   // guest process running on the vCPU (-1: not in guest mode)
    std::int32_t tid;   // guest thread running on the vCPU (-1: not in guest mode)
    std::int32_t host_tid;
    std::uint32_t cpu;
    std::uint8_t kind;  // 0 load, 1 store, 2 fetch
    std::uint8_t size;
    std::uint8_t attribution;  // TrueAttribution
    std::uint8_t lost;         // 1: the tracer dropped it (counted by a vmtrace_mem_lost)
};
#pragma pack(pop)
static_assert(sizeof(MemoryTruthRecord) == 64);

// The file: this magic, u32 version (1), u32 record size (64), i64 the
// host clock's ns from origin at true time 0 (true time t happened at host
// time host_origin_ns + t), u32 the number of guests, then per guest its
// name (u16 length, bytes: guest index g of a record is the VM of the
// guest trace whose hostname that is), then the records.
inline constexpr char kMemoryTruthMagic[8] = {'V', 'M', 'T', 'M', 'E', 'M', 'T', '1'};

// Writes the per-access truth (when given a path) and keeps the
// aggregates every run reports: per VM, per process and per attribution.
class MemoryTruth {
public:
    MemoryTruth(std::string path, std::int64_t host_origin_ns, const std::vector<std::string>& guest_names);
    ~MemoryTruth();
    MemoryTruth(const MemoryTruth&) = delete;
    MemoryTruth& operator=(const MemoryTruth&) = delete;

    void add(const MemoryTruthRecord& record);
    void on_mapping_event() { ++mapping_events_; }
    // Closes the file (throws on an I/O error) and returns the aggregates
    // as a JSON object text, with guest names `names`.
    std::string finish(const std::vector<std::string>& names);

private:
    std::string path_;
    std::FILE* file_ = nullptr;
    std::vector<MemoryTruthRecord> buffer_;
    std::uint64_t records_ = 0;
    std::uint64_t lost_ = 0;
    std::uint64_t mapping_events_ = 0;
    std::array<std::uint64_t, 7> by_attribution_{};
    std::map<std::int32_t, std::array<std::uint64_t, 7>> by_vm_;  // vm -> attribution counts
    std::map<std::tuple<std::int32_t, std::int32_t>, std::array<std::uint64_t, 3>>
        by_process_;  // loads, stores, fetches
    void flush();
};

}  // namespace vmtrace::scenario
