/*
 * lttng-ust tracepoint provider `vmtrace_mem`: the events of docs/events.json
 * with emitter ust-provider, field for field (names, order, types, bases).
 * Included by this library's sources only; users call mem_tracer.h.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER vmtrace_mem

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "vmtrace_mem_tp.h"

#if !defined(VMTRACE_MEM_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define VMTRACE_MEM_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

/* One field per line, as the schema lists them. */
// clang-format off
LTTNG_UST_TRACEPOINT_EVENT(vmtrace_mem, vmtrace_mem_access,
    LTTNG_UST_TP_ARGS(uint32_t, cpu, uint64_t, hpa, uint8_t, size, uint8_t, kind, uint64_t, va),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, cpu, cpu)
        lttng_ust_field_integer_hex(uint64_t, hpa, hpa)
        lttng_ust_field_integer(uint8_t, size, size)
        lttng_ust_field_integer(uint8_t, kind, kind)
        lttng_ust_field_integer_hex(uint64_t, va, va)))

LTTNG_UST_TRACEPOINT_EVENT(vmtrace_mem, vmtrace_mem_lost,
    LTTNG_UST_TP_ARGS(uint64_t, count),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint64_t, count, count)))

LTTNG_UST_TRACEPOINT_EVENT(vmtrace_mem, vmtrace_mem_sync,
    LTTNG_UST_TP_ARGS(uint32_t, cnt, uint64_t, hpa, uint32_t, cpu),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, cnt, cnt)
        lttng_ust_field_integer_hex(uint64_t, hpa, hpa)
        lttng_ust_field_integer(uint32_t, cpu, cpu)))

LTTNG_UST_TRACEPOINT_EVENT(vmtrace_mem, vmtrace_mem_window_open,
    LTTNG_UST_TP_ARGS(uint32_t, window),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, window, window)))

LTTNG_UST_TRACEPOINT_EVENT(vmtrace_mem, vmtrace_mem_window_close,
    LTTNG_UST_TP_ARGS(uint32_t, window, uint64_t, recorded, uint64_t, lost),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, window, window)
        lttng_ust_field_integer(uint64_t, recorded, recorded)
        lttng_ust_field_integer(uint64_t, lost, lost)))
// clang-format on

#endif /* VMTRACE_MEM_TP_H */

#include <lttng/tracepoint-event.h>
