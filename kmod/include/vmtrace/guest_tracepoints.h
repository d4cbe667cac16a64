/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel tracepoints that the guest module defines and fires itself; the
 * LTTng build checks the event headers' prototypes against these.
 */
#ifndef _VMTRACE_GUEST_TRACEPOINTS_H
#define _VMTRACE_GUEST_TRACEPOINTS_H

#include <linux/tracepoint.h>
#include <linux/types.h>

DECLARE_TRACE(guest_mm_map,
	TP_PROTO(s32 pid, s32 tid, u64 gva, u64 gpa, u8 access),
	TP_ARGS(pid, tid, gva, gpa, access));
DECLARE_TRACE(guest_mm_unmap,
	TP_PROTO(s32 pid, s32 tid, u64 start, u64 end, u8 reason),
	TP_ARGS(pid, tid, start, end, reason));

#endif /* _VMTRACE_GUEST_TRACEPOINTS_H */
