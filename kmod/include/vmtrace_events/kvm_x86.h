/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvm_x86 provider: KVM entry/exit and TDP fault events, attached to the
 * kernel's own kvm_entry, kvm_exit and kvm_page_fault tracepoints. The probe
 * file includes the kernel's arch/x86/kvm/trace.h first, so a prototype that
 * differs from the kernel's fails the build instead of recording garbage.
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
#endif

#ifdef VMTRACE_KVM_ENTRY_IMMEDIATE_EXIT
#define VMTRACE_KVM_ENTRY_PROTO	struct kvm_vcpu *vcpu, bool force_immediate_exit
#define VMTRACE_KVM_ENTRY_ARGS	vcpu, force_immediate_exit
#else
#define VMTRACE_KVM_ENTRY_PROTO	struct kvm_vcpu *vcpu
#define VMTRACE_KVM_ENTRY_ARGS	vcpu
#endif

LTTNG_TRACEPOINT_EVENT_MAP(kvm_entry, kvm_x86_entry,
	TP_PROTO(VMTRACE_KVM_ENTRY_PROTO),
	TP_ARGS(VMTRACE_KVM_ENTRY_ARGS),
	TP_FIELDS(
		ctf_integer(u32, vcpu_id, vcpu->vcpu_id)
		ctf_integer_hex(u64, rip, vmtrace_rip(vcpu))
	)
)

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

#endif /* LTTNG_TRACE_VMTRACE_KVM_X86_H */

#include <lttng/define_trace.h>
