/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * guest_mm provider: GVA->GPA mappings of guest user processes, as page
 * faults install them or the session's statedump finds them, and the unmaps
 * and exits that end them. A mapping (pid, gva page) is valid from its
 * guest_mm_map until the next map of the same page or an unmap covering it.
 * access: bit 0 write, bit 1 instruction fetch, bit 2 user-mode fault;
 * bit 3 statedump (a present mapping found by the statedump's walk, not a
 * fault; bit 0 then means the page is mapped writable).
 * reason: 0 munmap or mapping replaced, 1 process exit, 2 execve.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM guest_mm

#if !defined(LTTNG_TRACE_VMTRACE_GUEST_MM_H) || defined(TRACE_HEADER_MULTI_READ)
#define LTTNG_TRACE_VMTRACE_GUEST_MM_H

#include <lttng/tracepoint-event.h>
#include <linux/types.h>

/* Kbuild leaves out an event whose probe does not fit the kernel. */
#ifdef VMTRACE_HAVE_HANDLE_MM_FAULT
LTTNG_TRACEPOINT_EVENT(guest_mm_map,
	TP_PROTO(s32 pid, s32 tid, u64 gva, u64 gpa, u8 access),
	TP_ARGS(pid, tid, gva, gpa, access),
	TP_FIELDS(
		ctf_integer(s32, pid, pid)
		ctf_integer(s32, tid, tid)
		ctf_integer_hex(u64, gva, gva)
		ctf_integer_hex(u64, gpa, gpa)
		ctf_integer(u8, access, access)
	)
)

#endif

#ifdef VMTRACE_HAVE_UNMAP_VMAS
LTTNG_TRACEPOINT_EVENT(guest_mm_unmap,
	TP_PROTO(s32 pid, s32 tid, u64 start, u64 end, u8 reason),
	TP_ARGS(pid, tid, start, end, reason),
	TP_FIELDS(
		ctf_integer(s32, pid, pid)
		ctf_integer(s32, tid, tid)
		ctf_integer_hex(u64, start, start)
		ctf_integer_hex(u64, end, end)
		ctf_integer(u8, reason, reason)
	)
)

#endif

#endif /* LTTNG_TRACE_VMTRACE_GUEST_MM_H */

#include <lttng/define_trace.h>
