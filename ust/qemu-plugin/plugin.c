/*
 * libvmtrace-mem-qemu.so: QEMU TCG plugin (plugin API 1, QEMU 7.2) that
 * records the emulated machine's memory accesses through libvmtrace-mem as
 * lttng-ust events of provider vmtrace_mem (docs/memory-tracing.md, "The
 * QEMU plugin").
 *
 * Loads and stores are recorded by physical address; instruction fetches are
 * not: API 1 gives an instruction's virtual address and a *host* pointer to
 * its bytes (qemu_plugin_insn_haddr), never its guest-physical address.
 *
 * Threads: with multi-threaded TCG every vCPU runs on its own thread.  Each
 * vCPU's counters have one writer (its thread); the window state, the clock
 * mark counter and the window totals are shared and change only on the rare
 * stores to the reserved area, under one lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

#include "args.h"
#include "counts.h"
#include "guest_mode.h"
#include "vmtrace/mem_tracer.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define PREFIX "vmtrace-mem-qemu: "

/* One vCPU's state, on its own cache line: written only by its thread, read
 * (relaxed) by the thread that closes a window and at exit. */
struct vcpu_state {
    _Atomic uint64_t seen, marks, controls, outside_window, filtered, sampled_out, lost, io, recorded;
    _Atomic uint64_t vmruns, guest_exits, missed_exits;
    uint64_t sample_left; /* eligible accesses until the next one recorded (sample=N) */
    bool in_guest;        /* between a VMRUN and the instruction after it */
} __attribute__((aligned(64)));

static struct plugin_args args;
static FILE* stats_file;
static struct vcpu_state* vcpus;
static unsigned n_vcpus;

/* Shared state, changed under state_lock; window_open is read without it. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool window_open;
static uint32_t window_number; /* of the open window, or the next one */
static uint64_t windows_opened;
static uint64_t opens_when_open, closes_when_closed, mark_resets;
static uint64_t last_mark = UINT64_MAX; /* unwrapped count of the last mark; "-1" before the first */
static uint64_t recorded_at_open, lost_at_open;
static uint64_t lost_reported; /* lost records already emitted as vmtrace_mem_lost */
static _Atomic uint64_t vmrun_sites_dropped;

/* Single-writer increment: a plain load and store, no locked instruction. */
static inline void bump(_Atomic uint64_t* c) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

static uint64_t sum(size_t offset) {
    uint64_t total = 0;
    for (unsigned i = 0; i < n_vcpus; i++)
        total += atomic_load_explicit((_Atomic uint64_t*)((char*)&vcpus[i] + offset), memory_order_relaxed);
    return total;
}
#define SUM(field) sum(offsetof(struct vcpu_state, field))

/* Emits vmtrace_mem_lost for the records lost since the last one.  Caller
 * holds state_lock. */
static void report_lost_locked(void) {
    uint64_t lost = SUM(lost);
    if (lost > lost_reported) {
        vmtrace_mem_lost(lost - lost_reported);
        lost_reported = lost;
    }
}

static void open_window(void) {
    pthread_mutex_lock(&state_lock);
    if (atomic_load_explicit(&window_open, memory_order_relaxed)) {
        opens_when_open++;
    } else {
        recorded_at_open = SUM(recorded);
        lost_at_open = SUM(lost);
        windows_opened++;
        vmtrace_mem_window_open(window_number);
        atomic_store_explicit(&window_open, true, memory_order_release);
    }
    pthread_mutex_unlock(&state_lock);
}

/* Caller holds state_lock. */
static void close_window_locked(void) {
    if (!atomic_load_explicit(&window_open, memory_order_relaxed)) {
        closes_when_closed++;
        return;
    }
    atomic_store_explicit(&window_open, false, memory_order_release);
    /* Other vCPUs may still be finishing an access of this window: their
     * records land in the trace before this event or just after it. */
    vmtrace_mem_window_close(window_number, SUM(recorded) - recorded_at_open, SUM(lost) - lost_at_open);
    report_lost_locked();
    window_number++;
}

static void close_window(void) {
    pthread_mutex_lock(&state_lock);
    close_window_locked();
    pthread_mutex_unlock(&state_lock);
}

/* A store to the marks page: the host wrote one byte at the mark counter
 * modulo 4096.  The next mark after `last` is last + 1 + ((off - (last + 1))
 * mod 4096): exact as long as the plugin sees every mark, which it does (it
 * is called for every store). */
static void mark(unsigned vcpu, uint64_t offset) {
    pthread_mutex_lock(&state_lock);
    uint64_t next = last_mark + 1; /* 0 before the first mark */
    uint64_t cnt = next + ((offset - next) & (VMTRACE_RESERVED_PAGE - 1));
    last_mark = cnt;
    /* The timestamp is taken here, inside the store's callback. */
    vmtrace_mem_sync((uint32_t)cnt, args.sync_base, vcpu);
    pthread_mutex_unlock(&state_lock);
}

