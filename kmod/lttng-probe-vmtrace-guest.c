// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmtrace guest probes: the guest half of the vmsync handshake (a periodic
 * hypercall on every vCPU, bracketed by vmsync_gh_guest and
 * vmsync_hg_guest) and the GVA->GPA mappings of user processes (as faults
 * install them, and the present ones at each LTTng statedump).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/workqueue.h>
#include <linux/percpu.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/ctype.h>
#include <linux/dmi.h>
#include <linux/random.h>
#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/pgtable.h>
#include <linux/delay.h>
#include <linux/mmap_lock.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/tracepoint.h>
#include <asm/kvm_para.h>

#include <lttng/events.h>
#include <lttng/tracer.h>
#include <wrapper/tracepoint.h>
#include <wrapper/vmalloc.h>

#include <vmtrace/guest_tracepoints.h>
#include <vmtrace/hook_protos.h>
#include <vmtrace/param_range.h>
#include <vmtrace/process_walk.h>
#include <vmtrace/vmsync.h>
#include <vmtrace/vmsync_tracepoints.h>

#define LTTNG_PACKAGE_BUILD
#define TP_MODULE_NOAUTOLOAD
#define TRACE_INCLUDE_PATH vmtrace_events

/*
 * Kbuild defines VMTRACE_HAVE_<function> when the kernel's declaration is
 * the one a probe reads its arguments for (checks/<function>.c); otherwise
 * that probe and its event are left out of the build.
 */
#if defined(VMTRACE_HAVE_HANDLE_MM_FAULT) || defined(VMTRACE_HAVE_UNMAP_VMAS)
#define VMTRACE_GUEST_MM
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_FILE guest_mm
#include <vmtrace_events/guest_mm.h>
#undef TRACE_INCLUDE_FILE
#endif

#ifdef VMTRACE_HAVE_HANDLE_MM_FAULT
LTTNG_DEFINE_TRACE(guest_mm_map,
	PARAMS(s32 pid, s32 tid, u64 gva, u64 gpa, u8 access),
	PARAMS(pid, tid, gva, gpa, access));
MODULE_INFO(vmtrace_event, "guest_mm_map");
#else
MODULE_INFO(vmtrace_left_out, "guest_mm_map: handle_mm_fault() differs from the prototype the probe reads");
#endif
#ifdef VMTRACE_HAVE_UNMAP_VMAS
LTTNG_DEFINE_TRACE(guest_mm_unmap,
	PARAMS(s32 pid, s32 tid, u64 start, u64 end, u8 reason),
	PARAMS(pid, tid, start, end, reason));
MODULE_INFO(vmtrace_event, "guest_mm_unmap");
#else
MODULE_INFO(vmtrace_left_out, "guest_mm_unmap: unmap_vmas() differs from the prototype the probe reads");
#endif

/* ---- parameters ------------------------------------------------------ */

static unsigned long period_ms = 100;
static unsigned long hc_nr = VMSYNC_HC_NR_DEFAULT;
static unsigned long long vm_uid;
static bool mm_events = true;

VMTRACE_RANGE_PARAM(period_ms, VMTRACE_GUEST_PERIOD_MS_MIN,
		    VMTRACE_GUEST_PERIOD_MS_MAX, VMTRACE_GUEST_PERIOD_MS_DESC);
VMTRACE_RANGE_PARAM(hc_nr, VMTRACE_GUEST_HC_NR_MIN, VMTRACE_GUEST_HC_NR_MAX,
		    VMTRACE_GUEST_HC_NR_DESC);

module_param(vm_uid, ullong, 0444);
MODULE_PARM_DESC(vm_uid, "VM identifier; 0 (default): from the DMI product UUID, else random. Reads back the value in use");

module_param(mm_events, bool, 0444);
MODULE_PARM_DESC(mm_events, "record guest_mm_map/guest_mm_unmap events");

/* ---- vm_uid ---------------------------------------------------------- */

