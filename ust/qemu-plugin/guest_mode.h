/*
 * Guest-mode detection for guest-only=on: the CPU runs a nested guest from
 * the VMRUN instruction (0f 01 d8) until the instruction after it executes
 * (the host resumes there at #VMEXIT).  The plugin API of QEMU 7.2 cannot
 * read registers, so the instruction stream is all it has: translation
 * records where the VMRUNs are, and the instruction at VMRUN + 3 gets a
 * callback that clears the flag.
 */
#ifndef VMTRACE_QEMU_PLUGIN_GUEST_MODE_H
#define VMTRACE_QEMU_PLUGIN_GUEST_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMRUN_SIZE 3u

/* True if the instruction bytes are exactly VMRUN (0f 01 d8). */
bool is_vmrun(const uint8_t* bytes, size_t size);

/* Remembers that a VMRUN ends at return_vaddr (thread-safe; a bounded set:
 * false once it is full, which the plugin reports). */
bool add_vmrun_return(uint64_t return_vaddr);

/* True if vaddr follows a VMRUN seen so far (lock-free). */
bool is_vmrun_return(uint64_t vaddr);

#endif
