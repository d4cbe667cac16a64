/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The range and description of each numeric module parameter: the one
 * place they are written. The modules refuse a value outside its range at
 * load (VMTRACE_RANGE_PARAM, param_range.h) and describe it in modinfo;
 * `vmtrace modules load` includes this file too, refuses the value before
 * loading and prints the same description. Plain C, read by C++ as well.
 */
#ifndef _VMTRACE_PARAMS_H
#define _VMTRACE_PARAMS_H

#include "vmsync.h"

/* lttng-probe-vmtrace-host */
#define VMTRACE_HOST_HC_NR_MIN		VMSYNC_HC_NR_MIN
#define VMTRACE_HOST_HC_NR_MAX		VMSYNC_HC_NR_MAX
#define VMTRACE_HOST_HC_NR_DESC \
	"vmsync hypercall number (same as the guests' module)"

/* lttng-probe-vmtrace-guest */
#define VMTRACE_GUEST_HC_NR_MIN		VMSYNC_HC_NR_MIN
#define VMTRACE_GUEST_HC_NR_MAX		VMSYNC_HC_NR_MAX
#define VMTRACE_GUEST_HC_NR_DESC \
	"vmsync hypercall number (same as the host's module)"
#define VMTRACE_GUEST_PERIOD_MS_MIN	1UL
#define VMTRACE_GUEST_PERIOD_MS_MAX	60000UL
#define VMTRACE_GUEST_PERIOD_MS_DESC \
	"vmsync hypercall period per vCPU, in ms"

/* lttng-probe-vmtrace-memsync */
#define VMTRACE_MEMSYNC_PERIOD_MS_MIN	10UL
#define VMTRACE_MEMSYNC_PERIOD_MS_MAX	10000UL
#define VMTRACE_MEMSYNC_PERIOD_MS_DESC \
	"time between two handshake marks, in ms"

#endif /* _VMTRACE_PARAMS_H */
