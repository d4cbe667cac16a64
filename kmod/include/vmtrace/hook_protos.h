/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The prototypes the probes were written for: a kprobe handler reads a
 * function's arguments from their registers, and a tracepoint hook must
 * have the tracepoint's prototype. Kbuild compiles checks/<name>.c against
 * the kernel's headers with these; a kernel that differs leaves that probe
 * and its events out of the build (with a message) instead of failing it.
 *
 * VMTRACE_BREAK_<name> (make VMTRACE_CHECK_BREAK=<name>) declares a wrong
 * prototype, to test the left-out path on a kernel that matches.
 */
#ifndef _VMTRACE_HOOK_PROTOS_H
#define _VMTRACE_HOOK_PROTOS_H

struct maple_tree;
struct mmu_gather;
struct pt_regs;
struct vm_area_struct;

#ifndef VMTRACE_BREAK_handle_mm_fault
#define VMTRACE_HANDLE_MM_FAULT_TYPE					\
	vm_fault_t (*)(struct vm_area_struct *, unsigned long,		\
		       unsigned int, struct pt_regs *)
#else
#define VMTRACE_HANDLE_MM_FAULT_TYPE					\
	vm_fault_t (*)(struct vm_area_struct *, unsigned long)
#endif

#ifndef VMTRACE_BREAK_unmap_vmas
#define VMTRACE_UNMAP_VMAS_TYPE						\
	void (*)(struct mmu_gather *, struct maple_tree *,		\
		 struct vm_area_struct *, unsigned long, unsigned long)
#else
#define VMTRACE_UNMAP_VMAS_TYPE						\
	void (*)(struct mmu_gather *, struct vm_area_struct *,		\
		 unsigned long, unsigned long)
#endif

/* Tracepoint hooks: register_trace_<name>(probe, data). */
#ifndef VMTRACE_BREAK_kvm_tdp_mmu_spte_changed
#define VMTRACE_TDP_SPTE_CHANGED_HOOK					\
	void (*)(void *, int, gfn_t, int, u64, u64)
#else
#define VMTRACE_TDP_SPTE_CHANGED_HOOK					\
	void (*)(void *, int, gfn_t, u64, u64)
#endif

#endif /* _VMTRACE_HOOK_PROTOS_H */
