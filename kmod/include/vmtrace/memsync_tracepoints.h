/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel tracepoints of the memory tracer's clock handshake, defined and
 * fired by lttng-probe-vmtrace-memsync; the LTTng build checks the event
 * header's prototypes against these declarations.
 */
#ifndef _VMTRACE_MEMSYNC_TRACEPOINTS_H
#define _VMTRACE_MEMSYNC_TRACEPOINTS_H

#include <linux/tracepoint.h>
#include <linux/types.h>

DECLARE_TRACE(vmtrace_memsync_begin,
	TP_PROTO(u32 cnt, u64 hpa),
	TP_ARGS(cnt, hpa));
DECLARE_TRACE(vmtrace_memsync_end,
	TP_PROTO(u32 cnt, u64 hpa),
	TP_ARGS(cnt, hpa));

#endif /* _VMTRACE_MEMSYNC_TRACEPOINTS_H */
