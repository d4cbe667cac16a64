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
 *   window=0    send the open and close stores to a scratch page instead: no window
 *   close=0     send only the close store to the scratch page: the window stays open
 *   twice=1     open twice and close twice (the seconds are no-ops for the plugin)
 */
#include <stdint.h>

void window_run(uint32_t open, uint32_t close, uint32_t buf, uint32_t bytes, uint32_t stride, uint32_t rounds,
                uint32_t open0, uint32_t close1);

#define SCRATCH 0x300000u

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
    for (; k < marks; k++)
        mark(base, k);
    /* The buffer written once before the window: none of it may be recorded. */
    for (uint32_t a = buf; a < buf + pages * 4096u; a += 4096u)
        *(volatile uint32_t*)a = 0;
    if (rounds > 0)
        window_run(ctl, close, buf, pages * 4096u, stride, rounds, twice ? ctl : SCRATCH, twice ? close : SCRATCH + 2);
    for (uint32_t i = 0; i < after; i++, k++)
        mark(base, k);
    reset_machine();
}