/* The first 64 bits of the product UUID, as the UUID is written. */
static bool vm_uid_from_dmi(u64 *uid, const char **uuid)
{
	const char *s = dmi_get_system_info(DMI_PRODUCT_UUID);
	u64 v = 0;
	int n = 0;

	*uuid = s;
	if (!s)
		return false;
	for (; *s && n < 16; s++) {
		if (*s == '-')
			continue;
		if (!isxdigit(*s))
			return false;
		v = (v << 4) | hex_to_bin(*s);
		n++;
	}
	if (n < 16 || !v)
		return false;
	*uid = v;
	return true;
}

/* ---- vmsync ---------------------------------------------------------- */

struct vs_cpu {
	struct delayed_work dw;
	int cpu;
	bool active;		/* the work may queue itself again */
};

static DEFINE_PER_CPU(struct vs_cpu, vs_cpus);
static atomic_t vs_cnt = ATOMIC_INIT(0);
static enum cpuhp_state vs_hp_state;

static void vs_work_fn(struct work_struct *work)
{
	struct vs_cpu *c = container_of(to_delayed_work(work), struct vs_cpu, dw);
	u32 cnt;

	/* The three steps must run on one vCPU, without a switch between. */
	preempt_disable();
	cnt = atomic_inc_return(&vs_cnt);
	trace_vmsync_gh_guest(cnt, vm_uid);
	kvm_hypercall2(hc_nr, cnt, vm_uid);
	trace_vmsync_hg_guest(cnt, vm_uid);
	preempt_enable();

	if (READ_ONCE(c->active))
		queue_delayed_work_on(c->cpu, system_wq, &c->dw,
				      msecs_to_jiffies(period_ms));
}

/*
 * CPU hotplug: every online vCPU runs its own handshakes. The online
 * callback runs for each CPU online at load and for each CPU that comes up
 * later; the offline one before a CPU goes down (its work is bound to it)
 * and for every CPU at unload.
 */
static int vs_cpu_online(unsigned int cpu)
{
	struct vs_cpu *c = per_cpu_ptr(&vs_cpus, cpu);

	WRITE_ONCE(c->active, true);
	queue_delayed_work_on(cpu, system_wq, &c->dw,
			      msecs_to_jiffies(period_ms));
	return 0;
}

static int vs_cpu_offline(unsigned int cpu)
{
	struct vs_cpu *c = per_cpu_ptr(&vs_cpus, cpu);

	WRITE_ONCE(c->active, false);
	cancel_delayed_work_sync(&c->dw);
	return 0;
}

static int vs_start(void)
{
	int cpu, ret;

	for_each_possible_cpu(cpu) {
		struct vs_cpu *c = per_cpu_ptr(&vs_cpus, cpu);

		c->cpu = cpu;
		INIT_DELAYED_WORK(&c->dw, vs_work_fn);
	}
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "vmtrace/vmsync:online",
				vs_cpu_online, vs_cpu_offline);
	if (ret < 0)
		return ret;
	vs_hp_state = ret;
	return 0;
}

static void vs_stop(void)
{
	cpuhp_remove_state(vs_hp_state);
}

/* ---- guest mappings -------------------------------------------------- */

#ifdef VMTRACE_HAVE_HANDLE_MM_FAULT

#define GMM_WRITE	0x1
#define GMM_EXEC	0x2
#define GMM_USER	0x4

struct gmm_fault {
	unsigned long address;
	unsigned int flags;
	struct mm_struct *mm;
};

/*
 * Reads the translation that the fault just installed. The caller of
 * handle_mm_fault() still holds the mmap lock (we skip the RETRY and
 * COMPLETED cases, where it was dropped), so the page tables stay.
 */
