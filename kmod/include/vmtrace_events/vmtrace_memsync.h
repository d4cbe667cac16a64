/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmtrace_memsync provider: the host half of the memory tracer's clock
 * handshake. Between begin and end the host stores one byte to the reserved
 * page hpa at offset cnt % 4096; a whole-machine memory tracer sees that
 * store and records it on its own clock (vmtrace_mem_sync), and
 * filter.vmtrace.sync pairs the three by (hpa, cnt).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmtrace_memsync

#if !defined(LTTNG_TRACE_VMTRACE_MEMSYNC_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_MEMSYNC_H

#include <lttng/tracepoint-event.h>
#include <linux/types.h>

LTTNG_TRACEPOINT_EVENT_CLASS(vmtrace_memsync_class,
	TP_PROTO(u32 cnt, u64 hpa),
	TP_ARGS(cnt, hpa),
	TP_FIELDS(
		ctf_integer(u32, cnt, cnt)
		ctf_integer_hex(u64, hpa, hpa)
	)
)

LTTNG_TRACEPOINT_EVENT_INSTANCE(vmtrace_memsync_class, vmtrace_memsync_begin,
	TP_PROTO(u32 cnt, u64 hpa),
	TP_ARGS(cnt, hpa)
)

LTTNG_TRACEPOINT_EVENT_INSTANCE(vmtrace_memsync_class, vmtrace_memsync_end,
	TP_PROTO(u32 cnt, u64 hpa),
	TP_ARGS(cnt, hpa)
)

#endif /* LTTNG_TRACE_VMTRACE_MEMSYNC_H */

#include <lttng/define_trace.h>
