/*
 * vmtrace memory tracer provider: the C API of libvmtrace-mem.
 *
 * A memory tracer (the QEMU TCG plugin, a hardware or FPGA tracer's host
 * software, an importer of sampled accesses) calls these functions to emit
 * the lttng-ust events of provider `vmtrace_mem` that docs/events.json
 * defines.  Every event takes its timestamp when the function is called
 * (lttng-ust's clock: CLOCK_MONOTONIC of the machine the tracer runs on), so
 * call them in the order and at the time the accesses happen.
 *
 * All functions are thread-safe.  When no session enables an event, its
 * function costs a load and a branch; vmtrace_mem_access_enabled() lets a
 * caller skip the work of computing an access's fields as well.
 */
#ifndef VMTRACE_MEM_TRACER_H
#define VMTRACE_MEM_TRACER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library exports these functions only (it is built with hidden
 * visibility, keeping lttng-ust's symbols its own). */
#define VMTRACE_MEM_API __attribute__((visibility("default")))

/* vmtrace_mem_access.kind */
#define VMTRACE_MEM_LOAD 0
#define VMTRACE_MEM_STORE 1
#define VMTRACE_MEM_FETCH 2

/* True while a session enables vmtrace_mem:vmtrace_mem_access. */
VMTRACE_MEM_API bool vmtrace_mem_access_enabled(void);

/* One access of the traced machine: its CPU index, host physical address,
 * size in bytes, kind (VMTRACE_MEM_*) and the virtual address the CPU used
 * (recorded for validation; 0 when unknown). */
VMTRACE_MEM_API void vmtrace_mem_access(uint32_t cpu, uint64_t hpa, uint8_t size, uint8_t kind, uint64_t va);

/* Records the tracer could not write since its previous vmtrace_mem_lost. */
VMTRACE_MEM_API void vmtrace_mem_lost(uint64_t count);

/* The tracer saw the store of clock-handshake mark cnt to the reserved page
 * hpa, by CPU cpu: call it at the time of the store. */
VMTRACE_MEM_API void vmtrace_mem_sync(uint32_t cnt, uint64_t hpa, uint32_t cpu);

/* Bounds of recording window number `window` (from 0): in window mode,
 * accesses are recorded only between an open and the close of the same
 * number.  The close carries the records written and lost in the window. */
VMTRACE_MEM_API void vmtrace_mem_window_open(uint32_t window);
VMTRACE_MEM_API void vmtrace_mem_window_close(uint32_t window, uint64_t recorded, uint64_t lost);

#ifdef __cplusplus
}
#endif

#endif /* VMTRACE_MEM_TRACER_H */