static bool gmm_lookup(struct mm_struct *mm, unsigned long addr, u64 *pa)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud, pudv;
	pmd_t *pmd, pmdv;
	pte_t *ptep, pte;

	pgd = pgd_offset(mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return false;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return false;
	pud = pud_offset(p4d, addr);
	pudv = READ_ONCE(*pud);
	if (pud_none(pudv))
		return false;
	if (pud_leaf(pudv)) {
		if (!pud_present(pudv))
			return false;
		*pa = ((u64)pud_pfn(pudv) << PAGE_SHIFT) +
		      (addr & ~PUD_MASK & PAGE_MASK);
		return true;
	}
	if (pud_bad(pudv))
		return false;
	pmd = pmd_offset(pud, addr);
	pmdv = READ_ONCE(*pmd);
	if (pmd_none(pmdv))
		return false;
	if (pmd_leaf(pmdv)) {
		if (!pmd_present(pmdv))
			return false;
		*pa = ((u64)pmd_pfn(pmdv) << PAGE_SHIFT) +
		      (addr & ~PMD_MASK & PAGE_MASK);
		return true;
	}
	if (pmd_bad(pmdv))
		return false;
	ptep = pte_offset_map(pmd, addr);
	pte = READ_ONCE(*ptep);
	pte_unmap(ptep);
	if (!pte_present(pte))
		return false;
	*pa = (u64)pte_pfn(pte) << PAGE_SHIFT;
	return true;
}

/* handle_mm_fault(vma, address, flags, regs) */
static int gmm_fault_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct gmm_fault *f = (struct gmm_fault *)ri->data;
	struct vm_area_struct *vma = (struct vm_area_struct *)regs->di;

	f->address = regs->si;
	f->flags = regs->dx;
	f->mm = vma->vm_mm;
	/* Faults on another process's memory (remote GUP) are not its mappings. */
	return f->mm == current->mm ? 0 : 1;
}

static int gmm_fault_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct gmm_fault *f = (struct gmm_fault *)ri->data;
	vm_fault_t ret = regs_return_value(regs);
	u8 access = 0;
	u64 pa;

	if (ret & (VM_FAULT_ERROR | VM_FAULT_RETRY | VM_FAULT_COMPLETED))
		return 0;
	if (!gmm_lookup(f->mm, f->address, &pa))
		return 0;
	if (f->flags & FAULT_FLAG_WRITE)
		access |= GMM_WRITE;
	if (f->flags & FAULT_FLAG_INSTRUCTION)
		access |= GMM_EXEC;
	if (f->flags & FAULT_FLAG_USER)
		access |= GMM_USER;
	trace_guest_mm_map(task_tgid_nr(current), task_pid_nr(current),
			   f->address & PAGE_MASK, pa & PAGE_MASK, access);
	return 0;
}

static struct kretprobe gmm_fault_probe = {
	.kp.symbol_name = "handle_mm_fault",
	.entry_handler = gmm_fault_entry,
	.handler = gmm_fault_ret,
	.data_size = sizeof(struct gmm_fault),
	.maxactive = 64,
};

static bool gmm_fault_on;

/* Checked by Kbuild too: this fails only if the two checks disagree. */
static inline void gmm_check_fault_proto(void)
{
	BUILD_BUG_ON(!__same_type(&handle_mm_fault,
				  VMTRACE_HANDLE_MM_FAULT_TYPE));
}

#endif /* VMTRACE_HAVE_HANDLE_MM_FAULT */

#ifdef VMTRACE_HAVE_UNMAP_VMAS

#define GMM_END_UNMAP	0
#define GMM_END_EXIT	1
#define GMM_END_EXEC	2

/*
 * unmap_vmas(tlb, mt, vma, start, end) tears down the page tables of munmap
 * and of exit_mmap(). exit_mmap() runs in the exiting task after exit_mm()
 * (no mm, PF_EXITING), or in a task in execve() dropping its old mm; in both
 * cases that task owned the mappings that end.
 */
