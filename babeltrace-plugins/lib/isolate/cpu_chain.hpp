// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/isolate/change_marks.hpp"

namespace vmtrace::isolate {

// A host CPU: the host thread current on it and whether that thread is a
// vCPU in guest mode (between kvm entry and exit).
struct HostCpu {
    std::int32_t host_tid = -1;
    bool guest_mode = false;
    int vm = -1;  // VM of the current thread if it is a known vCPU thread, else -1
    std::uint32_t vcpu = 0;
    ChangeTimes changes;  // sched_switch, kvm entry and exit
};

// A vCPU of a guest: the guest thread running on it and that thread's process.
struct Vcpu {
    std::int32_t tid = -1;
    std::int32_t pid = -1;
    const std::string* comm = nullptr;
    ChangeTimes switches;  // guest sched_switch
};

// The chain from a host CPU to the guest thread that made an access: host
// CPU -> host thread (host sched_switch) -> (VM, vCPU) while in guest mode
// (kvm entry/exit, the vCPU threads of kvm_vm_statedump_vcpu) -> guest
// thread (the guest's sched_switch on that vCPU) -> process.  What the hot
// path reads is resolved when the chain changes, so an access costs two
// array reads.
class CpuChain {
public:
    CpuChain(std::uint32_t max_cpus, std::uint32_t max_vcpus) : max_cpus_(max_cpus), max_vcpus_(max_vcpus) {}

    void add_vm() { vms_.emplace_back(); }

    // Each returns false when the CPU or vCPU index is beyond the limits (ignored).
    bool host_sched_switch(std::int64_t time, std::uint32_t cpu, std::int32_t next_tid);
    bool host_kvm_entry(std::int64_t time, std::uint32_t cpu);
    bool host_kvm_exit(std::int64_t time, std::uint32_t cpu);
    bool host_vcpu_thread(int vm, std::uint32_t vcpu, std::int32_t tid);
    bool guest_sched_switch(std::int64_t time, int vm, std::uint32_t vcpu, std::int32_t next_tid,
                            std::string_view next_comm);
    // tid belongs to pid; an empty comm keeps the known one.
    void guest_thread(int vm, std::int32_t tid, std::int32_t pid, std::string_view comm);

    [[nodiscard]] const HostCpu* cpu(std::uint32_t cpu) const { return cpu < cpus_.size() ? &cpus_[cpu] : nullptr; }
    [[nodiscard]] const Vcpu* vcpu(int vm, std::uint32_t vcpu) const {
        const auto& vcpus = vms_[static_cast<std::size_t>(vm)].vcpus;
        return vcpu < vcpus.size() ? &vcpus[vcpu] : nullptr;
    }
    [[nodiscard]] std::uint32_t max_cpus() const { return max_cpus_; }

    // Comms are interned: a Result's comm pointer stays valid for the join's lifetime.
    const std::string* intern(std::string_view comm);

    [[nodiscard]] std::size_t memory_bytes() const;

private:
    struct Thread {
        std::int32_t pid = -1;
        const std::string* comm = nullptr;
    };
    struct Vm {
        std::vector<Vcpu> vcpus;
        std::unordered_map<std::int32_t, Thread> threads;  // guest tid -> process
    };
    struct VcpuThread {
        int vm = -1;
        std::uint32_t vcpu = 0;
    };

    HostCpu* host_cpu(std::uint32_t cpu);
    void resolve(HostCpu& cpu) const;

    std::uint32_t max_cpus_;
    std::uint32_t max_vcpus_;
    std::vector<HostCpu> cpus_;
    std::vector<Vm> vms_;
    std::unordered_map<std::int32_t, VcpuThread> vcpu_threads_;  // host tid -> (VM, vCPU)
    std::unordered_set<std::string> comms_;
};

}  // namespace vmtrace::isolate
