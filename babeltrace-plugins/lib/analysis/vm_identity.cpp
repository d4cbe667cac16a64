// SPDX-License-Identifier: MIT
#include "vm_identity.hpp"

#include <fmt/format.h>

namespace vmtrace::analysis {

int VmIdentity::by_pid(std::int64_t pid) {
    for (std::size_t i = 0; i < vms_.size(); ++i) {
        if (vms_[i].qemu_pid == pid) {
            return static_cast<int>(i);
        }
    }
    Vm vm;
    vm.qemu_pid = pid;
    vms_.push_back(std::move(vm));
    return static_cast<int>(vms_.size() - 1);
}

int VmIdentity::by_uid(std::uint64_t vm_uid, std::int64_t pid) {
    for (std::size_t i = 0; i < vms_.size(); ++i) {
        if (vms_[i].vm_uid == vm_uid) {
            return static_cast<int>(i);
        }
    }
    // a VM known so far by its QEMU process only
    if (pid > 0) {
        for (std::size_t i = 0; i < vms_.size(); ++i) {
            if (vms_[i].qemu_pid == pid && vms_[i].vm_uid == 0) {
                vms_[i].vm_uid = vm_uid;
                return static_cast<int>(i);
            }
        }
    }
    Vm vm;
    vm.vm_uid = vm_uid;
    vm.qemu_pid = pid;
    vms_.push_back(std::move(vm));
    return static_cast<int>(vms_.size() - 1);
}

bool VmIdentity::merge_process(int known, int of_pid) {
    Vm& k = at(known);
    Vm& p = at(of_pid);
    if (k.qemu_pid > 0 || !p.vcpu_tids.empty() || p.vm_uid != 0) {
        return false;
    }
    k.qemu_pid = p.qemu_pid;
    if (k.comm.empty()) {
        k.comm = p.comm;
    }
    p.qemu_pid = -2;  // retired: never found by pid again
    return true;
}

std::string VmIdentity::name(int vm, std::string_view guest_hostname) const {
    const Vm& v = at(vm);
    if (v.guest_machine >= 0) {
        return std::string(guest_hostname);
    }
    if (!v.comm.empty()) {
        return v.comm;
    }
    if (v.qemu_pid > 0) {
        return fmt::format("qemu-{}", v.qemu_pid);
    }
    if (v.vm_uid != 0) {
        return fmt::format("vm-{:x}", v.vm_uid);
    }
    return "unidentified";
}

}  // namespace vmtrace::analysis
