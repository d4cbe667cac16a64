// SPDX-License-Identifier: GPL-2.0-only
/*
 * Issues the vmsync hypercall from user space (CPL 3). KVM must refuse it
 * (-KVM_EPERM, which is -1) and the host module must not record it. Prints the
 * value KVM returned.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long nr = argc > 1 ? strtoul(argv[1], NULL, 0) : 0x564d5359UL;
	unsigned long cnt = 0xdead, uid = 0xbad0bad0UL;
	long ret;

	/* AMD's VMMCALL: the lab's L1 is an SVM host. */
	asm volatile("vmmcall" : "=a"(ret) : "a"(nr), "b"(cnt), "c"(uid) : "memory");
	printf("hcall-user: nr=%#lx returned %ld\n", nr, ret);
	return 0;
}
