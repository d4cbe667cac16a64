// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmtrace memsync: the host half of the clock handshake with a
 * whole-machine memory tracer (docs/memory-tracing.md), and the controls of
 * its recording window.
 *
 * The traced kernel reserves two pages at physical address hpa
 * (memmap=8K$hpa). Every period_ms while marks=1, a work item records
 * vmtrace_memsync_begin, stores one byte to page 0 at offset cnt % 4096 and
 * records vmtrace_memsync_end, with interrupts off so that nothing but the
 * store lies between the two clock reads. The tracer sees the store on its
 * own clock; filter.vmtrace.sync pairs the three by (hpa, cnt). Page 1
 * carries the window controls: a store at offset 0 opens the tracer's
 * recording window, at offset 1 closes it, at offset 2 says the mark counter
 * restarts at 0 (this module stores it when it loads).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>
#include <linux/jiffies.h>

#include <lttng/events.h>
#include <lttng/tracer.h>
#include <wrapper/tracepoint.h>
#include <wrapper/vmalloc.h>

#include <vmtrace/memsync_tracepoints.h>
#include <vmtrace/param_range.h>

#define LTTNG_PACKAGE_BUILD
#define TP_MODULE_NOAUTOLOAD
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_PATH vmtrace_events
#define TRACE_INCLUDE_FILE vmtrace_memsync
#include <vmtrace_events/vmtrace_memsync.h>

LTTNG_DEFINE_TRACE(vmtrace_memsync_begin,
	PARAMS(u32 cnt, u64 hpa),
	PARAMS(cnt, hpa));
LTTNG_DEFINE_TRACE(vmtrace_memsync_end,
	PARAMS(u32 cnt, u64 hpa),
	PARAMS(cnt, hpa));

MODULE_LICENSE("GPL and additional rights");
MODULE_DESCRIPTION("vmtrace memory tracer clock handshake and recording window");
MODULE_INFO(vmtrace_event, "vmtrace_memsync_begin");
MODULE_INFO(vmtrace_event, "vmtrace_memsync_end");

#define MS_AREA_SIZE	(2 * PAGE_SIZE)
#define MS_MARK_SLOTS	4096
#define MS_CTL_OPEN	0
#define MS_CTL_CLOSE	1
#define MS_CTL_RESET	2

/* Serialises the parameters that act on the area with load and unload. */
static DEFINE_MUTEX(ms_lock);
static u8 *ms_area;		/* the two reserved pages, mapped; NULL before init */
static u32 ms_cnt;

/* ---- parameters ------------------------------------------------------ */

static unsigned long hpa;

/*
 * A store to RAM the kernel uses would corrupt it: only an area outside
 * System RAM (reserved with memmap=8K$ADDR) is accepted.
 */
