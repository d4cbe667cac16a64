/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel tracepoints that the host module defines and fires itself (the
 * vmsync ones are lttng-probe-vmtrace-vmsync's: vmsync_tracepoints.h). The
 * LTTng event headers attach to them like to any kernel tracepoint, and the
 * LTTng build checks their prototypes against these declarations.
 */
#ifndef _VMTRACE_HOST_TRACEPOINTS_H
#define _VMTRACE_HOST_TRACEPOINTS_H

#include <linux/tracepoint.h>
#include <linux/types.h>

DECLARE_TRACE(kvm_vm_vcpu_thread,
	TP_PROTO(s32 vm_pid, u32 vcpu_id, s32 tid, u32 nr_vcpus,
		const char *vm_comm),
	TP_ARGS(vm_pid, vcpu_id, tid, nr_vcpus, vm_comm));
DECLARE_TRACE(kvm_vm_statedump_vm,
	TP_PROTO(s32 vm_pid, s32 owner_pid, u32 nr_vcpus, const char *vm_comm),
	TP_ARGS(vm_pid, owner_pid, nr_vcpus, vm_comm));
DECLARE_TRACE(kvm_vm_statedump_vcpu,
	TP_PROTO(s32 vm_pid, u32 vcpu_id, s32 tid),
	TP_ARGS(vm_pid, vcpu_id, tid));
DECLARE_TRACE(kvm_tdp_mmu_map,
	TP_PROTO(s32 vm_pid, u8 as_id, u64 gfn, u64 pfn, u64 old_pfn,
		u8 level, u8 op),
	TP_ARGS(vm_pid, as_id, gfn, pfn, old_pfn, level, op));
DECLARE_TRACE(kvm_x86_msr_user,
	TP_PROTO(u32 vcpu_id, u32 index, u64 data, u8 error),
	TP_ARGS(vcpu_id, index, data, error));

#endif /* _VMTRACE_HOST_TRACEPOINTS_H */
