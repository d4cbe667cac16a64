/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvm_x86 provider: KVM entry/exit and TDP fault events, and the VM's
 * non-deterministic inputs (port I/O, MMIO, MSR accesses, interrupt and
 * exception injections, hypercalls), attached to the kernel's own kvm_entry,
 * kvm_exit, kvm_page_fault, kvm_pio, kvm_mmio, kvm_msr, kvm_inj_virq,
 * kvm_inj_exception and kvm_hypercall tracepoints; and the MSR reads that
 * user space completes, which no kernel tracepoint records (fired from a
 * kprobe on KVM's completion callbacks). The probe file includes the kernel's arch/x86/kvm/trace.h and
 * include/trace/events/kvm.h first, so a prototype that differs from the
 * kernel's fails the build instead of recording garbage.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_x86

#if !defined(LTTNG_TRACE_VMTRACE_KVM_X86_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_KVM_X86_H

#include <lttng/tracepoint-event.h>
#include <linux/kvm_host.h>

#ifndef _VMTRACE_KVM_X86_HELPERS
#define _VMTRACE_KVM_X86_HELPERS
struct vmtrace_exit_info {
	u32 reason;
	u64 info1;
	u64 info2;
	u32 intr_info;
	u32 error_code;
};
void vmtrace_get_exit_info(struct kvm_vcpu *vcpu, struct vmtrace_exit_info *ei);
unsigned long vmtrace_rip(struct kvm_vcpu *vcpu);
bool vmtrace_vcpu_tdp(struct kvm_vcpu *vcpu);
/* vcpu_id of the vCPU loaded on this CPU; U32_MAX outside a vCPU thread. */
u32 vmtrace_running_vcpu_id(void);
#endif

#ifdef VMTRACE_KVM_ENTRY_IMMEDIATE_EXIT
#define VMTRACE_KVM_ENTRY_PROTO	struct kvm_vcpu *vcpu, bool force_immediate_exit
LTTNG_TRACEPOINT_EVENT_MAP(kvm_entry, kvm_x86_entry,
	TP_PROTO(struct kvm_vcpu *vcpu, bool force_immediate_exit),
	TP_ARGS(vcpu, force_immediate_exit),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vcpu->vcpu_id)
		ctf_integer_hex(u64, rip, vmtrace_rip(vcpu))
	)
)
#else
#define VMTRACE_KVM_ENTRY_PROTO	struct kvm_vcpu *vcpu
LTTNG_TRACEPOINT_EVENT_MAP(kvm_entry, kvm_x86_entry,
	TP_PROTO(struct kvm_vcpu *vcpu),
	TP_ARGS(vcpu),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vcpu->vcpu_id)
		ctf_integer_hex(u64, rip, vmtrace_rip(vcpu))
	)
)
#endif

LTTNG_TRACEPOINT_EVENT_CODE_MAP(kvm_exit, kvm_x86_exit,
	TP_PROTO(struct kvm_vcpu *vcpu, u32 isa),
	TP_ARGS(vcpu, isa),
	TP_locvar(
		struct vmtrace_exit_info ei;
	),
	TP_code_pre(
		vmtrace_get_exit_info(vcpu, &tp_locvar->ei);
	),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vcpu->vcpu_id)
		ctf_integer(u32, exit_reason, tp_locvar->ei.reason)
		ctf_integer_hex(u64, guest_rip, vmtrace_rip(vcpu))
		ctf_integer(u32, isa, isa)
		ctf_integer_hex(u64, info1, tp_locvar->ei.info1)
		ctf_integer_hex(u64, info2, tp_locvar->ei.info2)
		ctf_integer_hex(u32, intr_info, tp_locvar->ei.intr_info)
		ctf_integer_hex(u32, error_code, tp_locvar->ei.error_code)
	),
	TP_code_post()
)

/*
 * NPT fault (SVM) or EPT violation (VMX). address is guest-physical when
 * tdp is 1; with shadow paging (tdp 0) it is a guest-virtual address.
 */
LTTNG_TRACEPOINT_EVENT_MAP(kvm_page_fault, kvm_x86_tdp_fault,
	TP_PROTO(struct kvm_vcpu *vcpu, u64 fault_address, u64 error_code),
	TP_ARGS(vcpu, fault_address, error_code),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vcpu->vcpu_id)
		ctf_integer(s32, vm_pid, vcpu->kvm->userspace_pid)
		ctf_integer_hex(u64, gpa, fault_address)
		ctf_integer_hex(u64, error_code, error_code)
		ctf_integer(u8, tdp, vmtrace_vcpu_tdp(vcpu))
	)
)

/*
 * The kernel's kvm_pio, kvm_msr, kvm_inj_virq and kvm_hypercall carry no
 * vCPU: they all fire in the vCPU's thread with the vCPU loaded.
 */