static int hpa_set(const char *val, const struct kernel_param *kp)
{
	unsigned long v;

	if (kstrtoul(val, 0, &v) || !v || !PAGE_ALIGNED(v)) {
		pr_err("hpa=%s refused: must be a non-zero, page-aligned physical address\n",
		       val);
		return -EINVAL;
	}
	if (region_intersects(v, MS_AREA_SIZE, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("hpa=%s refused: [%#lx, %#lx) overlaps System RAM; reserve it with memmap=8K$%#lx\n",
		       val, v, v + MS_AREA_SIZE, v);
		return -EINVAL;
	}
	*(unsigned long *)kp->arg = v;
	return 0;
}

static const struct kernel_param_ops hpa_ops = {
	.set = hpa_set,
	.get = param_get_ulong,
};
module_param_cb(hpa, &hpa_ops, &hpa, 0444);
MODULE_PARM_DESC(hpa, "physical address of the two reserved pages (memmap=8K$hpa)");

static unsigned long period_ms = 100;

VMTRACE_RANGE_PARAM(period_ms, VMTRACE_MEMSYNC_PERIOD_MS_MIN,
		    VMTRACE_MEMSYNC_PERIOD_MS_MAX, VMTRACE_MEMSYNC_PERIOD_MS_DESC);

static void ms_mark_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(ms_mark_work, ms_mark_fn);

static bool marks;
static bool window;

/* Stores that the tracer decodes by their address; the value is unused. */
static void ms_store(unsigned int offset)
{
	WRITE_ONCE(ms_area[offset], 1);
}

static void ms_mark_fn(struct work_struct *work)
{
	unsigned long flags;
	u32 cnt = ms_cnt++;

	local_irq_save(flags);
	trace_vmtrace_memsync_begin(cnt, hpa);
	barrier();
	ms_store(cnt % MS_MARK_SLOTS);
	barrier();
	trace_vmtrace_memsync_end(cnt, hpa);
	local_irq_restore(flags);
	schedule_delayed_work(&ms_mark_work, msecs_to_jiffies(period_ms));
}

/* Parses a 0/1 switch; *on is the switch's new state. */
static int ms_switch_parse(const char *name, const char *val, bool *on)
{
	if (kstrtobool(val, on)) {
		pr_err("%s=%s refused: must be 0 or 1\n", name, val);
		return -EINVAL;
	}
	return 0;
}

/*
 * marks=1 starts the handshake, marks=0 stops it. At load the work starts
 * in init, after the area is mapped.
 */
static int marks_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = ms_switch_parse("marks", val, &on);

	if (ret)
		return ret;
	mutex_lock(&ms_lock);
	if (ms_area && on && !marks)
		schedule_delayed_work(&ms_mark_work, 0);
	else if (ms_area && !on && marks)
		cancel_delayed_work_sync(&ms_mark_work);
	marks = on;
	mutex_unlock(&ms_lock);
	return 0;
}

static const struct kernel_param_ops marks_ops = {
	.set = marks_set,
	.get = param_get_bool,
};
module_param_cb(marks, &marks_ops, &marks, 0644);
MODULE_PARM_DESC(marks, "1: a handshake mark every period_ms (default 0)");

/* window=1 opens the tracer's recording window, window=0 closes it. */
static int window_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = ms_switch_parse("window", val, &on);

	if (ret)
		return ret;
	mutex_lock(&ms_lock);
	if (ms_area)
		ms_store(PAGE_SIZE + (on ? MS_CTL_OPEN : MS_CTL_CLOSE));
	window = on;
	mutex_unlock(&ms_lock);
	return 0;
}

static const struct kernel_param_ops window_ops = {
	.set = window_set,
	.get = param_get_bool,
};
module_param_cb(window, &window_ops, &window, 0644);
MODULE_PARM_DESC(window, "1: open the memory tracer's recording window, 0: close it");

/* ---- module init/exit ------------------------------------------------ */

static int __init vmtrace_memsync_init(void)
{
	int ret;

	if (!hpa) {
		pr_err("hpa not set: give the physical address of the reserved pages (memmap=8K$ADDR, hpa=ADDR)\n");
		return -EINVAL;
	}
	ms_area = memremap(hpa, MS_AREA_SIZE, MEMREMAP_WB);
	if (!ms_area) {
		pr_err("hpa=%#lx: cannot map the reserved pages\n", hpa);
		return -ENOMEM;
	}
	ret = __lttng_events_init__vmtrace_memsync();
	if (ret) {
		memunmap(ms_area);
		ms_area = NULL;
		return ret;
	}
	mutex_lock(&ms_lock);
	ms_store(PAGE_SIZE + MS_CTL_RESET);
	if (window)
		ms_store(PAGE_SIZE + MS_CTL_OPEN);
	if (marks)
		schedule_delayed_work(&ms_mark_work, 0);
	mutex_unlock(&ms_lock);
	pr_info("handshake area at %#lx, a mark every %lu ms when marks=1\n",
		hpa, period_ms);
	return 0;
}

static void __exit vmtrace_memsync_exit(void)
{
	mutex_lock(&ms_lock);
	cancel_delayed_work_sync(&ms_mark_work);
	if (window)
		ms_store(PAGE_SIZE + MS_CTL_CLOSE);
	memunmap(ms_area);
	ms_area = NULL;
	mutex_unlock(&ms_lock);
	__lttng_events_exit__vmtrace_memsync();
}

module_init(vmtrace_memsync_init);
module_exit(vmtrace_memsync_exit);