static int gmm_unmap_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct vm_area_struct *vma = (struct vm_area_struct *)regs->dx;
	u8 reason;

	if (vma->vm_mm == current->mm)
		reason = GMM_END_UNMAP;
	else if (!current->mm && (current->flags & PF_EXITING))
		reason = GMM_END_EXIT;
	else if (current->in_execve)
		reason = GMM_END_EXEC;
	else
		return 0;
	trace_guest_mm_unmap(task_tgid_nr(current), task_pid_nr(current),
			     regs->cx, regs->r8, reason);
	return 0;
}

static struct kprobe gmm_unmap_probe = {
	.symbol_name = "unmap_vmas",
	.pre_handler = gmm_unmap_pre,
};

static bool gmm_unmap_on;

static inline void gmm_check_unmap_proto(void)
{
	BUILD_BUG_ON(!__same_type(&unmap_vmas, VMTRACE_UNMAP_VMAS_TYPE));
}

#endif /* VMTRACE_HAVE_UNMAP_VMAS */

/* ---- statedump of the mappings --------------------------------------- */

#ifdef VMTRACE_HAVE_HANDLE_MM_FAULT

#define GMM_STATEDUMP		0x8
/* A process whose mmap lock stays taken this long is left out. */
#define GMM_LOCK_TRIES		20
#define GMM_LOCK_WAIT_US	5000

struct gmm_dump {
	pid_t pid;			/* the process being walked */
	unsigned long records;
	unsigned int processes;
	unsigned int contended;		/* left out: mmap lock not taken */
	unsigned int gone;		/* exited during their walk */
};

static void gmm_dump_page(struct gmm_dump *d, unsigned long va, u64 pa,
			  bool write)
{
	trace_guest_mm_map(d->pid, d->pid, va, pa,
			   GMM_STATEDUMP | (write ? GMM_WRITE : 0));
	d->records++;
}

/*
 * One record per 4 KiB page of a huge mapping [addr, end) (the join keeps
 * pages, as the memory tracer's accesses come); pa is addr's page.
 */
static void gmm_dump_huge(struct gmm_dump *d, unsigned long addr,
			  unsigned long end, u64 pa, bool write, bool resched)
{
	for (; addr < end; addr += PAGE_SIZE, pa += PAGE_SIZE) {
		gmm_dump_page(d, addr, pa, write);
		if (resched && !(addr & (PMD_SIZE - PAGE_SIZE)))
			cond_resched();
	}
}

static void gmm_dump_ptes(struct gmm_dump *d, struct mm_struct *mm,
			  pmd_t *pmd, unsigned long addr, unsigned long end)
{
	pte_t *start, *ptep;
	spinlock_t *ptl;

	start = pte_offset_map_lock(mm, pmd, addr, &ptl);
	for (ptep = start; addr < end; addr += PAGE_SIZE, ptep++) {
		pte_t pte = ptep_get(ptep);

		if (pte_present(pte))
			gmm_dump_page(d, addr, (u64)pte_pfn(pte) << PAGE_SHIFT,
				      pte_write(pte));
	}
	pte_unmap_unlock(start, ptl);
}

/*
 * Under the mmap read lock a page table stays a page table (collapsing it
 * into a huge page takes the lock for write) but a huge mapping may be
 * split or zapped: it is read again under its lock. A page table and a
 * huge PMD are recorded under their lock, so a change made concurrently
 * comes wholly before or after the records. (A fault records its
 * guest_mm_map after it released the lock: that event may follow our
 * record of the same mapping, a repeat. The unmaps that record an event,
 * munmap, exit and execve, cannot run on the VMAs this walk reads: munmap
 * detaches them under the write lock first, and exit and execve tear the
 * address space down only after our reference on it is dropped.)
 */
