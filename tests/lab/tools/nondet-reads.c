// SPDX-License-Identifier: GPL-2.0-only
/*
 * Runs in l2a: performs non-deterministic reads that KVM or QEMU emulate,
 * on vCPU 0, and writes down every value it got, in order, so that the lab
 * can compare them with vmtrace's replay log (nondet.jsonl):
 *   CMOS/RTC registers (ports 0x70/0x71), the serial line status (0x3fd),
 *   the HPET main counter (MMIO, through /dev/hpet), MSRs through
 *   /dev/cpu/0/msr; then RDTSC (and RDRAND/RDPID when the CPU offers them),
 *   which the hypervisor may or may not intercept.
 * Port 0xe9 (no device behind it) carries a begin and an end marker, so the
 * lab finds the window in the host's log without any clock. Ports are
 * accessed through /dev/port (the kernel's inb/outb on this vCPU): the
 * lab's nested emulator raised #GP on user-mode port I/O that ioperm()
 * had allowed.
 *
 * Output lines: "pio-in PORT VALUE", "mmio-read GPA VALUE",
 * "rdmsr INDEX VALUE", "rdmsr-fault INDEX", "rdtsc COUNT", "rdrand ...",
 * "hpet-base GPA", all numbers in hex except COUNT.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MARKER_PORT 0xe9
#define MARK_BEGIN 0x42
#define MARK_END 0x45
#define ROUNDS 40
#define HPET_COUNTER 0xf0

static const uint32_t msrs[] = {
	0x10,	    /* IA32_TIME_STAMP_COUNTER: KVM computes it, new each read */
	0x1b,	    /* IA32_APIC_BASE */
	0x35,	    /* MSR_CORE_THREAD_COUNT: QEMU's MSR filter sends it to user space */
	0xc0010015, /* AMD HWCR */
};

static FILE *out;
static int port_fd;

static void die(const char *what)
{
	fprintf(stderr, "nondet-reads: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The HPET's guest-physical base, from /proc/iomem ("fed00000-fed003ff : HPET 0"). */
static unsigned long hpet_base(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	unsigned long lo = 0;

	if (!f)
		die("/proc/iomem");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "HPET") && sscanf(line, " %lx-", &lo) == 1)
			break;
	fclose(f);
	return lo;
}

__attribute__((target("rdrnd"))) static void rdrand_100(void)
{
	unsigned long long x;
	int i;

	for (i = 0; i < 100; i++)
		__builtin_ia32_rdrand64_step(&x);
}

static void outp(uint8_t value, uint16_t port)
{
	if (pwrite(port_fd, &value, 1, port) != 1)
		die("write /dev/port");
}

static uint8_t inp(uint16_t port)
{
	uint8_t value;

	if (pread(port_fd, &value, 1, port) != 1)
		die("read /dev/port");
	return value;
}

static uint8_t cmos(uint8_t reg)
{
	outp(reg, 0x70);
	return inp(0x71);
}

int main(int argc, char **argv)
{
	volatile uint32_t *hpet = NULL;
	unsigned long base;
	cpu_set_t cpu0;
	int msr_fd, hpet_fd, r, i;
	unsigned int a, b, c, d;
	uint64_t v;

	if (argc != 2) {
		fprintf(stderr, "usage: nondet-reads OUTPUT\n");
		return 2;
	}
	out = fopen(argv[1], "w");
	if (!out)
		die(argv[1]);
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	if (sched_setaffinity(0, sizeof(cpu0), &cpu0))
		die("sched_setaffinity");
	port_fd = open("/dev/port", O_RDWR);
	if (port_fd < 0)
		die("/dev/port");
	msr_fd = open("/dev/cpu/0/msr", O_RDONLY);
	if (msr_fd < 0)
		die("/dev/cpu/0/msr");
	base = hpet_base();
	hpet_fd = open("/dev/hpet", O_RDONLY);
	if (hpet_fd >= 0 && base) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, hpet_fd, 0);

		if (p != MAP_FAILED)
			hpet = p;
	}
	if (hpet)
		fprintf(out, "hpet-base %#lx\n", base);
	else
		fprintf(out, "hpet unavailable (base %#lx, /dev/hpet %s)\n", base,
			hpet_fd < 0 ? strerror(errno) : "not mappable");

	outp(MARK_BEGIN, MARKER_PORT);
	for (r = 0; r < ROUNDS; r++) {
		fprintf(out, "pio-in 0x71 %#x\n", cmos(0x00));	/* seconds */
		fprintf(out, "pio-in 0x71 %#x\n", cmos(0x0a));	/* status A: update in progress */
		fprintf(out, "pio-in 0x3fd %#x\n", inp(0x3fd));	/* line status */
		if (hpet)
			fprintf(out, "mmio-read %#lx %#x\n", base + HPET_COUNTER,
				hpet[HPET_COUNTER / 4]);
		for (i = 0; i < (int)(sizeof(msrs) / sizeof(msrs[0])); i++) {
			if (pread(msr_fd, &v, sizeof(v), msrs[i]) == sizeof(v))
				fprintf(out, "rdmsr %#x %#llx\n", msrs[i], (unsigned long long)v);
			else
				fprintf(out, "rdmsr-fault %#x\n", msrs[i]);
		}
	}
	outp(MARK_END, MARKER_PORT);

	/* Instructions whose result the hypervisor may choose (if it intercepts). */
	for (i = 0; i < 1000; i++)
		v = __builtin_ia32_rdtsc();
	fprintf(out, "rdtsc 1000\n");
	__cpuid(1, a, b, c, d);
	if (c & (1u << 30)) {
		rdrand_100();
		fprintf(out, "rdrand 100\n");
	} else {
		fprintf(out, "rdrand absent (CPUID.1:ECX.RDRAND = 0)\n");
	}
	if (fclose(out))
		die(argv[1]);
	return 0;
}
