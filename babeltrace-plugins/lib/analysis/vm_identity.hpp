// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vmtrace::analysis {

// The VMs of a host trace and what identifies each: its vm_uid (vmsync
// host events, a synchronised guest trace's environment), its QEMU
// process (kvm_vm events, the statedump), that process's name, its guest
// trace and the latest thread of each of its vCPUs.  A VM is its index.
class VmIdentity {
public:
    struct Vm {
        std::uint64_t vm_uid = 0;
        std::int64_t qemu_pid = -1;                       // -2: merged into the VM its vm_uid names
        int guest_machine = -1;                           // its guest trace's machine index, once matched
        std::map<std::uint32_t, std::int64_t> vcpu_tids;  // the latest thread of each vCPU
        std::string comm;                                 // its QEMU process's name, when recorded
    };

    // The VM of QEMU process `pid`, new if none has it.
    int by_pid(std::int64_t pid);
    // The VM named `vm_uid`; else the VM known so far by process `pid`
    // only, which takes that vm_uid; else a new one.
    int by_uid(std::uint64_t vm_uid, std::int64_t pid);
    // `known` (found by its vm_uid) turns out to be process `of_pid`'s VM:
    // when `of_pid` has no vm_uid nor vCPU thread of its own, `known` takes
    // its process and `of_pid` retires; returns whether it did.
    bool merge_process(int known, int of_pid);

    [[nodiscard]] Vm& at(int vm) { return vms_[static_cast<std::size_t>(vm)]; }
    [[nodiscard]] const Vm& at(int vm) const { return vms_[static_cast<std::size_t>(vm)]; }
    [[nodiscard]] int size() const { return static_cast<int>(vms_.size()); }

    // analysis.json's name: the guest trace's hostname (`guest_hostname`,
    // when it has one), else the QEMU process's name, else qemu-PID, else
    // vm-VM_UID.
    [[nodiscard]] std::string name(int vm, std::string_view guest_hostname) const;

private:
    std::vector<Vm> vms_;
};

}  // namespace vmtrace::analysis
