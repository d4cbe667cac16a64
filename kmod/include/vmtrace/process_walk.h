/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The statedumps' walk over the user processes (thread-group leaders, no
 * kernel threads), shared by the host and guest modules: in process
 * context, one process at a time, each held by a reference while the
 * callback runs, with a reschedule point between processes.
 */
#ifndef _VMTRACE_PROCESS_WALK_H
#define _VMTRACE_PROCESS_WALK_H

#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/task.h>

struct vt_process_walk {
	void (*fn)(void *arg, struct task_struct *task);
	void *arg;
};

static inline void vt_walk_user_processes(const struct vt_process_walk *walk)
{
	struct task_struct *task;
	struct pid *pid;
	int nr = 1;

	for (;;) {
		rcu_read_lock();
		pid = find_ge_pid(nr, &init_pid_ns);
		if (!pid) {
			rcu_read_unlock();
			break;
		}
		nr = pid_nr(pid) + 1;
		task = pid_task(pid, PIDTYPE_TGID);
		if (task && !(task->flags & PF_KTHREAD))
			get_task_struct(task);
		else
			task = NULL;
		rcu_read_unlock();
		if (task) {
			walk->fn(walk->arg, task);
			put_task_struct(task);
		}
		cond_resched();
	}
}

#endif /* _VMTRACE_PROCESS_WALK_H */