static void gmm_dump_pmds(struct gmm_dump *d, struct mm_struct *mm,
			  pud_t *pud, unsigned long addr, unsigned long end)
{
	pmd_t *pmd = pmd_offset(pud, addr);
	unsigned long next;

	do {
		pmd_t pmdv = READ_ONCE(*pmd);

		next = pmd_addr_end(addr, end);
		if (pmd_present(pmdv) && pmd_leaf(pmdv)) {
			spinlock_t *ptl = pmd_lock(mm, pmd);

			pmdv = *pmd;
			if (pmd_present(pmdv) && pmd_leaf(pmdv))
				gmm_dump_huge(d, addr, next,
					      ((u64)pmd_pfn(pmdv) << PAGE_SHIFT) +
					      (addr & ~PMD_MASK),
					      pmd_write(pmdv), false);
			spin_unlock(ptl);
		}
		/* A page table, possibly left by a split just now. */
		if (pmd_present(pmdv) && !pmd_leaf(pmdv) && !pmd_bad(pmdv))
			gmm_dump_ptes(d, mm, pmd, addr, next);
		cond_resched();
	} while (pmd++, addr = next, addr != end);
}

/*
 * 1 GiB mappings (hugetlbfs, device DAX) are rare in a guest and would
 * hold a lock for 262144 records: they are recorded from a snapshot of the
 * entry, with reschedule points.
 */
static void gmm_dump_puds(struct gmm_dump *d, struct mm_struct *mm,
			  p4d_t *p4d, unsigned long addr, unsigned long end)
{
	pud_t *pud = pud_offset(p4d, addr);
	unsigned long next;

	do {
		pud_t pudv = READ_ONCE(*pud);

		next = pud_addr_end(addr, end);
		if (!pud_present(pudv))
			continue;
		if (pud_leaf(pudv))
			gmm_dump_huge(d, addr, next,
				      ((u64)pud_pfn(pudv) << PAGE_SHIFT) +
				      (addr & ~PUD_MASK),
				      pud_write(pudv), true);
		else if (!pud_bad(pudv))
			gmm_dump_pmds(d, mm, pud, addr, next);
	} while (pud++, addr = next, addr != end);
}

static void gmm_dump_range(struct gmm_dump *d, struct mm_struct *mm,
			   unsigned long addr, unsigned long end)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	unsigned long next, p4d_next;
	p4d_t *p4d;

	do {
		next = pgd_addr_end(addr, end);
		if (pgd_none(*pgd) || pgd_bad(*pgd))
			continue;
		p4d = p4d_offset(pgd, addr);
		do {
			p4d_next = p4d_addr_end(addr, next);
			if (!p4d_none(*p4d) && !p4d_bad(*p4d))
				gmm_dump_puds(d, mm, p4d, addr, p4d_next);
		} while (p4d++, addr = p4d_next, addr != next);
	} while (pgd++, addr = next, addr != end);
}

/*
 * One process: its VMAs, one at a time, under the mmap read lock. Page
 * tables are only freed within the range of VMAs already detached (munmap
 * frees them after it downgrades the lock), so the walk stays inside the
 * VMAs it finds.
 */
static void gmm_dump_task(struct gmm_dump *d, struct task_struct *task)
{
	struct vm_area_struct *vma;
	struct mm_struct *mm;
	bool gone;
	int tries;

	mm = get_task_mm(task);
	if (!mm)
		return;
	/*
	 * The walk must end: a lock held for write (mmap, munmap, a fault
	 * waiting on I/O) is waited for a bounded time, then the process is
	 * left out.
	 */
	for (tries = 0; !mmap_read_trylock(mm); tries++) {
		if (tries == GMM_LOCK_TRIES) {
			d->contended++;
			mmput(mm);
			return;
		}
		usleep_range(GMM_LOCK_WAIT_US, GMM_LOCK_WAIT_US + 500);
	}
	d->pid = task_tgid_nr(task);
	for (vma = find_vma(mm, 0); vma; vma = find_vma(mm, vma->vm_end))
		gmm_dump_range(d, mm, vma->vm_start, vma->vm_end);
	mmap_read_unlock(mm);
	d->processes++;

	/*
	 * Our reference kept the address space alive: if the process exited
	 * meanwhile, its teardown runs in the last mmput(), outside the
	 * process, and unmap_vmas() records no guest_mm_unmap for it. A
	 * thread's reference goes after it clears task->mm under the task
	 * lock: while the leader's is set, ours is not the last one.
	 */
	task_lock(task);
	gone = task->mm != mm;
	if (!gone)
		mmput_async(mm);
	task_unlock(task);
	if (!gone)
		return;
#ifdef VMTRACE_HAVE_UNMAP_VMAS
	/*
	 * Only ours is left and no new image replaced it (the new image's
	 * mappings may already be recorded): the process exited, all its
	 * threads, during its walk. A leader that left alone (pthread_exit())
	 * leaves the other threads' references.
	 */
	if (!READ_ONCE(task->mm) && atomic_read(&mm->mm_users) == 1) {
		trace_guest_mm_unmap(d->pid, d->pid, 0, ULONG_MAX, GMM_END_EXIT);
		d->gone++;
	}
#endif
	mmput(mm);
}

