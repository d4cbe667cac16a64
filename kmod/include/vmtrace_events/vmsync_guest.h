/* SPDX-License-Identifier: GPL-2.0-only */
/* vmsync provider, guest half: around the vmsync hypercall. */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmsync

#if !defined(LTTNG_TRACE_VMTRACE_VMSYNC_GUEST_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_VMSYNC_GUEST_H

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

#endif /* LTTNG_TRACE_VMTRACE_VMSYNC_GUEST_H */

#include <lttng/define_trace.h>
