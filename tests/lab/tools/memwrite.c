// SPDX-License-Identifier: GPL-2.0-only
/*
 * L2 program run inside the memory tracer's window: faults in a known
 * anonymous buffer, waits 20 ms (well past the clock-sync bounds, so that
 * the mappings the faults made are no longer "just changed" for the join),
 * then writes every 8 bytes of it (512 stores per page, so that a sampling
 * tracer still sees every page), and prints what the lab's memory checks
 * look for: pid, buffer address and size.
 */
#include <stdio.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 64
#define PAGE 4096L

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "/dev/stdout";
	volatile uint64_t *buf = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FILE *f;

	if (buf == MAP_FAILED)
		return 1;
	for (long i = 0; i < PAGES * PAGE / 8; i += PAGE / 8)
		buf[i] = 1;
	usleep(20000);
	for (long i = 0; i < PAGES * PAGE / 8; i++)
		buf[i] = i;
	f = fopen(out, "w");
	if (!f)
		return 1;
	fprintf(f, "pid=%d buf=0x%lx pages=%d\n", getpid(), (unsigned long)buf, PAGES);
	fclose(f);
	return 0;
}