static void gmm_dump_task_of(void *d, struct task_struct *task)
{
	gmm_dump_task(d, task);
}

/*
 * The statedump's walk, queued by the hook on lttng_statedump_start (which
 * runs with preemption off): every user process's present mappings, in
 * process context, one page table at a time.
 */
static void gmm_statedump_work_fn(struct work_struct *work)
{
	struct gmm_dump d = { 0 };

	if (!trace_guest_mm_map_enabled())
		return;
	vt_walk_user_processes(&(struct vt_process_walk){ gmm_dump_task_of, &d });
	pr_info("statedump: %lu mappings of %u processes, %u left out (mmap lock taken), %u exited during the walk\n",
		d.records, d.processes, d.contended, d.gone);
}

static DECLARE_WORK(gmm_statedump_work, gmm_statedump_work_fn);

static void gmm_statedump(void *data, struct lttng_kernel_session *session)
{
	/* A walk queued and not started yet serves this session too. */
	queue_work(system_wq, &gmm_statedump_work);
}

static struct tracepoint *gmm_statedump_tp;
static bool gmm_statedump_on;

static int gmm_tp_module_notify(struct notifier_block *nb, unsigned long val,
				void *data)
{
	struct tp_module *tp_mod = data;
	tracepoint_ptr_t *iter, *end;

	if (val != MODULE_STATE_COMING)
		return NOTIFY_OK;
	iter = tp_mod->mod->tracepoints_ptrs;
	end = iter + tp_mod->mod->num_tracepoints;
	for (; iter < end; iter++) {
		struct tracepoint *tp = tracepoint_ptr_deref(iter);

		if (!strcmp(tp->name, "lttng_statedump_start"))
			gmm_statedump_tp = tp;
	}
	return NOTIFY_OK;
}

static struct notifier_block gmm_tp_nb = {
	.notifier_call = gmm_tp_module_notify,
};

/*
 * LTTng's tracepoints are in its modules: registering the notifier replays
 * their arrival. LTTng stays loaded while we are (we use its symbols).
 */
static int gmm_statedump_hook(void)
{
	int ret;

	if (!mm_events)
		return 0;
	ret = register_tracepoint_module_notifier(&gmm_tp_nb);
	if (ret)
		return ret;
	unregister_tracepoint_module_notifier(&gmm_tp_nb);
	if (!gmm_statedump_tp) {
		pr_err("tracepoint lttng_statedump_start not found\n");
		return -ENOENT;
	}
	ret = tracepoint_probe_register(gmm_statedump_tp, gmm_statedump, NULL);
	if (ret) {
		pr_err("cannot hook tracepoint lttng_statedump_start: %d\n", ret);
		return ret;
	}
	gmm_statedump_on = true;
	return 0;
}

static void gmm_statedump_unhook(void)
{
	if (!gmm_statedump_on)
		return;
	tracepoint_probe_unregister(gmm_statedump_tp, gmm_statedump, NULL);
	tracepoint_synchronize_unregister();
	/* No hook queues the walk any more: wait for the last one. */
	cancel_work_sync(&gmm_statedump_work);
	gmm_statedump_on = false;
}

