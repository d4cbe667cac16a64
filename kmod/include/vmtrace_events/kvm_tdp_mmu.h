/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvm_tdp_mmu provider: GPA->HPA leaf mappings of the TDP MMU. op is
 * 1 = installed, 2 = changed (pfn moved; old_pfn is the previous one),
 * 3 = removed (pfn is the page that was mapped), 4 = statedump (a mapping
 * present when the record was taken, during the session's statedump; an
 * install that may repeat one already known). vm_pid 0 means the change
 * ran in a context that names no VM (reclaim, compaction on another task).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_tdp_mmu

#if !defined(LTTNG_TRACE_VMTRACE_KVM_TDP_MMU_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_KVM_TDP_MMU_H

#include <lttng/tracepoint-event.h>
#include <linux/types.h>

#define VMTRACE_MAP_INSTALL	1
#define VMTRACE_MAP_CHANGE	2
#define VMTRACE_MAP_REMOVE	3
#define VMTRACE_MAP_STATEDUMP	4

LTTNG_TRACEPOINT_EVENT(kvm_tdp_mmu_map,
	TP_PROTO(s32 vm_pid, u8 as_id, u64 gfn, u64 pfn, u64 old_pfn,
		u8 level, u8 op),
	TP_ARGS(vm_pid, as_id, gfn, pfn, old_pfn, level, op),
	TP_FIELDS(
		ctf_integer(s32, vm_pid, vm_pid)
		ctf_integer(u8, as_id, as_id)
		ctf_integer_hex(u64, gfn, gfn)
		ctf_integer_hex(u64, pfn, pfn)
		ctf_integer_hex(u64, old_pfn, old_pfn)
		ctf_integer(u8, level, level)
		ctf_integer(u8, op, op)
	)
)

#endif /* LTTNG_TRACE_VMTRACE_KVM_TDP_MMU_H */

#include <lttng/define_trace.h>