LTTNG_TRACEPOINT_EVENT_CODE_MAP(kvm_pio, kvm_x86_pio,
	TP_PROTO(unsigned int rw, unsigned int port, unsigned int size,
		 unsigned int count, const void *data),
	TP_ARGS(rw, port, size, count, data),
	TP_locvar(
		u64 val;
	),
	TP_code_pre(
		tp_locvar->val = 0;
		if (data)
			memcpy(&tp_locvar->val, data,
			       min_t(unsigned int, size, sizeof(u64)));
	),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vmtrace_running_vcpu_id())
		ctf_integer(u8, rw, rw)
		ctf_integer_hex(u32, port, port)
		ctf_integer(u8, size, size)
		ctf_integer(u32, count, count)
		ctf_integer_hex(u64, val, tp_locvar->val)
	),
	TP_code_post()
)

/*
 * val is NULL for a read that userspace has not completed yet (the oops of
 * lttng-modules' own kvm_mmio probe): 0 is recorded then.
 */
LTTNG_TRACEPOINT_EVENT_CODE_MAP(kvm_mmio, kvm_x86_mmio,
	TP_PROTO(int type, int len, u64 gpa, void *val),
	TP_ARGS(type, len, gpa, val),
	TP_locvar(
		u64 val;
	),
	TP_code_pre(
		tp_locvar->val = 0;
		if (val && len > 0)
			memcpy(&tp_locvar->val, val,
			       min_t(unsigned int, len, sizeof(u64)));
	),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vmtrace_running_vcpu_id())
		ctf_integer(u8, type, type)
		ctf_integer(u8, len, len)
		ctf_integer_hex(u64, gpa, gpa)
		ctf_integer_hex(u64, val, tp_locvar->val)
	),
	TP_code_post()
)

LTTNG_TRACEPOINT_EVENT_MAP(kvm_msr, kvm_x86_msr,
	TP_PROTO(unsigned int write, u32 ecx, u64 data, bool exception),
	TP_ARGS(write, ecx, data, exception),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vmtrace_running_vcpu_id())
		ctf_integer(u8, write, write)
		ctf_integer_hex(u32, index, ecx)
		ctf_integer_hex(u64, data, data)
		ctf_integer(u8, exception, exception)
	)
)

LTTNG_TRACEPOINT_EVENT_MAP(kvm_inj_virq, kvm_x86_inj_virq,
	TP_PROTO(unsigned int vector, bool soft, bool reinjected),
	TP_ARGS(vector, soft, reinjected),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vmtrace_running_vcpu_id())
		ctf_integer(u32, vector, vector)
		ctf_integer(u8, soft, soft)
		ctf_integer(u8, reinjected, reinjected)
	)
)

LTTNG_TRACEPOINT_EVENT_MAP(kvm_inj_exception, kvm_x86_inj_exception,
	TP_PROTO(unsigned int exception, bool has_error,
		 unsigned int error_code, bool reinjected),
	TP_ARGS(exception, has_error, error_code, reinjected),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vmtrace_running_vcpu_id())
		ctf_integer(u8, vector, exception)
		ctf_integer(u8, has_error, has_error)
		ctf_integer_hex(u32, error_code, error_code)
		ctf_integer(u8, reinjected, reinjected)
	)
)

/*
 * An RDMSR that KVM handed to user space (KVM_EXIT_X86_RDMSR: the VMM's MSR
 * filter), with what user space returned, when KVM completes it on the next
 * KVM_RUN: kvm_msr covers only the MSRs KVM handles itself.
 */
LTTNG_TRACEPOINT_EVENT(kvm_x86_msr_user,
	TP_PROTO(u32 vcpu_id, u32 index, u64 data, u8 error),
	TP_ARGS(vcpu_id, index, data, error),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vcpu_id)
		ctf_integer_hex(u32, index, index)
		ctf_integer_hex(u64, data, data)
		ctf_integer(u8, error, error)
	)
)

LTTNG_TRACEPOINT_EVENT_MAP(kvm_hypercall, kvm_x86_hypercall,
	TP_PROTO(unsigned long nr, unsigned long a0, unsigned long a1,
		 unsigned long a2, unsigned long a3),
	TP_ARGS(nr, a0, a1, a2, a3),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vmtrace_running_vcpu_id())
		ctf_integer_hex(u64, nr, nr)
		ctf_integer_hex(u64, a0, a0)
		ctf_integer_hex(u64, a1, a1)
		ctf_integer_hex(u64, a2, a2)
		ctf_integer_hex(u64, a3, a3)
	)
)

#endif /* LTTNG_TRACE_VMTRACE_KVM_X86_H */

#include <lttng/define_trace.h>
