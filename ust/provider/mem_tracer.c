/*
 * The mem_tracer.h API: one function per event, so callers need neither the
 * lttng-ust headers nor the provider's macros.
 */
#include "vmtrace/mem_tracer.h"

#include "vmtrace_mem_tp.h"

bool vmtrace_mem_access_enabled(void) {
    return lttng_ust_tracepoint_enabled(vmtrace_mem, vmtrace_mem_access);
}

void vmtrace_mem_access(uint32_t cpu, uint64_t hpa, uint8_t size, uint8_t kind, uint64_t va) {
    lttng_ust_tracepoint(vmtrace_mem, vmtrace_mem_access, cpu, hpa, size, kind, va);
}

void vmtrace_mem_lost(uint64_t count) {
    lttng_ust_tracepoint(vmtrace_mem, vmtrace_mem_lost, count);
}

void vmtrace_mem_sync(uint32_t cnt, uint64_t hpa, uint32_t cpu) {
    lttng_ust_tracepoint(vmtrace_mem, vmtrace_mem_sync, cnt, hpa, cpu);
}

void vmtrace_mem_window_open(uint32_t window) {
    lttng_ust_tracepoint(vmtrace_mem, vmtrace_mem_window_open, window);
}

void vmtrace_mem_window_close(uint32_t window, uint64_t recorded, uint64_t lost) {
    lttng_ust_tracepoint(vmtrace_mem, vmtrace_mem_window_close, window, recorded, lost);
}
