// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "lib/sync/clock_estimator.hpp"

namespace vmtrace::sync {

// The four halves of a vmsync handshake (docs/events.json).
enum class SyncHalf : std::uint8_t { gh_guest, gh_host, hg_host, hg_guest };
std::string_view event_name(SyncHalf half);

// What a pairing's handshakes are called in its reports.  A VM's vmsync
// handshakes are keyed by vm_uid and made on a vCPU.  A memory tracer's
// memsync marks are keyed by the hpa of the reserved page and made on a
// host CPU; each mark is a host->tracer message (vmtrace_memsync_begin ->
// vmtrace_mem_sync) and a tracer->host one (vmtrace_mem_sync ->
// vmtrace_memsync_end), so the tracer's one event is both guest halves.
struct Handshake {
    std::string_view family;                 // "vmsync", "memsync"
    std::string_view key_name;               // "vm_uid", "hpa"
    std::string_view lane_name;              // "vCPU", "CPU"
    std::array<std::string_view, 4> events;  // indexed by SyncHalf
};
extern const Handshake kVmsyncHandshake;
extern const Handshake kMemsyncHandshake;

// Pairs the vmsync events of one VM by cnt and feeds the matched messages
// to a clock estimator.  Halves wait in a bounded map until their partner
// arrives; anomalies (a cnt seen twice or going backwards on one side, a
// half whose partner never came) are counted with the first example kept
// for the report.
class VmPairing {
public:
    struct Anomalies {
        std::uint64_t duplicate_cnt = 0;
        std::uint64_t out_of_order_cnt = 0;
        std::uint64_t unmatched = 0;
        std::uint64_t rejected = 0;  // matched messages the estimator found inconsistent
        std::string first;           // description of the first duplicate or out-of-order cnt
        std::string first_rejected;
    };

    // `vm_uid` is the key of the handshakes: a VM's vm_uid, or the hpa of
    // a memory tracer's reserved page (kMemsyncHandshake).
    VmPairing(std::uint64_t vm_uid, std::unique_ptr<clocksync::ClockEstimator> estimator,
              std::size_t max_pending = 65536, const Handshake& handshake = kVmsyncHandshake);

    // Records one half observed at `time` (ns from origin of the clock of
    // the machine that recorded it), in any order.  `lane` is the vCPU that
    // made the handshake and `where` names the trace, for reports.
    void add(SyncHalf half, std::uint32_t cnt, std::int64_t time, std::uint32_t lane, const std::string& where);

    // Checks that cnt grows on each vCPU; call in time order of each side.
    // Only within one vCPU, because vCPUs draw from one counter and their
    // records interleave.
    void check_order(SyncHalf half, std::uint32_t cnt, std::int64_t time, std::uint32_t lane, const std::string& where);

    [[nodiscard]] std::uint64_t vm_uid() const { return vm_uid_; }
    [[nodiscard]] const Handshake& handshake() const { return handshake_; }
    // The event that records `half` of this pairing's handshakes.
    [[nodiscard]] std::string_view name(SyncHalf half) const { return handshake_.events[static_cast<unsigned>(half)]; }
    [[nodiscard]] const clocksync::ClockEstimator& estimator() const { return *estimator_; }
    [[nodiscard]] const Anomalies& anomalies() const { return anomalies_; }
    [[nodiscard]] std::uint64_t count(SyncHalf half) const { return counts_[static_cast<unsigned>(half)]; }
    [[nodiscard]] std::uint64_t guest_to_host_matches() const { return matches_[0]; }
    [[nodiscard]] std::uint64_t host_to_guest_matches() const { return matches_[1]; }
    [[nodiscard]] std::uint64_t host_events() const { return count(SyncHalf::gh_host) + count(SyncHalf::hg_host); }
    [[nodiscard]] std::uint64_t guest_events() const { return count(SyncHalf::gh_guest) + count(SyncHalf::hg_guest); }
    // Halves still waiting for a partner.
    [[nodiscard]] std::uint64_t pending() const;
    // Host time of the earliest matched message (the host half of a
    // handshake; which handshake matched first depends on reading order);
    // empty before the first match.
    [[nodiscard]] std::optional<std::int64_t> first_match_host_time() const { return first_match_host_time_; }

    // The estimator's quality, except that halves in one direction only
    // (nothing matched yet) count as incomplete rather than absent.
    [[nodiscard]] clocksync::SyncQuality quality() const;

private:
    void note(std::uint64_t& counter, SyncHalf half, std::uint32_t cnt, std::int64_t time, std::uint32_t lane,
              const std::string& where, const std::string& what);

    // Several halves may share a cnt (a repeated cnt): a half pairs with a
    // waiting partner of the same vCPU if there is one, else with the first
    // that came, so that a repeat does not mismatch the others.
    struct Half {
        std::int64_t time;
        std::uint32_t lane;
    };
    using Pending = std::multimap<std::uint32_t, Half>;

    std::uint64_t vm_uid_;
    const Handshake& handshake_;
    std::unique_ptr<clocksync::ClockEstimator> estimator_;
    std::size_t max_pending_;
    std::array<Pending, 4> pending_;
    std::array<std::map<std::uint32_t, std::uint32_t>, 4> last_cnt_;  // per lane
    // Recently matched cnts per side, to recognise a cnt that comes again.
    std::array<std::set<std::uint32_t>, 4> matched_;
    std::array<std::deque<std::uint32_t>, 4> matched_order_;
    std::array<std::uint64_t, 4> counts_{};
    std::array<std::uint64_t, 2> matches_{};
    std::optional<std::int64_t> first_match_host_time_;
    Anomalies anomalies_;
};

}  // namespace vmtrace::sync