#else /* !VMTRACE_HAVE_HANDLE_MM_FAULT */

static int gmm_statedump_hook(void)
{
	return 0;
}

static void gmm_statedump_unhook(void)
{
}

#endif /* VMTRACE_HAVE_HANDLE_MM_FAULT */

static void gmm_unregister(void)
{
#ifdef VMTRACE_HAVE_UNMAP_VMAS
	if (gmm_unmap_on)
		unregister_kprobe(&gmm_unmap_probe);
	gmm_unmap_on = false;
#endif
#ifdef VMTRACE_HAVE_HANDLE_MM_FAULT
	if (gmm_fault_on) {
		unregister_kretprobe(&gmm_fault_probe);
		if (gmm_fault_probe.nmissed)
			pr_info("%d handle_mm_fault returns missed\n",
				gmm_fault_probe.nmissed);
	}
	gmm_fault_on = false;
#endif
}

static int gmm_register(void)
{
	int ret __maybe_unused;

	if (!mm_events)
		return 0;
#ifdef VMTRACE_HAVE_HANDLE_MM_FAULT
	gmm_check_fault_proto();
	ret = register_kretprobe(&gmm_fault_probe);
	if (ret) {
		pr_err("cannot probe handle_mm_fault: %d\n", ret);
		return ret;
	}
	gmm_fault_on = true;
#endif
#ifdef VMTRACE_HAVE_UNMAP_VMAS
	gmm_check_unmap_proto();
	ret = register_kprobe(&gmm_unmap_probe);
	if (ret) {
		pr_err("cannot probe unmap_vmas: %d\n", ret);
		gmm_unregister();
		return ret;
	}
	gmm_unmap_on = true;
#endif
	return 0;
}

static int gmm_events_init(void)
{
#ifdef VMTRACE_GUEST_MM
	return __lttng_events_init__guest_mm();
#else
	return 0;
#endif
}

static void gmm_events_exit(void)
{
#ifdef VMTRACE_GUEST_MM
	__lttng_events_exit__guest_mm();
#endif
}

/* ---- module init/exit ------------------------------------------------ */

static int __init vt_guest_init(void)
{
	const char *uuid = NULL;
	const char *source = "parameter";
	u64 uid;
	int ret;

	if (!kvm_para_available()) {
		pr_err("not running under KVM: the vmsync hypercall would fault\n");
		return -ENODEV;
	}
	if (!vm_uid) {
		if (vm_uid_from_dmi(&uid, &uuid)) {
			source = "DMI product UUID";
		} else {
			do {
				uid = get_random_u64();
			} while (!uid);
			source = "random";
		}
		vm_uid = uid;
	}

	wrapper_vmalloc_sync_mappings();
	ret = gmm_events_init();
	if (ret)
		return ret;
	ret = gmm_register();
	if (ret)
		goto err_probes;
	ret = gmm_statedump_hook();
	if (ret)
		goto err_statedump;
	ret = vs_start();
	if (ret) {
		pr_err("cannot follow CPU hotplug: %d\n", ret);
		goto err_vmsync;
	}
	pr_info("loaded: vm_uid=%#llx (%s%s%s), hypercall %#lx every %lu ms on %u vCPUs, mm events %s\n",
		vm_uid, source, uuid ? " " : "", uuid ? uuid : "", hc_nr,
		period_ms, num_online_cpus(), mm_events ? "on" : "off");
	return 0;

err_vmsync:
	gmm_statedump_unhook();
err_statedump:
	gmm_unregister();
err_probes:
	gmm_events_exit();
	return ret;
}

static void __exit vt_guest_exit(void)
{
	vs_stop();
	gmm_statedump_unhook();
	gmm_unregister();
	tracepoint_synchronize_unregister();
	gmm_events_exit();
}

module_init(vt_guest_init);
module_exit(vt_guest_exit);

MODULE_LICENSE("GPL and additional rights");
MODULE_DESCRIPTION("vmtrace LTTng guest probes (vmsync, guest mappings)");
