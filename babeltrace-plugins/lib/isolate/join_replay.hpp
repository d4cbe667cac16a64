// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <vector>

#include "lib/isolate/join.hpp"

namespace vmtrace::isolate::bench {

// A compact, recorded input of the join, replayed by join_benchmark.
struct Record {
    enum class Op : std::uint8_t {
        access,        // cpu, u = hpa, a = size, b = kind
        tdp,           // x = vm_pid, a = as_id, u = gfn, v = pfn, w = old_pfn, b = level, c = op
        host_switch,   // cpu, x = next tid
        kvm_entry,     // cpu
        kvm_exit,      // cpu
        vcpu_thread,   // x = vm_pid, cpu = vCPU, y = tid
        guest_switch,  // x = vm, cpu = vCPU, y = next tid
        guest_thread,  // x = vm, y = tid, z = pid
        fork,          // x = vm, y = parent pid, z = child pid, cpu = child tid
        mm_map,        // x = vm, z = pid, y = tid, u = gva, v = gpa
        mm_unmap,      // x = vm, z = pid, u = start, v = end, a = reason
        vm,            // x = vm_pid: the VM's index is the next one
    };
    std::int64_t t = 0;
    Op op = Op::access;
    std::uint8_t a = 0, b = 0, c = 0;
    std::uint32_t cpu = 0;
    std::int32_t x = 0, y = 0, z = 0;
    std::uint64_t u = 0, v = 0, w = 0;
    const char* comm = "";
};

inline void feed(Join& join, const Record& r) {
    switch (r.op) {
    case Record::Op::access:
        join.access({.time = r.t, .cpu = r.cpu, .size = r.a, .kind = r.b, .hpa = r.u, .user = 0});
        break;
    case Record::Op::tdp:
        join.host_tdp_map(r.t, r.x, r.a, r.u, r.v, r.w, r.b, r.c);
        break;
    case Record::Op::host_switch:
        join.host_sched_switch(r.t, r.cpu, r.x);
        break;
    case Record::Op::kvm_entry:
        join.host_kvm_entry(r.t, r.cpu);
        break;
    case Record::Op::kvm_exit:
        join.host_kvm_exit(r.t, r.cpu);
        break;
    case Record::Op::vcpu_thread:
        join.host_vcpu_thread(r.x, r.cpu, r.y);
        break;
    case Record::Op::guest_switch:
        join.guest_sched_switch(r.t, r.x, r.cpu, r.y, r.comm);
        break;
    case Record::Op::guest_thread:
        join.guest_thread(r.x, r.y, r.z, r.comm);
        break;
    case Record::Op::fork:
        join.guest_fork(r.t, r.x, r.y, r.z, static_cast<std::int32_t>(r.cpu), r.comm);
        break;
    case Record::Op::mm_map:
        join.guest_mm_map(r.t, r.x, r.z, r.y, r.u, r.v);
        break;
    case Record::Op::mm_unmap:
        join.guest_mm_unmap(r.t, r.x, r.z, r.u, r.v, r.a);
        break;
    case Record::Op::vm:
        join.vm_of_pid(r.x);
        break;
    }
}

}  // namespace vmtrace::isolate::bench
