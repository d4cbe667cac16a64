// SPDX-License-Identifier: GPL-2.0-only
/*
 * L2 workload: writes every page of a known buffer, moves itself across the
 * vCPUs (migrations), forks a child that writes the buffer too (COW faults
 * in another process), then unmaps the buffer. Prints what the lab's checks
 * look for: pid, buffer address and size.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 64

static void touch(volatile char *buf, char v)
{
	for (int i = 0; i < PAGES; i++)
		buf[i * 4096L] = v;
}

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "/dev/stdout";
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	char *buf = mmap(NULL, PAGES * 4096L, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FILE *f;
	pid_t child;

	if (buf == MAP_FAILED)
		return 1;
	touch(buf, 1);
	f = fopen(out, "w");
	if (!f)
		return 1;
	fprintf(f, "pid=%d buf=0x%lx pages=%d\n", getpid(), (unsigned long)buf, PAGES);
	fclose(f);
	for (int round = 0; round < 4; round++) {
		for (long c = 0; c < ncpu; c++) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(c, &set);
			sched_setaffinity(0, sizeof(set), &set);
			touch(buf, round);
			usleep(20000);
		}
	}
	child = fork();
	if (child == 0) {
		touch(buf, 7);
		_exit(0);
	}
	waitpid(child, NULL, 0);
	munmap(buf, PAGES * 4096L);
	return 0;
}
