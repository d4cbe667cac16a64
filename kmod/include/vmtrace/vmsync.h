/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * vmsync hypercall ABI shared by the guest and host modules.
 *
 * The guest issues hypercall VMSYNC_HC_NR with a0 = cnt and a1 = vm_uid.
 * KVM answers -KVM_ENOSYS (no KVM hypercall has this number), which the
 * guest ignores: only the timing of the exit matters.
 */
#ifndef _VMTRACE_VMSYNC_H
#define _VMTRACE_VMSYNC_H

/* "VMSY": far above KVM's own hypercall numbers (1..12 on 6.1). */
#define VMSYNC_HC_NR_DEFAULT	0x564d5359UL
/* Numbers below this are reserved for KVM's hypercalls. */
#define VMSYNC_HC_NR_MIN	0x10000UL
/* kvm_hypercall*() take an unsigned int number. */
#define VMSYNC_HC_NR_MAX	0xffffffffUL

#endif /* _VMTRACE_VMSYNC_H */
