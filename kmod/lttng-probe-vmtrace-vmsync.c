// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmtrace vmsync probe: the one owner of the LTTng provider "vmsync". It
 * defines the four handshake tracepoints and exports them to the host and
 * guest modules, so that a kernel that is both a KVM host and a KVM guest
 * (the L1 of nested virtualization) loads both modules side by side.
 */
#include <linux/module.h>

#include <lttng/events.h>
#include <lttng/tracer.h>
#include <wrapper/tracepoint.h>
#include <wrapper/vmalloc.h>

#include <vmtrace/vmsync_tracepoints.h>

/* The LTTng stage below generates this module's init and exit. */
#define LTTNG_PACKAGE_BUILD
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_PATH vmtrace_events
#define TRACE_INCLUDE_FILE vmsync
#include <vmtrace_events/vmsync.h>

LTTNG_DEFINE_TRACE(vmsync_gh_guest,
	PARAMS(u32 cnt, u64 vm_uid),
	PARAMS(cnt, vm_uid));
LTTNG_DEFINE_TRACE(vmsync_hg_guest,
	PARAMS(u32 cnt, u64 vm_uid),
	PARAMS(cnt, vm_uid));
LTTNG_DEFINE_TRACE(vmsync_gh_host,
	PARAMS(u32 cnt, u64 vm_uid, u32 vcpu_id),
	PARAMS(cnt, vm_uid, vcpu_id));
LTTNG_DEFINE_TRACE(vmsync_hg_host,
	PARAMS(u32 cnt, u64 vm_uid, u32 vcpu_id),
	PARAMS(cnt, vm_uid, vcpu_id));
EXPORT_TRACEPOINT_SYMBOL_GPL(vmsync_gh_guest);
EXPORT_TRACEPOINT_SYMBOL_GPL(vmsync_hg_guest);
EXPORT_TRACEPOINT_SYMBOL_GPL(vmsync_gh_host);
EXPORT_TRACEPOINT_SYMBOL_GPL(vmsync_hg_host);

MODULE_LICENSE("GPL and additional rights");
MODULE_DESCRIPTION("vmtrace LTTng vmsync events, fired by the vmtrace host and guest probes");
/* The events it offers, for `vmtrace modules status`. */
MODULE_INFO(vmtrace_event, "vmsync_gh_guest");
MODULE_INFO(vmtrace_event, "vmsync_hg_guest");
MODULE_INFO(vmtrace_event, "vmsync_gh_host");
MODULE_INFO(vmtrace_event, "vmsync_hg_host");
