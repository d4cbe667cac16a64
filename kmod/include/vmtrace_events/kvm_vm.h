/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvm_vm provider: which QEMU process is which VM and which of its threads
 * runs which vCPU. vm_pid (the process that created the VM) is the VM's key
 * in every host event that names a VM.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_vm

#if !defined(LTTNG_TRACE_VMTRACE_KVM_VM_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_KVM_VM_H

#include <lttng/tracepoint-event.h>
#include <linux/types.h>

/* First entry of a vCPU on a thread (a new VM's vCPUs, or a vCPU moved). */
LTTNG_TRACEPOINT_EVENT(kvm_vm_vcpu_thread,
	TP_PROTO(s32 vm_pid, u32 vcpu_id, s32 tid, u32 nr_vcpus,
		const char *vm_comm),
	TP_ARGS(vm_pid, vcpu_id, tid, nr_vcpus, vm_comm),
	TP_FIELDS(
		ctf_integer(s32, vm_pid, vm_pid)
		ctf_integer(u32, vcpu_id, vcpu_id)
		ctf_integer(s32, tid, tid)
		ctf_integer(u32, nr_vcpus, nr_vcpus)
		ctf_string(vm_comm, vm_comm)
	)
)

/* Statedump: a VM alive when the session started. */
LTTNG_TRACEPOINT_EVENT(kvm_vm_statedump_vm,
	TP_PROTO(s32 vm_pid, s32 owner_pid, u32 nr_vcpus, const char *vm_comm),
	TP_ARGS(vm_pid, owner_pid, nr_vcpus, vm_comm),
	TP_FIELDS(
		ctf_integer(s32, vm_pid, vm_pid)
		ctf_integer(s32, owner_pid, owner_pid)
		ctf_integer(u32, nr_vcpus, nr_vcpus)
		ctf_string(vm_comm, vm_comm)
	)
)

/* Statedump: a vCPU alive when the session started (tid 0: never run). */
LTTNG_TRACEPOINT_EVENT(kvm_vm_statedump_vcpu,
	TP_PROTO(s32 vm_pid, u32 vcpu_id, s32 tid),
	TP_ARGS(vm_pid, vcpu_id, tid),
	TP_FIELDS(
		ctf_integer(s32, vm_pid, vm_pid)
		ctf_integer(u32, vcpu_id, vcpu_id)
		ctf_integer(s32, tid, tid)
	)
)

#endif /* LTTNG_TRACE_VMTRACE_KVM_VM_H */

#include <lttng/define_trace.h>
