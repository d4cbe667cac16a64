// SPDX-License-Identifier: MIT
#include "lib/isolate/contradictions.hpp"

namespace vmtrace::isolate {

std::string_view to_string(Contradiction kind) {
    switch (kind) {
    case Contradiction::remove_unknown:
        return "remove-unknown";
    case Contradiction::install_over_live:
        return "install-over-live";
    case Contradiction::change_wrong_old:
        return "change-wrong-old";
    case Contradiction::remove_wrong_pfn:
        return "remove-wrong-pfn";
    case Contradiction::pfn_aliased:
        return "pfn-aliased";
    case Contradiction::bad_host_event:
        return "bad-host-event";
    case Contradiction::bad_guest_event:
        return "bad-guest-event";
    case Contradiction::time_backwards:
        return "time-backwards";
    case Contradiction::cpu_out_of_range:
        return "cpu-out-of-range";
    }
    return "?";
}

std::uint64_t Contradictions::total() const {
    std::uint64_t sum = 0;
    for (const Entry& entry : entries_) {
        sum += entry.count;
    }
    return sum;
}

}  // namespace vmtrace::isolate
