// SPDX-License-Identifier: MIT
#include "lib/isolate/cpu_chain.hpp"

namespace vmtrace::isolate {

HostCpu* CpuChain::host_cpu(std::uint32_t cpu) {
    if (cpu >= max_cpus_) {
        return nullptr;
    }
    if (cpu >= cpus_.size()) {
        cpus_.resize(cpu + 1);
    }
    return &cpus_[cpu];
}

void CpuChain::resolve(HostCpu& cpu) const {
    const auto it = vcpu_threads_.find(cpu.host_tid);
    cpu.vm = it == vcpu_threads_.end() ? -1 : it->second.vm;
    cpu.vcpu = it == vcpu_threads_.end() ? 0 : it->second.vcpu;
}

bool CpuChain::host_sched_switch(std::int64_t time, std::uint32_t cpu, std::int32_t next_tid) {
    HostCpu* c = host_cpu(cpu);
    if (c == nullptr) {
        return false;
    }
    c->host_tid = next_tid;
    // A vCPU thread is scheduled in host mode; kvm entry follows.
    c->guest_mode = false;
    resolve(*c);
    c->changes.add(time);
    return true;
}

bool CpuChain::host_kvm_entry(std::int64_t time, std::uint32_t cpu) {
    HostCpu* c = host_cpu(cpu);
    if (c == nullptr) {
        return false;
    }
    c->guest_mode = true;
    c->changes.add(time);
    return true;
}

bool CpuChain::host_kvm_exit(std::int64_t time, std::uint32_t cpu) {
    HostCpu* c = host_cpu(cpu);
    if (c == nullptr) {
        return false;
    }
    c->guest_mode = false;
    c->changes.add(time);
    return true;
}

bool CpuChain::host_vcpu_thread(int vm, std::uint32_t vcpu, std::int32_t tid) {
    if (vcpu >= max_vcpus_) {
        return false;
    }
    vcpu_threads_[tid] = {vm, vcpu};
    // The statedump may come after the thread was switched in.
    for (HostCpu& c : cpus_) {
        if (c.host_tid == tid) {
            resolve(c);
        }
    }
    return true;
}

bool CpuChain::guest_sched_switch(std::int64_t time, int vm, std::uint32_t vcpu, std::int32_t next_tid,
                                  std::string_view next_comm) {
    if (vcpu >= max_vcpus_) {
        return false;
    }
    Vm& v = vms_[static_cast<std::size_t>(vm)];
    if (vcpu >= v.vcpus.size()) {
        v.vcpus.resize(vcpu + 1);
    }
    Thread& thread = v.threads[next_tid];
    if (!next_comm.empty()) {
        thread.comm = intern(next_comm);
    }
    if (next_tid == 0) {
        thread.pid = 0;  // the idle task
    }
    Vcpu& running = v.vcpus[vcpu];
    running.tid = next_tid;
    running.pid = thread.pid;
    running.comm = thread.comm;
    running.switches.add(time);
    return true;
}

void CpuChain::guest_thread(int vm, std::int32_t tid, std::int32_t pid, std::string_view comm) {
    Vm& v = vms_[static_cast<std::size_t>(vm)];
    Thread& thread = v.threads[tid];
    thread.pid = pid;
    if (!comm.empty()) {
        thread.comm = intern(comm);
    }
    for (Vcpu& running : v.vcpus) {
        if (running.tid == tid) {
            running.pid = thread.pid;
            running.comm = thread.comm;
        }
    }
}

const std::string* CpuChain::intern(std::string_view comm) {
    return &*comms_.emplace(comm).first;
}

std::size_t CpuChain::memory_bytes() const {
    std::size_t bytes = cpus_.capacity() * sizeof(HostCpu) + vcpu_threads_.size() * 32;
    for (const Vm& v : vms_) {
        bytes += v.vcpus.capacity() * sizeof(Vcpu) + v.threads.size() * 32;
    }
    return bytes + comms_.size() * 64;
}

}  // namespace vmtrace::isolate
