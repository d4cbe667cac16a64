// SPDX-License-Identifier: MIT
#include "lib/sync/vm_pairing.hpp"

#include <fmt/format.h>

#include "schema/events.hpp"

namespace vmtrace::sync {
namespace {

constexpr std::size_t kRecentMatched = 4096;

}  // namespace

const Handshake kVmsyncHandshake{"vmsync",
                                 "vm_uid",
                                 "vCPU",
                                 {schema::vmsync_gh_guest::event_name, schema::vmsync_gh_host::event_name,
                                  schema::vmsync_hg_host::event_name, schema::vmsync_hg_guest::event_name}};

// The tracer's one event sends (gh_guest) and receives (hg_guest).
const Handshake kMemsyncHandshake{"memsync",
                                  "hpa",
                                  "CPU",
                                  {schema::vmtrace_mem_sync::event_name, schema::vmtrace_memsync_end::event_name,
                                   schema::vmtrace_memsync_begin::event_name, schema::vmtrace_mem_sync::event_name}};

std::string_view event_name(SyncHalf half) {
    switch (half) {
    case SyncHalf::gh_guest:
        return schema::vmsync_gh_guest::event_name;
    case SyncHalf::gh_host:
        return schema::vmsync_gh_host::event_name;
    case SyncHalf::hg_host:
        return schema::vmsync_hg_host::event_name;
    case SyncHalf::hg_guest:
        return schema::vmsync_hg_guest::event_name;
    }
    return "?";
}

VmPairing::VmPairing(std::uint64_t vm_uid, std::unique_ptr<clocksync::ClockEstimator> estimator,
                     std::size_t max_pending, const Handshake& handshake)
    : vm_uid_(vm_uid), handshake_(handshake), estimator_(std::move(estimator)), max_pending_(max_pending) {}

void VmPairing::note(std::uint64_t& counter, SyncHalf half, std::uint32_t cnt, std::int64_t time, std::uint32_t lane,
                     const std::string& where, const std::string& what) {
    ++counter;
    if (anomalies_.first.empty()) {
        anomalies_.first =
            fmt::format("trace `{}`, event {} at {} ns on {} {}: cnt {} {} ({} {:#x})", where, name(half), time,
                        handshake_.lane_name, lane, cnt, what, handshake_.key_name, vm_uid_);
    }
}

void VmPairing::check_order(SyncHalf half, std::uint32_t cnt, std::int64_t time, std::uint32_t lane,
                            const std::string& where) {
    auto& last = last_cnt_[static_cast<unsigned>(half)];
    if (auto it = last.find(lane); it != last.end() && cnt < it->second) {
        note(anomalies_.out_of_order_cnt, half, cnt, time, lane, where, fmt::format("comes after cnt {}", it->second));
    }
    last[lane] = cnt;
}

clocksync::SyncQuality VmPairing::quality() const {
    const clocksync::SyncQuality quality = estimator_->quality();
    if (quality == clocksync::SyncQuality::absent && (host_events() > 0 || guest_events() > 0)) {
        return clocksync::SyncQuality::incomplete;
    }
    return quality;
}

std::uint64_t VmPairing::pending() const {
    std::uint64_t total = 0;
    for (const Pending& p : pending_) {
        total += p.size();
    }
    return total;
}

void VmPairing::add(SyncHalf half, std::uint32_t cnt, std::int64_t time, std::uint32_t lane, const std::string& where) {
    const auto side = static_cast<unsigned>(half);
    ++counts_[side];
    if (matched_[side].count(cnt) != 0 || pending_[side].count(cnt) != 0) {
        note(anomalies_.duplicate_cnt, half, cnt, time, lane, where, "was already seen");
    }

    // The partner of gh_guest is gh_host and vice versa; same for hg.
    static constexpr std::array<unsigned, 4> kPartner{1, 0, 3, 2};
    Pending& partner = pending_[kPartner[side]];
    auto [first, last] = partner.equal_range(cnt);
    auto match = first;
    for (auto candidate = first; candidate != last; ++candidate) {
        if (candidate->second.lane == lane) {
            match = candidate;
            break;
        }
    }
    if (match == last) {
        Pending& own = pending_[side];
        own.emplace_hint(own.upper_bound(cnt), cnt, Half{time, lane});
        if (own.size() > max_pending_) {
            own.erase(own.begin());
            ++anomalies_.unmatched;
        }
        return;
    }
    const std::int64_t other = match->second.time;
    partner.erase(match);
    for (unsigned s : {side, kPartner[side]}) {
        matched_[s].insert(cnt);
        matched_order_[s].push_back(cnt);
        if (matched_order_[s].size() > kRecentMatched) {
            matched_[s].erase(matched_order_[s].front());
            matched_order_[s].pop_front();
        }
    }
    const bool host_side = half == SyncHalf::gh_host || half == SyncHalf::hg_host;
    const std::int64_t host_time = host_side ? time : other;
    first_match_host_time_ = std::min(first_match_host_time_.value_or(host_time), host_time);
    bool accepted = true;
    switch (half) {
    case SyncHalf::gh_guest:
        accepted = estimator_->add_guest_to_host(time, other);
        ++matches_[0];
        break;
    case SyncHalf::gh_host:
        accepted = estimator_->add_guest_to_host(other, time);
        ++matches_[0];
        break;
    case SyncHalf::hg_host:
        accepted = estimator_->add_host_to_guest(time, other);
        ++matches_[1];
        break;
    case SyncHalf::hg_guest:
        accepted = estimator_->add_host_to_guest(other, time);
        ++matches_[1];
        break;
    }
    if (!accepted) {
        ++anomalies_.rejected;
        if (anomalies_.first_rejected.empty()) {
            anomalies_.first_rejected =
                fmt::format("cnt {} ({} at {} ns in trace `{}`, {} {}) contradicts the earlier handshakes of {} {:#x}",
                            cnt, name(half), time, where, handshake_.lane_name, lane, handshake_.key_name, vm_uid_);
        }
    }
}

}  // namespace vmtrace::sync
