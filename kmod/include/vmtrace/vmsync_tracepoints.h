/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel tracepoints of the vmsync handshake. lttng-probe-vmtrace-vmsync
 * defines and exports them; the host and guest modules fire them, which
 * makes both depend on that module (modprobe loads it first). The LTTng
 * build checks the event header's prototypes against these declarations.
 */
#ifndef _VMTRACE_VMSYNC_TRACEPOINTS_H
#define _VMTRACE_VMSYNC_TRACEPOINTS_H

#include <linux/tracepoint.h>
#include <linux/types.h>

DECLARE_TRACE(vmsync_gh_guest,
	TP_PROTO(u32 cnt, u64 vm_uid),
	TP_ARGS(cnt, vm_uid));
DECLARE_TRACE(vmsync_hg_guest,
	TP_PROTO(u32 cnt, u64 vm_uid),
	TP_ARGS(cnt, vm_uid));
DECLARE_TRACE(vmsync_gh_host,
	TP_PROTO(u32 cnt, u64 vm_uid, u32 vcpu_id),
	TP_ARGS(cnt, vm_uid, vcpu_id));
DECLARE_TRACE(vmsync_hg_host,
	TP_PROTO(u32 cnt, u64 vm_uid, u32 vcpu_id),
	TP_ARGS(cnt, vm_uid, vcpu_id));

#endif /* _VMTRACE_VMSYNC_TRACEPOINTS_H */
