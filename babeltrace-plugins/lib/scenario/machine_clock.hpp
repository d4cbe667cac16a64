// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

namespace vmtrace::scenario {

// A simulated machine's monotonic clock.  The host's clock is the
// reference (drift 0); a guest's runs faster or slower by drift_ppb and
// starts at another origin.  Clock values are nanoseconds; the CTF clock
// class puts them `offset_ns` after the Unix epoch.
struct MachineClock {
    std::int64_t offset_ns = 0;  // clock class offset from the Unix epoch
    std::int64_t base_ns = 0;    // clock value at simulation time 0
    std::int64_t drift_ppb = 0;
    std::int64_t step_at = 0;  // true time of a forward clock step, if step_ns
    std::int64_t step_ns = 0;

    [[nodiscard]] std::int64_t value_at(std::int64_t true_time) const {
        const __int128 scaled = static_cast<__int128>(true_time) * drift_ppb;
        // floor division keeps the clock monotonic for negative drifts
        __int128 extra = scaled / 1'000'000'000;
        if (scaled % 1'000'000'000 < 0) {
            --extra;
        }
        const std::int64_t step = step_ns != 0 && true_time >= step_at ? step_ns : 0;
        return base_ns + true_time + static_cast<std::int64_t>(extra) + step;
    }

    [[nodiscard]] std::int64_t ns_from_origin_at(std::int64_t true_time) const {
        return offset_ns + value_at(true_time);
    }
};

}  // namespace vmtrace::scenario
