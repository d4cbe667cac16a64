/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Module parameters that refuse a number outside their range
 * (vmtrace/params.h) at load and when written, with a message in dmesg
 * that names the parameter, the value and the range.
 */
#ifndef _VMTRACE_PARAM_RANGE_H
#define _VMTRACE_PARAM_RANGE_H

#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>

#include "params.h"

static inline int vmtrace_param_set_range(const char *val,
					  const struct kernel_param *kp,
					  unsigned long min, unsigned long max)
{
	unsigned long v;

	if (!kstrtoul(val, 0, &v) && v >= min && v <= max) {
		*(unsigned long *)kp->arg = v;
		return 0;
	}
	/* The same range text as `vmtrace modules load` prints. */
	if (max > 0xffff)
		pr_err("%s=%s refused: must be %#lx..%#lx\n", kp->name, val,
		       min, max);
	else
		pr_err("%s=%s refused: must be %lu..%lu\n", kp->name, val,
		       min, max);
	return -EINVAL;
}

/*
 * Declares parameter `name` of the unsigned long variable of that name
 * (defined before, with its default), read-only in sysfs, accepting
 * [min, max]: the module's row of params.h.
 */
#define VMTRACE_RANGE_PARAM(name, min, max, desc)			\
	static int name##_set(const char *val,				\
			      const struct kernel_param *kp)		\
	{								\
		return vmtrace_param_set_range(val, kp, min, max);	\
	}								\
	static const struct kernel_param_ops name##_ops = {		\
		.set = name##_set,					\
		.get = param_get_ulong,					\
	};								\
	module_param_cb(name, &name##_ops, &name, 0444);		\
	MODULE_PARM_DESC(name, desc)

#endif /* _VMTRACE_PARAM_RANGE_H */
