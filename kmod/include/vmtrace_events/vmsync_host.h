/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmsync provider, host half: the module's own tracepoints, fired from its
 * kvm_hypercall and kvm_entry hooks.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmsync

#if !defined(LTTNG_TRACE_VMTRACE_VMSYNC_HOST_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_VMSYNC_HOST_H

#include <lttng/tracepoint-event.h>
#include <linux/types.h>

LTTNG_TRACEPOINT_EVENT_CLASS(vmsync_host_class,
	TP_PROTO(u32 cnt, u64 vm_uid, u32 vcpu_id),
	TP_ARGS(cnt, vm_uid, vcpu_id),
	TP_FIELDS(
		ctf_integer(u32, cnt, cnt)
		ctf_integer_hex(u64, vm_uid, vm_uid)
		ctf_integer(u32, vcpu_id, vcpu_id)
	)
)

LTTNG_TRACEPOINT_EVENT_INSTANCE(vmsync_host_class, vmsync_gh_host,
	TP_PROTO(u32 cnt, u64 vm_uid, u32 vcpu_id),
	TP_ARGS(cnt, vm_uid, vcpu_id)
)

LTTNG_TRACEPOINT_EVENT_INSTANCE(vmsync_host_class, vmsync_hg_host,
	TP_PROTO(u32 cnt, u64 vm_uid, u32 vcpu_id),
	TP_ARGS(cnt, vm_uid, vcpu_id)
)

#endif /* LTTNG_TRACE_VMTRACE_VMSYNC_HOST_H */

#include <lttng/define_trace.h>
