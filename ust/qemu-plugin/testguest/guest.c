/*
 * The plugin's test guest: a bare-metal program (32-bit protected mode, no
 * paging: virtual = physical) whose memory accesses are known exactly.  It
 * reads KEY=VALUE words from the multiboot command line (-append), makes
 * clock marks, runs one recording window over a buffer and resets the
 * machine (QEMU with -no-reboot then exits with status 0).
 *
 *   base=ADDR   reserved area: marks at base + (k % 4096), controls at base + 4096
 *   buf=ADDR    buffer (default 0x400000), pages=N (default 16), stride=B (default 64)
 *   rounds=N    passes over the buffer inside the window (default 1)
 *   marks=N     marks before the window, after=N marks after it (cnt continues)
 *   reset=K     before the marks after the window: the mark counter restart
 *               control, then those marks count from K - 1
 *   spin=N      each mark before the window after N empty loops, between two
 *               TSC reads printed to the debug port 0xe9 (mark K, t0 hi/lo,
 *               t1 hi/lo, one hexadecimal line each)
 *   wide=1      a 4-byte store to the marks page before the window (not a mark)
 *   window=0    send the open and close stores to a scratch page instead: no window
 *   close=0     send only the close store to the scratch page: the window stays open
 *   twice=1     open twice and close twice (the seconds are no-ops for the plugin)
 *   svm=N       instead of the buffer window: a window around N entries into a
 *               nested SVM guest (needs -cpu ...,+svm) that stores to 16 KiB at
 *               0x500000; the host stores to 0x600000 around each VMRUN; the
 *               last #VMEXIT code goes to the debug port 0xe9 as "exit=HEX"
 *   early=1     with svm=N: the host code after VMRUN runs once before the first VMRUN
 */
#include <stdint.h>

void window_run(uint32_t open, uint32_t close, uint32_t buf, uint32_t bytes, uint32_t stride, uint32_t rounds,
                uint32_t open0, uint32_t close1);

void svm_run(uint32_t vmcb, uint32_t open, uint32_t close, uint32_t rounds, uint32_t host_buf, uint32_t early);
void guest_entry(void);

#define SCRATCH 0x300000u
#define VMCB 0x210000u
#define HSAVE 0x211000u
#define HOST_BUF 0x600000u

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\0';
}

/* Value of KEY= in the command line (decimal or 0x hex), else def. */
static uint32_t param(const char* cmdline, const char* key, uint32_t def) {
    for (const char* p = cmdline; p && *p; p++) {
        if (p != cmdline && p[-1] != ' ')
            continue;
        const char *k = key, *q = p;
        while (*k && *q == *k) {
            k++;
            q++;
        }
        if (*k || *q != '=')
            continue;
        q++;
        uint32_t v = 0, base = 10;
        if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
            base = 16;
            q += 2;
        }
        for (; !is_space(*q); q++) {
            uint32_t d;
            if (*q >= '0' && *q <= '9')
                d = (uint32_t)(*q - '0');
            else if (*q >= 'a' && *q <= 'f')
                d = (uint32_t)(*q - 'a' + 10);
            else if (*q >= 'A' && *q <= 'F')
                d = (uint32_t)(*q - 'A' + 10);
            else
                break;
            v = v * base + d;
        }
        return v;
    }
    return def;
}

static void mark(uint32_t base, uint32_t k) {
    *(volatile uint8_t*)(base + (k % 4096u)) = 1;
}

static void wrmsr(uint32_t msr, uint64_t v) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static void put(uint32_t addr, uint64_t v, unsigned size) {
    for (unsigned i = 0; i < size; i++)
        *(volatile uint8_t*)(addr + i) = (uint8_t)(v >> (8 * i));
}

/* A segment of the VMCB's save area: selector, attributes, limit, base. */
static void segment(uint32_t at, uint16_t sel, uint16_t attrib) {
    put(at, sel, 2);
    put(at + 2, attrib, 2);
    put(at + 4, 0xffffffffu, 4);
    put(at + 8, 0, 8);
}

static void debug_out(char c) {
    __asm__ volatile("outb %0, $0xe9" : : "a"(c));
}

static void debug_hex(const char* label, uint32_t v) {
    for (; *label; label++)
        debug_out(*label);
    for (int shift = 28; shift >= 0; shift -= 4)
        debug_out("0123456789abcdef"[(v >> shift) & 15]);
    debug_out('\n');
}

/* A nested guest in 32-bit protected mode without paging or nested paging:
 * its physical addresses are the machine's. */
