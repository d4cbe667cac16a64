// SPDX-License-Identifier: MIT
#include "coscheduling.hpp"

namespace vmtrace::analysis {

Coscheduling::Vm& Coscheduling::at(int vm) {
    const auto index = static_cast<std::size_t>(vm);
    if (index >= vms_.size()) {
        vms_.resize(index + 1);
    }
    return vms_[index];
}

void Coscheduling::start(int vm, std::int64_t now) {
    Vm& v = at(vm);
    if (v.since < 0) {
        v.since = now;  // no vCPU in guest mode counts too
    }
}

void Coscheduling::change(int vm, int delta, std::int64_t now) {
    Vm& v = at(vm);
    if (v.since >= 0 && now > v.since) {
        if (v.running_ns.size() <= v.in_guest) {
            v.running_ns.resize(v.in_guest + 1, 0);
        }
        v.running_ns[v.in_guest] += now - v.since;
    }
    v.since = now;
    v.in_guest = static_cast<unsigned>(static_cast<int>(v.in_guest) + delta);
}

const std::vector<std::int64_t>& Coscheduling::running_ns(int vm) {
    return at(vm).running_ns;
}

}  // namespace vmtrace::analysis
