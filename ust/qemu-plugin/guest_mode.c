/* The set of addresses following a VMRUN: a handful in practice (KVM has one
 * VMRUN site), so a small array read without locks. */
#include "guest_mode.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_VMRUN_SITES 64

static uint64_t returns[MAX_VMRUN_SITES];
static _Atomic size_t n_returns;
static pthread_mutex_t returns_lock = PTHREAD_MUTEX_INITIALIZER;

bool is_vmrun(const uint8_t* bytes, size_t size) {
    return size == VMRUN_SIZE && bytes[0] == 0x0f && bytes[1] == 0x01 && bytes[2] == 0xd8;
}

bool is_vmrun_return(uint64_t vaddr) {
    /* Entries below n are written before n is published (release). */
    size_t n = atomic_load_explicit(&n_returns, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (returns[i] == vaddr)
            return true;
    return false;
}

bool add_vmrun_return(uint64_t return_vaddr) {
    bool ok = true;
    pthread_mutex_lock(&returns_lock);
    if (!is_vmrun_return(return_vaddr)) {
        size_t n = atomic_load_explicit(&n_returns, memory_order_relaxed);
        if (n < MAX_VMRUN_SITES) {
            returns[n] = return_vaddr;
            atomic_store_explicit(&n_returns, n + 1, memory_order_release);
        } else
            ok = false;
    }
    pthread_mutex_unlock(&returns_lock);
    return ok;
}
