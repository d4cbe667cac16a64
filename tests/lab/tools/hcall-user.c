// SPDX-License-Identifier: GPL-2.0-only
/*
 * Issues the vmsync hypercall from user space (CPL 3). KVM must refuse it
 * (-KVM_EPERM, which is -1) and the host module must not record it.
 *   hcall-user [nr [iterations]]
 * With iterations > 1 it is an exit storm and prints the mean round trip
 * of one refused hypercall (one VMMCALL exit and its entry) in ns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long hcall(unsigned long nr)
{
	unsigned long cnt = 0xdead, uid = 0xbad0bad0UL;
	long ret;

	/* AMD's VMMCALL: the lab's L1 is an SVM host. */
	asm volatile("vmmcall" : "=a"(ret) : "a"(nr), "b"(cnt), "c"(uid) : "memory");
	return ret;
}

int main(int argc, char **argv)
{
	unsigned long nr = argc > 1 ? strtoul(argv[1], NULL, 0) : 0x564d5359UL;
	long n = argc > 2 ? strtol(argv[2], NULL, 0) : 1;
	struct timespec t0, t1;
	long ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		ret = hcall(nr);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n == 1)
		printf("hcall-user: nr=%#lx returned %ld\n", nr, ret);
	else
		printf("hcall-user: nr=%#lx returned %ld, %ld calls, %.0f ns per call\n", nr, ret, n,
		       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
	return 0;
}