/* The host's mark counter restarts at 0 (its module stores this when it
 * loads): the next mark's cnt is its offset again. */
static void reset_marks(void) {
    pthread_mutex_lock(&state_lock);
    last_mark = UINT64_MAX;
    mark_resets++;
    pthread_mutex_unlock(&state_lock);
}

/* The udata of the VMRUN instruction's memory callback: QEMU reports the
 * instruction's own accesses (it reads the guest state from the VMCB and saves
 * the host's in the host save area) through it, after the exec callback has
 * set the guest flag; they are the host's. */
static char vmrun_insn;

static void on_memory_access(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void* udata) {
    struct vcpu_state* st = &vcpus[vcpu_index];
    bump(&st->seen);
    bool store = qemu_plugin_mem_is_store(info);

    /* Loads outside a window cost only this test. */
    if (!store && !args.mode_all && !atomic_load_explicit(&window_open, memory_order_relaxed)) {
        bump(&st->outside_window);
        return;
    }

    struct qemu_plugin_hwaddr* hw = NULL;
    bool looked_up = false;
    uint64_t phys = 0;
    if (store && args.has_sync && qemu_plugin_mem_size_shift(info) == 0) {
        /* Any one-byte store may be a clock mark or a window control (the
         * host writes them one byte each): its physical address decides.
         * Wider stores skip this lookup, the costliest step of a closed
         * window. */
        hw = qemu_plugin_get_hwaddr(info, vaddr);
        looked_up = true;
        if (hw != NULL && !qemu_plugin_hwaddr_is_io(hw)) {
            phys = qemu_plugin_hwaddr_phys_addr(hw);
            uint64_t off = phys - args.sync_base;
            if (phys >= args.sync_base && off < VMTRACE_RESERVED_SIZE) {
                if (off < VMTRACE_RESERVED_PAGE) {
                    bump(&st->marks);
                    mark(vcpu_index, off);
                } else {
                    bump(&st->controls);
                    if (off == VMTRACE_RESERVED_PAGE)
                        open_window();
                    else if (off == VMTRACE_RESERVED_PAGE + 1)
                        close_window();
                    else if (off == VMTRACE_RESERVED_PAGE + 2)
                        reset_marks();
                }
                return;
            }
        }
    }

    if (!args.mode_all && !atomic_load_explicit(&window_open, memory_order_relaxed)) {
        bump(&st->outside_window);
        return;
    }
    if (args.guest_only && (!st->in_guest || udata == &vmrun_insn)) {
        bump(&st->filtered);
        return;
    }
    /* Deterministic per vCPU: the first eligible access of every N. */
    if (st->sample_left > 1) {
        st->sample_left--;
        bump(&st->sampled_out);
        return;
    }
    st->sample_left = args.sample; /* a countdown: no division per access */
    if (!vmtrace_mem_access_enabled()) {
        /* No session: skip the address lookup as well. */
        bump(&st->lost);
        return;
    }
    if (!looked_up)
        hw = qemu_plugin_get_hwaddr(info, vaddr);
    if (hw == NULL || qemu_plugin_hwaddr_is_io(hw)) {
        bump(&st->io);
        return;
    }
    if (!looked_up || phys == 0)
        phys = qemu_plugin_hwaddr_phys_addr(hw);
    vmtrace_mem_access(vcpu_index, phys, (uint8_t)(1u << qemu_plugin_mem_size_shift(info)),
                       store ? VMTRACE_MEM_STORE : VMTRACE_MEM_LOAD, vaddr);
    bump(&st->recorded);
}

static void on_vmrun(unsigned int vcpu_index, void* udata) {
    (void)udata;
    struct vcpu_state* st = &vcpus[vcpu_index];
    /* Still in the guest: the host came back without passing the instruction
     * after a VMRUN that has a callback (translated before its VMRUN was). */
    if (st->in_guest)
        bump(&st->missed_exits);
    st->in_guest = true;
    bump(&st->vmruns);
}

static void on_after_vmrun(unsigned int vcpu_index, void* udata) {
    (void)udata;
    struct vcpu_state* st = &vcpus[vcpu_index];
    if (st->in_guest) {
        st->in_guest = false;
        bump(&st->guest_exits);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, i);
        void* udata = NULL;
        if (args.guest_only) {
            uint64_t va = qemu_plugin_insn_vaddr(insn);
            /* Before the VMRUN test: the instruction after one VMRUN may be
             * another VMRUN. */
            if (is_vmrun_return(va))
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_after_vmrun, QEMU_PLUGIN_CB_NO_REGS, NULL);
            if (is_vmrun(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn))) {
                udata = &vmrun_insn;
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_vmrun, QEMU_PLUGIN_CB_NO_REGS, NULL);
                if (!add_vmrun_return(va + VMRUN_SIZE))
                    atomic_fetch_add_explicit(&vmrun_sites_dropped, 1, memory_order_relaxed);
            }
        }
        qemu_plugin_register_vcpu_mem_cb(insn, on_memory_access, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, udata);
    }
}

