// SPDX-License-Identifier: MIT
#pragma once

// The simulator's events as join input records (join_benchmark and
// join_scenario_unittest only: the library does not depend on lib/scenario).

#include <optional>

#include "lib/isolate/join_replay.hpp"
#include "lib/scenario/memory_scenario.hpp"

namespace vmtrace::isolate::bench {

// The record of one simulated event at its true time (all machines on one
// time base, as after a perfect sync), or nothing if the join does not
// read it.  Guest g's events go to VM index g: the host's VM statedump
// names the VMs in guest order.
inline std::optional<Record> to_record(const scenario::SimEvent& e, unsigned guests) {
    using scenario::EventType;
    using Op = Record::Op;
    Record r;
    r.t = e.time;
    if (e.machine == 0) {
        switch (e.type) {
        case EventType::vm_statedump_vm:
            r.op = Op::vm;
            r.x = e.pid;
            return r;
        case EventType::vm_statedump_vcpu:
            r.op = Op::vcpu_thread;
            r.x = e.pid;
            r.cpu = e.count;
            r.y = e.tid;
            return r;
        case EventType::sched_switch:
            r.op = Op::host_switch;
            r.cpu = e.cpu;
            r.x = e.next_tid;
            return r;
        case EventType::kvm_entry:
        case EventType::kvm_exit:
            r.op = e.type == EventType::kvm_entry ? Op::kvm_entry : Op::kvm_exit;
            r.cpu = e.cpu;
            return r;
        case EventType::tdp_mmu_map:
            r.op = Op::tdp;
            r.x = e.pid;
            r.u = e.addr;
            r.v = e.addr2;
            r.w = e.addr3;
            r.b = e.level;
            r.c = e.op;
            return r;
        default:
            return std::nullopt;
        }
    }
    if (e.machine <= guests) {
        r.x = static_cast<std::int32_t>(e.machine - 1);
        switch (e.type) {
        case EventType::sched_switch:
            r.op = Op::guest_switch;
            r.cpu = e.cpu;
            r.y = e.next_tid;
            r.comm = e.next_comm;
            return r;
        case EventType::process_statedump:
            r.op = Op::guest_thread;
            r.y = e.tid;
            r.z = e.pid;
            r.comm = e.comm;
            return r;
        case EventType::process_fork:
            r.op = Op::fork;
            r.y = e.pid;
            r.z = e.child_pid;
            r.cpu = static_cast<std::uint32_t>(e.tid);
            r.comm = e.comm;
            return r;
        case EventType::guest_mm_map:
            r.op = Op::mm_map;
            r.z = e.pid;
            r.y = e.tid;
            r.u = e.addr;
            r.v = e.addr2;
            return r;
        case EventType::guest_mm_unmap:
            r.op = Op::mm_unmap;
            r.z = e.pid;
            r.u = e.addr;
            r.v = e.addr2;
            r.a = e.op;
            return r;
        default:
            return std::nullopt;
        }
    }
    if (e.type == EventType::mem_access) {
        r.op = Op::access;
        r.cpu = e.count;
        r.u = e.addr;
        r.a = e.level;
        r.b = e.op;
        return r;
    }
    return std::nullopt;
}

}  // namespace vmtrace::isolate::bench
