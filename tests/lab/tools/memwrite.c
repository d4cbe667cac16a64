// SPDX-License-Identifier: GPL-2.0-only
/*
 * L2 program run inside the memory tracer's window: faults in a known
 * anonymous buffer, waits 20 ms (well past the clock-sync bounds, so that
 * the mappings the faults made are no longer "just changed" for the join),
 * then writes every 8 bytes of it (512 stores per page, so that a sampling
 * tracer still sees every page), and prints what the lab's memory checks
 * look for: pid, buffer address and size, and the time per store (the
 * tracer's cost per access, window open against closed).
 *
 * Usage: memwrite OUT [GO-FILE]
 * With GO-FILE, it prints "faulted" on stdout once the buffer is mapped and
 * writes only once GO-FILE exists: the migrated guest maps its buffer
 * before the migration and writes it after, in a window on the new host.
 */
#include <stdio.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGES 64
#define PAGE 4096L

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "/dev/stdout";
	const char *go = argc > 2 ? argv[2] : NULL;
	const long stores = PAGES * PAGE / 8;
	volatile uint64_t *buf = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int64_t t0, t1;
	FILE *f;

	if (buf == MAP_FAILED)
		return 1;
	for (long i = 0; i < stores; i += PAGE / 8)
		buf[i] = 1;
	if (go) {
		printf("faulted\n");
		fflush(stdout);
		while (access(go, F_OK) != 0)
			usleep(10000);
	}
	usleep(20000);
	t0 = now_ns();
	for (long i = 0; i < stores; i++)
		buf[i] = i;
	t1 = now_ns();
	f = fopen(out, "w");
	if (!f)
		return 1;
	fprintf(f, "pid=%d buf=0x%lx pages=%d ns_per_store=%.2f\n", getpid(),
		(unsigned long)buf, PAGES, (double)(t1 - t0) / stores);
	fclose(f);
	return 0;
}
