// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <vector>

namespace vmtrace::analysis {

// Co-scheduling per VM: how long exactly k of its vCPUs were in guest mode
// at once, from the VM's identification on.  A VM is its index.
class Coscheduling {
public:
    // The VM's time counts from `now` on, unless it already does.
    void start(int vm, std::int64_t now);
    // `delta` vCPUs of the VM entered (1) or left (-1) guest mode at `now`;
    // 0 closes the time so far.
    void change(int vm, int delta, std::int64_t now);
    // Time by number of vCPUs in guest mode (as long as the largest seen).
    [[nodiscard]] const std::vector<std::int64_t>& running_ns(int vm);

private:
    struct Vm {
        unsigned in_guest = 0;
        std::int64_t since = -1;
        std::vector<std::int64_t> running_ns;
    };
    Vm& at(int vm);

    std::vector<Vm> vms_;
};

}  // namespace vmtrace::analysis