static void svm_window(uint32_t open, uint32_t close, uint32_t rounds, uint32_t early) {
    const uint32_t EFER = 0xc0000080u, VM_HSAVE_PA = 0xc0010117u, SVME = 1u << 12;
    wrmsr(EFER, rdmsr(EFER) | SVME);
    wrmsr(VM_HSAVE_PA, HSAVE);
    for (uint32_t a = VMCB; a < VMCB + 4096; a += 4)
        *(volatile uint32_t*)a = 0;
    /* Intercepts: SHUTDOWN (bit 31), VMRUN (32, required), VMMCALL (33). */
    put(VMCB + 0x00c, (1ull << 31) | (1ull << 32) | (1ull << 33), 8);
    put(VMCB + 0x058, 1, 4);             /* ASID */
    segment(VMCB + 0x400, 0x10, 0x0c93); /* ES */
    segment(VMCB + 0x410, 0x08, 0x0c9b); /* CS */
    segment(VMCB + 0x420, 0x10, 0x0c93); /* SS */
    segment(VMCB + 0x430, 0x10, 0x0c93); /* DS */
    uint32_t cr0, cr4;
    __asm__ volatile("mov %%cr0, %0; mov %%cr4, %1" : "=r"(cr0), "=r"(cr4));
    put(VMCB + 0x4d0, SVME, 8);        /* EFER */
    put(VMCB + 0x548, cr4, 8);         /* CR4 */
    put(VMCB + 0x558, cr0, 8);         /* CR0 */
    put(VMCB + 0x560, 0x400, 8);       /* DR7 */
    put(VMCB + 0x568, 0xffff0ff0u, 8); /* DR6 */
    put(VMCB + 0x570, 2, 8);           /* RFLAGS */
    svm_run(VMCB, open, close, rounds, HOST_BUF, early);
    debug_hex("exit=", *(volatile uint32_t*)(VMCB + 0x070));
}

static uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static void reset_machine(void) {
    /* An empty IDT: the breakpoint faults, the fault double-faults, the
     * machine triple-faults and resets. */
    static const struct __attribute__((packed)) {
        uint16_t limit;
        uint32_t base;
    } empty_idt = {0, 0};
    __asm__ volatile("lidt %0; int3" : : "m"(empty_idt));
    for (;;)
        __asm__ volatile("hlt");
}

void guest_main(uint32_t magic, const uint32_t* mbi) {
    const char* cmdline = "";
    if (magic == 0x2BADB002u && (mbi[0] & 4u))
        cmdline = (const char*)mbi[4];
    uint32_t base = param(cmdline, "base", 0x7000000u);
    uint32_t buf = param(cmdline, "buf", 0x400000u);
    uint32_t pages = param(cmdline, "pages", 16);
    uint32_t stride = param(cmdline, "stride", 64);
    uint32_t rounds = param(cmdline, "rounds", 1);
    uint32_t marks = param(cmdline, "marks", 3);
    uint32_t after = param(cmdline, "after", 2);
    uint32_t ctl = param(cmdline, "window", 1) ? base + 4096u : SCRATCH;
    uint32_t close = param(cmdline, "close", 1) ? ctl + 1 : SCRATCH + 1;
    uint32_t twice = param(cmdline, "twice", 0);

    uint32_t k = 0;
    uint32_t spin = param(cmdline, "spin", 0);
    for (; k < marks; k++) {
        if (!spin) {
            mark(base, k);
            continue;
        }
        /* Timed marks: a pause, then the mark between two TSC reads (under
         * TCG the guest's TSC counts the host's ticks), sent to port 0xe9. */
        uint32_t n = spin;
        __asm__ volatile("1: dec %0; jnz 1b" : "+r"(n)); /* registers only: no access */
        uint64_t t0 = rdtsc();
        mark(base, k);
        uint64_t t1 = rdtsc();
        debug_hex("mark ", k);
        debug_hex("t0 ", (uint32_t)(t0 >> 32));
        debug_hex("t0 ", (uint32_t)t0);
        debug_hex("t1 ", (uint32_t)(t1 >> 32));
        debug_hex("t1 ", (uint32_t)t1);
    }
    /* A 4-byte store to the marks page: only one-byte stores are marks. */
    if (param(cmdline, "wide", 0))
        *(volatile uint32_t*)(base + 16u) = 0;
    /* The buffer written once before the window: none of it may be recorded. */
    for (uint32_t a = buf; a < buf + pages * 4096u; a += 4096u)
        *(volatile uint32_t*)a = 0;
    uint32_t svm = param(cmdline, "svm", 0);
    if (svm > 0)
        svm_window(ctl, close, svm, param(cmdline, "early", 0));
    else if (rounds > 0)
        window_run(ctl, close, buf, pages * 4096u, stride, rounds, twice ? ctl : SCRATCH, twice ? close : SCRATCH + 2);
    if (param(cmdline, "reset", 0)) {
        *(volatile uint8_t*)(base + 4096u + 2u) = 1; /* the mark counter restarts */
        k = param(cmdline, "reset", 0) - 1;
    }
    for (uint32_t i = 0; i < after; i++, k++)
        mark(base, k);
    reset_machine();
}
