/*
 * The QEMU plugin's arguments (`-plugin libvmtrace-mem-qemu.so,ARG=VAL,...`),
 * parsed and validated at load so a bad one stops QEMU before the guest runs.
 */
#ifndef VMTRACE_QEMU_PLUGIN_ARGS_H
#define VMTRACE_QEMU_PLUGIN_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The reserved area: page 0 takes the clock marks, page 1 the controls (offset
 * 0 opens the window, 1 closes it, 2 restarts the mark count at 0). */
#define VMTRACE_RESERVED_PAGE 4096u
#define VMTRACE_RESERVED_SIZE (2u * VMTRACE_RESERVED_PAGE)

struct plugin_args {
    bool mode_all;      /* mode=all: record outside windows too */
    bool has_sync;      /* sync=BASE given */
    uint64_t sync_base; /* physical address of the reserved area */
    uint64_t sample;    /* record 1 access in `sample` (>= 1) */
    bool guest_only;    /* record only while the CPU runs a nested guest */
    const char* stats;  /* stats=PATH, or NULL */
};

/* Parses argv into *out (defaults first).  On a bad argument writes one line
 * naming it into err (NUL-terminated, at most err_size bytes) and returns
 * false. */
bool parse_plugin_args(int argc, char** argv, struct plugin_args* out, char* err, size_t err_size);

#endif
