/*
 * The plugin's counts.  Every access the plugin sees falls in exactly one
 * bucket, in the order the callback decides:
 *   seen = marks + controls + outside_window + filtered + sampled_out
 *        + lost + io + recorded
 * (docs/memory-tracing.md, "The QEMU plugin").
 */
#ifndef VMTRACE_QEMU_PLUGIN_COUNTS_H
#define VMTRACE_QEMU_PLUGIN_COUNTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"

struct plugin_counts {
    uint64_t seen;           /* memory accesses the plugin was called for */
    uint64_t marks;          /* stores to the marks page: vmtrace_mem_sync */
    uint64_t controls;       /* stores to the window-control page */
    uint64_t outside_window; /* mode=window: accesses while no window was open */
    uint64_t filtered;       /* guest-only=on: accesses outside a nested guest */
    uint64_t sampled_out;    /* sample=N: the N-1 of N not recorded */
    uint64_t lost;           /* to record, but no session enabled vmtrace_mem_access */
    uint64_t io;             /* to record, but I/O memory or no physical address */
    uint64_t recorded;       /* vmtrace_mem_access events written */
    /* Not accesses: */
    uint64_t windows;             /* windows opened */
    uint64_t opens_when_open;     /* open controls while a window was open */
    uint64_t closes_when_closed;  /* close controls while no window was open */
    uint64_t mark_resets;         /* the host's mark counter restarted at 0 */
    uint64_t vmruns;              /* VMRUN instructions executed (guest-only=on) */
    uint64_t guest_exits;         /* instructions after a VMRUN executed (guest-only=on) */
    uint64_t missed_exits;        /* VMRUNs executed while the guest flag was still set */
    uint64_t vmrun_sites_dropped; /* VMRUN sites past the set's capacity */
    bool window_open_at_exit;
};

/* The one-line summary (no newline) for qemu_plugin_outs. */
void format_counts_line(const struct plugin_counts* c, char* buf, size_t size);

/* The counts and arguments as one JSON object; false on a write error. */
bool write_counts_json(FILE* f, const struct plugin_counts* c, const struct plugin_args* a);

#endif
