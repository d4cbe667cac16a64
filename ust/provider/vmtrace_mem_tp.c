/*
 * The probes and tracepoint definitions of provider vmtrace_mem, built into
 * libvmtrace-mem itself: a program linking the library needs nothing else
 * (no LD_PRELOAD of a probe library) for the events to be listed and enabled.
 */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "vmtrace_mem_tp.h"
