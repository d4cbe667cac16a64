/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmsync provider: the four events of the vmsync handshake. Only
 * lttng-probe-vmtrace-vmsync registers this provider; the guest module fires
 * the guest half around its hypercall, the host module the host half from
 * its kvm_hypercall and kvm_entry hooks. Trace Compass reads these events by
 * name and pairs them by (vm_uid, cnt): keep names and fields.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmsync

#if !defined(LTTNG_TRACE_VMTRACE_VMSYNC_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_VMSYNC_H

#include <lttng/tracepoint-event.h>
#include <linux/types.h>

LTTNG_TRACEPOINT_EVENT_CLASS(vmsync_guest_class,
	TP_PROTO(u32 cnt, u64 vm_uid),
	TP_ARGS(cnt, vm_uid),
	TP_FIELDS(
		ctf_integer(u32, cnt, cnt)
		ctf_integer_hex(u64, vm_uid, vm_uid)
	)
)

LTTNG_TRACEPOINT_EVENT_INSTANCE(vmsync_guest_class, vmsync_gh_guest,
	TP_PROTO(u32 cnt, u64 vm_uid),
	TP_ARGS(cnt, vm_uid)
)

LTTNG_TRACEPOINT_EVENT_INSTANCE(vmsync_guest_class, vmsync_hg_guest,
	TP_PROTO(u32 cnt, u64 vm_uid),
	TP_ARGS(cnt, vm_uid)
)

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

#endif /* LTTNG_TRACE_VMTRACE_VMSYNC_H */

#include <lttng/define_trace.h>