static void collect(struct plugin_counts* c) {
    memset(c, 0, sizeof *c);
    c->seen = SUM(seen);
    c->marks = SUM(marks);
    c->controls = SUM(controls);
    c->outside_window = SUM(outside_window);
    c->filtered = SUM(filtered);
    c->sampled_out = SUM(sampled_out);
    c->lost = SUM(lost);
    c->io = SUM(io);
    c->recorded = SUM(recorded);
    c->vmruns = SUM(vmruns);
    c->guest_exits = SUM(guest_exits);
    c->missed_exits = SUM(missed_exits);
    c->windows = windows_opened;
    c->opens_when_open = opens_when_open;
    c->closes_when_closed = closes_when_closed;
    c->mark_resets = mark_resets;
    c->vmrun_sites_dropped = atomic_load(&vmrun_sites_dropped);
}

static void on_qemu_exit(qemu_plugin_id_t id, void* udata) {
    (void)id;
    (void)udata;
    pthread_mutex_lock(&state_lock);
    bool was_open = atomic_load(&window_open);
    if (was_open)
        close_window_locked(); /* the trace gets the window's bounds and counts */
    report_lost_locked();
    struct plugin_counts c;
    collect(&c);
    c.window_open_at_exit = was_open;
    pthread_mutex_unlock(&state_lock);

    char line[512];
    format_counts_line(&c, line, sizeof line - 1);
    strcat(line, "\n");
    qemu_plugin_outs(line);

    /* Warnings go to stderr: qemu_plugin_outs is only shown with -d plugin. */
    if (c.lost > 0 && c.recorded == 0)
        fprintf(stderr,
                PREFIX
                "nothing was recorded: no lttng session enabled vmtrace_mem:vmtrace_mem_access "
                "(%" PRIu64 " accesses to record were lost)\n",
                c.lost);
    else if (c.lost > 0)
        fprintf(stderr, PREFIX "%" PRIu64 " accesses to record were lost (vmtrace_mem_access was disabled)\n", c.lost);
    if (args.has_sync && c.marks == 0 && c.controls == 0)
        fprintf(stderr,
                PREFIX "no store reached the reserved area at 0x%" PRIx64
                       ": is it reserved in the traced kernel (memmap=8K$0x%" PRIx64 ") and inside its RAM?\n",
                args.sync_base, args.sync_base);
    if (!args.mode_all && c.windows == 0)
        fprintf(stderr, PREFIX "no window was opened (a store to 0x%" PRIx64 " opens one): nothing was recorded\n",
                args.sync_base + VMTRACE_RESERVED_PAGE);
    if (was_open)
        fprintf(stderr, PREFIX "window %" PRIu32 " was still open at exit: closed it there\n", window_number - 1);
    if (c.missed_exits > 0)
        fprintf(stderr,
                PREFIX "%" PRIu64
                       " returns from a nested guest were not seen (a VMRUN ran while the flag was set): "
                       "guest-only may have recorded host accesses as the guest's\n",
                c.missed_exits);
    if (c.vmrun_sites_dropped > 0)
        fprintf(stderr, PREFIX "%" PRIu64 " VMRUN sites past the first 64 were not tracked: guest-only missed them\n",
                c.vmrun_sites_dropped);

    if (stats_file != NULL) {
        if (!write_counts_json(stats_file, &c, &args))
            fprintf(stderr, PREFIX "stats=%s: write failed\n", args.stats);
        fclose(stats_file);
        stats_file = NULL;
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc, char** argv) {
    char err[256];
    if (!parse_plugin_args(argc, argv, &args, err, sizeof err)) {
        fprintf(stderr, PREFIX "%s\n", err);
        return 1;
    }
    if (!info->system_emulation) {
        fprintf(stderr, PREFIX "needs full-system emulation (qemu-system-*): physical addresses are its output\n");
        return 1;
    }
    if (args.stats != NULL) {
        /* Opened now so an unwritable path stops QEMU before the run. */
        stats_file = fopen(args.stats, "w");
        if (stats_file == NULL) {
            fprintf(stderr, PREFIX "bad argument stats=%s: cannot create it: %s\n", args.stats, strerror(errno));
            return 1;
        }
    }
    n_vcpus = info->system.max_vcpus > 0 ? (unsigned)info->system.max_vcpus : 1;
    vcpus = aligned_alloc(64, sizeof(struct vcpu_state) * n_vcpus);
    if (vcpus == NULL) {
        fprintf(stderr, PREFIX "out of memory\n");
        return 1;
    }
    memset(vcpus, 0, sizeof(struct vcpu_state) * n_vcpus);

    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
