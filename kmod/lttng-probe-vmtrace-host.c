// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmtrace host probes: KVM entry/exit/TDP-fault events, the VM's port I/O,
 * MMIO, MSR accesses, interrupt injections and hypercalls, TDP MMU GPA->HPA
 * mappings attributed to their VM, VM and vCPU identity (mappings and
 * identity live and as a statedump), and the host half of the vmsync
 * handshake.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/kvm_host.h>
#include <linux/hash.h>
#include <linux/sched/signal.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/dcache.h>
#include <linux/jiffies.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched/task.h>
#include <linux/workqueue.h>
#include <linux/kprobes.h>

#include <lttng/events.h>
#include <lttng/tracer.h>
#include <wrapper/kallsyms.h>
#include <wrapper/tracepoint.h>
#include <wrapper/vmalloc.h>

/*
 * The kernel's own KVM tracepoint headers come first: the LTTng stage below
 * re-declares trace_kvm_entry() etc. with our prototypes, and any mismatch
 * with the running kernel's tracepoints is a compile error.
 */
#include <kvm_cache_regs.h>
#include <mmu.h>
#include <mmu/mmu_internal.h>
#include <mmu/spte.h>
#include <trace.h>
#include <mmu/mmutrace.h>
#undef TRACE_INCLUDE_PATH
#undef TRACE_INCLUDE_FILE
#include <trace/events/kvm.h>
#undef TRACE_INCLUDE_PATH
#undef TRACE_INCLUDE_FILE

#include <vmtrace/host_tracepoints.h>
#include <vmtrace/hook_protos.h>
#include <vmtrace/process_walk.h>
#include <vmtrace/param_range.h>
#include <vmtrace/vmsync.h>
#include <vmtrace/vmsync_tracepoints.h>

#define LTTNG_PACKAGE_BUILD
#define TP_MODULE_NOAUTOLOAD
#define TRACE_INCLUDE_PATH vmtrace_events

#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_FILE kvm_x86
#include <vmtrace_events/kvm_x86.h>
#undef TRACE_INCLUDE_FILE

/* Each provider header needs the LTTng event macros defined afresh. */
#undef LTTNG_TRACEPOINT_EVENT_H
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_FILE kvm_vm
#include <vmtrace_events/kvm_vm.h>
#undef TRACE_INCLUDE_FILE

/*
 * Kbuild defines VMTRACE_HAVE_TDP_SPTE_CHANGED when the kernel's
 * kvm_tdp_mmu_spte_changed tracepoint has our hook's prototype
 * (checks/kvm_tdp_mmu_spte_changed.c); otherwise kvm_tdp_mmu_map is left out.
 */
#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
#undef LTTNG_TRACEPOINT_EVENT_H
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_FILE kvm_tdp_mmu
#include <vmtrace_events/kvm_tdp_mmu.h>
#undef TRACE_INCLUDE_FILE
#endif

LTTNG_DEFINE_TRACE(kvm_vm_vcpu_thread,
	PARAMS(s32 vm_pid, u32 vcpu_id, s32 tid, u32 nr_vcpus,
		const char *vm_comm),
	PARAMS(vm_pid, vcpu_id, tid, nr_vcpus, vm_comm));
LTTNG_DEFINE_TRACE(kvm_x86_msr_user,
	PARAMS(u32 vcpu_id, u32 index, u64 data, u8 error),
	PARAMS(vcpu_id, index, data, error));
LTTNG_DEFINE_TRACE(kvm_vm_statedump_vm,
	PARAMS(s32 vm_pid, s32 owner_pid, u32 nr_vcpus, const char *vm_comm),
	PARAMS(vm_pid, owner_pid, nr_vcpus, vm_comm));
LTTNG_DEFINE_TRACE(kvm_vm_statedump_vcpu,
	PARAMS(s32 vm_pid, u32 vcpu_id, s32 tid),
	PARAMS(vm_pid, vcpu_id, tid));
#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
LTTNG_DEFINE_TRACE(kvm_tdp_mmu_map,
	PARAMS(s32 vm_pid, u8 as_id, u64 gfn, u64 pfn, u64 old_pfn,
		u8 level, u8 op),
	PARAMS(vm_pid, as_id, gfn, pfn, old_pfn, level, op));
MODULE_INFO(vmtrace_event, "kvm_tdp_mmu_map");
#else
MODULE_INFO(vmtrace_left_out, "kvm_tdp_mmu_map: the kvm_tdp_mmu_spte_changed tracepoint differs from the probe's hook");
#endif

/* The events it offers, for `vmtrace modules status`. */
MODULE_INFO(vmtrace_event, "kvm_x86_entry");
MODULE_INFO(vmtrace_event, "kvm_x86_exit");
MODULE_INFO(vmtrace_event, "kvm_x86_tdp_fault");
MODULE_INFO(vmtrace_event, "kvm_x86_pio");
MODULE_INFO(vmtrace_event, "kvm_x86_mmio");
MODULE_INFO(vmtrace_event, "kvm_x86_msr");
MODULE_INFO(vmtrace_event, "kvm_x86_inj_virq");
MODULE_INFO(vmtrace_event, "kvm_x86_inj_exception");
MODULE_INFO(vmtrace_event, "kvm_x86_msr_user");
MODULE_INFO(vmtrace_event, "kvm_x86_hypercall");
MODULE_INFO(vmtrace_event, "kvm_vm_vcpu_thread");
MODULE_INFO(vmtrace_event, "kvm_vm_statedump_vm");
MODULE_INFO(vmtrace_event, "kvm_vm_statedump_vcpu");

/* ---- parameters ------------------------------------------------------ */

static unsigned long hc_nr = VMSYNC_HC_NR_DEFAULT;

VMTRACE_RANGE_PARAM(hc_nr, VMTRACE_HOST_HC_NR_MIN, VMTRACE_HOST_HC_NR_MAX,
		    VMTRACE_HOST_HC_NR_DESC);

static bool tdp_mmu_map = true;
module_param(tdp_mmu_map, bool, 0444);
MODULE_PARM_DESC(tdp_mmu_map, "hook TDP MMU mapping changes (kvm_tdp_mmu_map events)");

/* ---- KVM internals not exported to modules --------------------------- */

static struct kvm_x86_ops *vt_kvm_x86_ops;

void vmtrace_get_exit_info(struct kvm_vcpu *vcpu, struct vmtrace_exit_info *ei)
{
	memset(ei, 0, sizeof(*ei));
	vt_kvm_x86_ops->get_exit_info(vcpu, &ei->reason, &ei->info1,
				      &ei->info2, &ei->intr_info,
				      &ei->error_code);
}

unsigned long vmtrace_rip(struct kvm_vcpu *vcpu)
{
	return kvm_rip_read(vcpu);
}

bool vmtrace_vcpu_tdp(struct kvm_vcpu *vcpu)
{
	return vcpu->arch.mmu && vcpu->arch.mmu->root_role.direct;
}

u32 vmtrace_running_vcpu_id(void)
{
	struct kvm_vcpu *vcpu = kvm_get_running_vcpu();

	return vcpu ? vcpu->vcpu_id : U32_MAX;
}

/* ---- per-vCPU and per-VM state --------------------------------------- */

/*
 * KVM offers no hook for vCPU or VM destruction, so state is kept in small
 * fixed tables keyed by pointer. A pointer is never dereferenced from the
 * table: only compared with the one KVM hands to a probe. Slots of vCPUs not
 * seen for a while are recycled.
 */
#define VCPU_SLOTS_BITS	10
#define VCPU_PROBE	16
#define VM_SLOTS	64
#define SLOT_STALE	(10 * HZ)

struct vcpu_slot {
	struct kvm_vcpu *vcpu;
	unsigned long last_seen;
	pid_t tid;		/* thread last announced for this vCPU */
	bool pending;		/* vmsync hypercall seen, entry not yet */
	u32 cnt;
	u64 vm_uid;
};

/*
 * ids packs the process that owns the VM's file (high half) and
 * kvm->userspace_pid, the VM's key in events (low half), so that a lock-free
 * reader never pairs one VM's owner with another VM's key.
 */
struct vm_slot {
	struct kvm *kvm;
	u64 ids;
	unsigned long last_seen;
};

static struct vcpu_slot *vcpu_slots;
static struct vm_slot vm_slots[VM_SLOTS];
/* Serialises slot claims; taken with IRQs off (KVM's entry runs so). */
static DEFINE_RAW_SPINLOCK(vm_slots_lock);

static u64 vm_ids(pid_t tgid, pid_t vm_pid)
{
	return (u64)(u32)tgid << 32 | (u32)vm_pid;
}

static struct vcpu_slot *vcpu_slot_get(struct kvm_vcpu *vcpu)
{
	unsigned int h = hash_ptr(vcpu, VCPU_SLOTS_BITS), i;
	struct vcpu_slot *s, *oldest = NULL;

	for (i = 0; i < VCPU_PROBE; i++) {
		s = &vcpu_slots[(h + i) & ((1U << VCPU_SLOTS_BITS) - 1)];
		if (READ_ONCE(s->vcpu) == vcpu)
			goto found;
		if (!READ_ONCE(s->vcpu) && !cmpxchg(&s->vcpu, NULL, vcpu))
			goto fresh;
		if (!oldest || time_before(s->last_seen, oldest->last_seen))
			oldest = s;
	}
	s = oldest;
	if (!time_after(jiffies, s->last_seen + SLOT_STALE)) {
		pr_warn_ratelimited("vCPU table full, vCPU %d untracked\n",
				    vcpu->vcpu_id);
		return NULL;
	}
	{
		struct kvm_vcpu *old = READ_ONCE(s->vcpu);

		if (cmpxchg(&s->vcpu, old, vcpu) != old)
			return NULL;
	}
fresh:
	s->tid = 0;
	s->pending = false;
found:
	s->last_seen = jiffies;
	return s;
}

static void vm_slot_note(struct kvm *kvm, pid_t tgid)
{
	struct vm_slot *s, *pick = NULL;
	unsigned long flags;
	int i;

	raw_spin_lock_irqsave(&vm_slots_lock, flags);
	for (i = 0; i < VM_SLOTS; i++) {
		s = &vm_slots[i];
		if (s->kvm == kvm) {
			pick = s;
			break;
		}
		if (!pick || (pick->kvm && (!s->kvm ||
		    time_before(s->last_seen, pick->last_seen))))
			pick = s;
	}
	/* A free slot if there is one, else the one seen longest ago. */
	s = pick;
	s->last_seen = jiffies;
	WRITE_ONCE(s->ids, vm_ids(tgid, kvm->userspace_pid));
	WRITE_ONCE(s->kvm, kvm);
	raw_spin_unlock_irqrestore(&vm_slots_lock, flags);
}

#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
/*
 * The VM a TDP MMU change belongs to. vCPU faults run with the vCPU loaded;
 * memslot updates, MMU-notifier invalidations of QEMU's own address space and
 * VM teardown run in one of QEMU's threads (after exit_mm() current->mm is
 * gone, but the thread group is still the VM's creator). Anything else, such
 * as reclaim in kswapd, names no VM.
 */
static pid_t vm_pid_of_context(void)
{
	struct kvm_vcpu *vcpu = kvm_get_running_vcpu();
	pid_t tgid;
	int i;

	if (vcpu)
		return vcpu->kvm->userspace_pid;
	tgid = task_tgid_nr(current);
	for (i = 0; i < VM_SLOTS; i++) {
		u64 ids = READ_ONCE(vm_slots[i].ids);

		if (READ_ONCE(vm_slots[i].kvm) && (pid_t)(ids >> 32) == tgid)
			return (pid_t)(u32)ids;
	}
	return 0;
}
#endif

/* ---- hooks on KVM's tracepoints -------------------------------------- */

/* Lock-free copy: callers may hold the task lock or run with IRQs off. */
static void vt_comm(char *comm, struct task_struct *t)
{
	memcpy(comm, t->comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN - 1] = '\0';
}

static void vt_announce_vcpu(struct kvm_vcpu *vcpu)
{
	char comm[TASK_COMM_LEN];

	vt_comm(comm, current->group_leader);
	trace_kvm_vm_vcpu_thread(vcpu->kvm->userspace_pid, vcpu->vcpu_id,
				 task_pid_nr(current),
				 atomic_read(&vcpu->kvm->online_vcpus), comm);
}

static void vt_kvm_entry(void *data, VMTRACE_KVM_ENTRY_PROTO)
{
	struct vcpu_slot *s = vcpu_slot_get(vcpu);

	if (!s)
		return;
	if (s->tid != task_pid_nr(current)) {
		s->tid = task_pid_nr(current);
		vm_slot_note(vcpu->kvm, task_tgid_nr(current));
		vt_announce_vcpu(vcpu);
	}
	if (s->pending) {
		s->pending = false;
		trace_vmsync_hg_host(s->cnt, s->vm_uid, vcpu->vcpu_id);
	}
}

static void vt_kvm_hypercall(void *data, unsigned long nr, unsigned long a0,
			     unsigned long a1, unsigned long a2,
			     unsigned long a3)
{
	struct kvm_vcpu *vcpu;
	struct vcpu_slot *s;

	if (nr != hc_nr)
		return;
	vcpu = kvm_get_running_vcpu();
	if (!vcpu)
		return;
	/*
	 * KVM records the hypercall before it checks the privilege level; a
	 * hypercall from guest user space is refused (-KVM_EPERM) and is no
	 * vmsync message.
	 */
	if (vt_kvm_x86_ops->get_cpl(vcpu) != 0)
		return;
	s = vcpu_slot_get(vcpu);
	if (!s)
		return;
	s->cnt = a0;
	s->vm_uid = a1;
	s->pending = true;
	trace_vmsync_gh_host(a0, a1, vcpu->vcpu_id);
}

#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
static void vt_tdp_spte_changed(void *data, int as_id, gfn_t gfn, int level,
				u64 old_spte, u64 new_spte)
{
	bool was = is_shadow_present_pte(old_spte) && is_last_spte(old_spte, level);
	bool now = is_shadow_present_pte(new_spte) && is_last_spte(new_spte, level);
	u64 old_pfn = was ? spte_to_pfn(old_spte) : 0;
	u64 new_pfn = now ? spte_to_pfn(new_spte) : 0;

	if (was && now) {
		/* Accessed/dirty/permission updates keep the page. */
		if (old_pfn == new_pfn)
			return;
		trace_kvm_tdp_mmu_map(vm_pid_of_context(), as_id, gfn, new_pfn,
				      old_pfn, level, VMTRACE_MAP_CHANGE);
	} else if (now) {
		trace_kvm_tdp_mmu_map(vm_pid_of_context(), as_id, gfn, new_pfn,
				      0, level, VMTRACE_MAP_INSTALL);
	} else if (was) {
		trace_kvm_tdp_mmu_map(vm_pid_of_context(), as_id, gfn, old_pfn,
				      old_pfn, level, VMTRACE_MAP_REMOVE);
	}
}
#endif

/* ---- statedump ------------------------------------------------------- */

/*
 * One statedump walk. With the TDP MMU's mappings wanted, every VM met in a
 * file is kept (once, held by kvm_get_kvm()) for the mapping walk that
 * follows the file walk: one VM is held by several files and processes.
 */
struct vt_dump_vm {
	struct list_head link;
	struct kvm *kvm;
};

struct vt_dump {
	bool tdp;			/* dump the TDP MMU's mappings */
	struct list_head vms;		/* struct vt_dump_vm */
	unsigned int nr_vms;
	unsigned int vms_dropped;	/* no memory to keep the VM */
};

static void vt_dump_keep_vm(struct vt_dump *d, struct kvm *kvm)
{
	struct vt_dump_vm *v;

	if (!d->tdp)
		return;
	list_for_each_entry(v, &d->vms, link)
		if (v->kvm == kvm)
			return;
	v = kmalloc(sizeof(*v), GFP_KERNEL);
	if (!v) {
		d->vms_dropped++;
		return;
	}
	/* The caller holds a file, which holds the VM: it is alive. */
	kvm_get_kvm(kvm);
	v->kvm = kvm;
	list_add_tail(&v->link, &d->vms);
	d->nr_vms++;
}

/*
 * A KVM file open in a process: KVM's anonymous inodes are named kvm-vm and
 * kvm-vcpu:N. The caller holds a reference on the file, which holds the VM.
 */
static void vt_dump_file(struct vt_dump *d, struct task_struct *task,
			 struct file *file)
{
	const char *name = file->f_path.dentry->d_name.name;
	char comm[TASK_COMM_LEN];

	if (!strcmp(name, "kvm-vm")) {
		struct kvm *kvm = file->private_data;

		vt_comm(comm, task);
		vm_slot_note(kvm, task_tgid_nr(task));
		trace_kvm_vm_statedump_vm(kvm->userspace_pid, task_tgid_nr(task),
					  atomic_read(&kvm->online_vcpus), comm);
		vt_dump_keep_vm(d, kvm);
	} else if (!strncmp(name, "kvm-vcpu:", 9)) {
		struct kvm_vcpu *vcpu = file->private_data;
		struct pid *pid;
		pid_t tid = 0;

		rcu_read_lock();
		pid = rcu_dereference(vcpu->pid);
		if (pid)
			tid = pid_nr(pid);
		rcu_read_unlock();
		trace_kvm_vm_statedump_vcpu(vcpu->kvm->userspace_pid,
					    vcpu->vcpu_id, tid);
		vt_dump_keep_vm(d, vcpu->kvm);
	}
}

/* One file at a time, each taken under RCU and held by a reference. */
static void vt_dump_task(struct vt_dump *d, struct task_struct *task)
{
	unsigned int fd;
	struct file *file;

	for (fd = 0;; fd++) {
		rcu_read_lock();
		file = task_lookup_next_fd_rcu(task, &fd);
		if (file && !get_file_rcu(file))
			file = ERR_PTR(-EAGAIN);	/* being closed */
		rcu_read_unlock();
		if (!file)
			break;
		if (!IS_ERR(file)) {
			vt_dump_file(d, task, file);
			fput(file);
		}
		cond_resched();
	}
}

static void vt_dump_task_of(void *d, struct task_struct *task)
{
	vt_dump_task(d, task);
}

#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
/*
 * The TDP MMU's present leaf mappings of one VM, as kvm_tdp_mmu_map op
 * VMTRACE_MAP_STATEDUMP. KVM's iterator (tdp_iter) is not exported, so the
 * walk reads the page tables itself: it descends from the root towards the
 * next GFN not yet looked at, as tdp_iter does after it yields, reads
 * VT_TDP_STEP entries, then drops the lock and reschedules. A step holds
 * kvm->mmu_lock for write: no SPTE of the VM changes while it reads and
 * records, so a change made during the walk comes wholly before a record
 * (which then shows it) or after it (the live kvm_tdp_mmu_map event then
 * follows the record). Page tables are freed after an RCU grace period and
 * the root list is an RCU list: both are read under rcu_read_lock() too.
 */
#define VT_TDP_STEP	512	/* leaf or empty entries per lock hold */
#define VT_TDP_ROOTS	16	/* valid roots dumped per VM */

struct vt_tdp_root {
	struct kvm_mmu_page *sp;	/* compared only, read under the lock */
	u32 role;
};

/* Whether the root is still in the VM's list, valid and the same. */
static bool vt_tdp_root_live(struct kvm *kvm, const struct vt_tdp_root *r)
{
	struct kvm_mmu_page *sp;

	list_for_each_entry_rcu(sp, &kvm->arch.tdp_mmu_roots, link)
		if (sp == r->sp)
			return sp->role.word == r->role;
	return false;
}

/*
 * Records the present leaves of the root from GFN *next, at most
 * VT_TDP_STEP entries (present or not, at the level where the walk finds
 * them); returns false when the root's whole range has been read.
 */
static bool vt_tdp_step(struct kvm *kvm, struct kvm_mmu_page *root,
			gfn_t *next, unsigned long *records)
{
	int root_level = root->role.level;
	gfn_t end = 1ULL << (SPTE_LEVEL_BITS * root_level);
	int as_id = kvm_mmu_page_as_id(root);
	int budget = VT_TDP_STEP;
	gfn_t gfn = *next;

	while (gfn < end && budget-- > 0) {
		u64 *pt = root->spt;
		int level = root_level;

		for (;;) {
			u64 spte = READ_ONCE(pt[SPTE_INDEX(gfn << PAGE_SHIFT, level)]);
			gfn_t span = KVM_PAGES_PER_HPAGE(level);
			bool present = is_shadow_present_pte(spte);

			if (present && !is_last_spte(spte, level)) {
				/* A lower table: as spte_to_child_pt(). */
				pt = __va(spte_to_pfn(spte) << PAGE_SHIFT);
				level--;
				continue;
			}
			gfn &= ~(span - 1);
			if (present) {
				trace_kvm_tdp_mmu_map(kvm->userspace_pid, as_id,
						      gfn, spte_to_pfn(spte), 0,
						      level,
						      VMTRACE_MAP_STATEDUMP);
				(*records)++;
			}
			gfn += span;
			break;
		}
	}
	*next = gfn;
	return gfn < end;
}

/*
 * Every valid root of the VM (as_id from its role: a VM in SMM has a root
 * per address space). A root invalidated during the walk is left: KVM zaps
 * it, and the live events report the removals and the new root's installs.
 */
static unsigned long vt_dump_tdp(struct kvm *kvm)
{
	struct vt_tdp_root roots[VT_TDP_ROOTS];
	struct kvm_mmu_page *sp;
	unsigned long records = 0;
	int nr = 0, i;

	if (!kvm->arch.tdp_mmu_enabled)
		return 0;
	write_lock(&kvm->mmu_lock);
	rcu_read_lock();
	list_for_each_entry_rcu(sp, &kvm->arch.tdp_mmu_roots, link) {
		if (sp->role.invalid)
			continue;
		if (nr == VT_TDP_ROOTS) {
			pr_warn_ratelimited("statedump: VM %d has more than %d TDP MMU roots, the others left out\n",
					    kvm->userspace_pid, VT_TDP_ROOTS);
			break;
		}
		roots[nr].sp = sp;
		roots[nr].role = sp->role.word;
		nr++;
	}
	rcu_read_unlock();
	write_unlock(&kvm->mmu_lock);

	for (i = 0; i < nr; i++) {
		gfn_t next = 0;
		bool more = true;

		while (more) {
			write_lock(&kvm->mmu_lock);
			rcu_read_lock();
			more = vt_tdp_root_live(kvm, &roots[i]) &&
			       vt_tdp_step(kvm, roots[i].sp, &next, &records);
			rcu_read_unlock();
			write_unlock(&kvm->mmu_lock);
			cond_resched();
		}
	}
	return records;
}

static bool vt_dump_tdp_wanted(void)
{
	return tdp_mmu_map && trace_kvm_tdp_mmu_map_enabled();
}
#else
static unsigned long vt_dump_tdp(struct kvm *kvm)
{
	return 0;
}

static bool vt_dump_tdp_wanted(void)
{
	return false;
}
#endif

/*
 * Describes the VMs that exist in every session that starts: LTTng's
 * statedump fires lttng_statedump_start, our hook queues this work, and the
 * work walks every process's file table in process context, one process and
 * one file per step, with a reschedule point between steps. (The hook
 * itself runs with preemption off: no place for a walk of unbounded
 * length.) Then, when kvm_tdp_mmu_map is recorded, it walks the TDP MMU
 * mappings of each VM found, once per VM. The statedump then waits for a
 * work item that it queues on every CPU, so this walk normally ends before
 * lttng_statedump_end.
 */
static void vt_statedump_work_fn(struct work_struct *work)
{
	struct vt_dump d = { .vms = LIST_HEAD_INIT(d.vms) };
	struct vt_dump_vm *v, *tmp;
	unsigned long records = 0;

	d.tdp = vt_dump_tdp_wanted();
	vt_walk_user_processes(&(struct vt_process_walk){ vt_dump_task_of, &d });

	list_for_each_entry_safe(v, tmp, &d.vms, link) {
		records += vt_dump_tdp(v->kvm);
		/* May free the VM if its last file was closed meanwhile. */
		kvm_put_kvm(v->kvm);
		list_del(&v->link);
		kfree(v);
	}
	if (d.tdp)
		pr_info("statedump: %lu TDP MMU mappings of %u VMs%s\n",
			records, d.nr_vms,
			d.vms_dropped ? " (VMs left out: no memory)" : "");
}

static DECLARE_WORK(vt_statedump_work, vt_statedump_work_fn);

static void vt_statedump(void *data, struct lttng_kernel_session *session)
{
	/* A walk queued and not started yet serves this session too. */
	queue_work(system_wq, &vt_statedump_work);
}

/* ---- user-space MSR completions -------------------------------------- */

/*
 * KVM completes an RDMSR that user space handled (KVM_EXIT_X86_RDMSR) in one
 * of these callbacks, called as vcpu->arch.complete_userspace_io on the next
 * KVM_RUN with the vCPU loaded; their first argument is the vCPU and
 * vcpu->run->msr holds what user space returned (the uapi's layout). No
 * kernel tracepoint records that value. They are static functions: when a
 * kernel lacks one, its probe is left out with a warning and the analysis
 * reports the values as unknown.
 */
static int vt_msr_user_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct kvm_vcpu *vcpu = (struct kvm_vcpu *)regs->di;
	struct kvm_run *run = vcpu->run;

	trace_kvm_x86_msr_user(vcpu->vcpu_id, run->msr.index, run->msr.data,
			       run->msr.error);
	return 0;
}

static struct kprobe vt_msr_user_probes[] = {
	{ .symbol_name = "complete_fast_rdmsr", .pre_handler = vt_msr_user_pre },
	{ .symbol_name = "complete_emulated_rdmsr", .pre_handler = vt_msr_user_pre },
};
static bool vt_msr_user_on[ARRAY_SIZE(vt_msr_user_probes)];

static void vt_msr_user_unprobe(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vt_msr_user_probes); i++) {
		if (vt_msr_user_on[i])
			unregister_kprobe(&vt_msr_user_probes[i]);
		vt_msr_user_on[i] = false;
	}
}

static void vt_msr_user_probe(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(vt_msr_user_probes); i++) {
		ret = register_kprobe(&vt_msr_user_probes[i]);
		if (ret) {
			pr_warn("cannot probe %s (%d): kvm_x86_msr_user will miss the RDMSRs it completes\n",
				vt_msr_user_probes[i].symbol_name, ret);
			continue;
		}
		vt_msr_user_on[i] = true;
	}
}

/* ---- module init/exit ------------------------------------------------ */

/*
 * Our hooks attach to KVM's and LTTng's tracepoints directly. Both modules
 * are pinned while we are loaded (we use their symbols), so the tracepoints
 * found here stay valid until our exit.
 */
struct vt_hook {
	const char *name;
	void *probe;
	bool *enabled;
	struct tracepoint *tp;
	bool registered;
};

static struct vt_hook vt_hooks[] = {
	{ "kvm_entry", vt_kvm_entry, NULL },
	{ "kvm_hypercall", vt_kvm_hypercall, NULL },
#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
	{ "kvm_tdp_mmu_spte_changed", vt_tdp_spte_changed, &tdp_mmu_map },
#endif
	{ "lttng_statedump_start", vt_statedump, NULL },
};

/* Our hook functions must have the kernel's tracepoint prototypes. */
static inline void vt_check_hook_protos(void)
{
	BUILD_BUG_ON(!__same_type(&register_trace_kvm_entry,
		int (*)(typeof(&vt_kvm_entry), void *)));
	BUILD_BUG_ON(!__same_type(&register_trace_kvm_hypercall,
		int (*)(typeof(&vt_kvm_hypercall), void *)));
#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
	/* Checked by Kbuild too: this fails only if the two checks disagree. */
	BUILD_BUG_ON(!__same_type(&register_trace_kvm_tdp_mmu_spte_changed,
		int (*)(typeof(&vt_tdp_spte_changed), void *)));
	BUILD_BUG_ON(!__same_type(&vt_tdp_spte_changed,
				  VMTRACE_TDP_SPTE_CHANGED_HOOK));
#endif
}

static int vt_tp_module_notify(struct notifier_block *nb, unsigned long val,
			       void *data)
{
	struct tp_module *tp_mod = data;
	tracepoint_ptr_t *iter, *end;
	int i;

	if (val != MODULE_STATE_COMING)
		return NOTIFY_OK;
	iter = tp_mod->mod->tracepoints_ptrs;
	end = iter + tp_mod->mod->num_tracepoints;
	for (; iter < end; iter++) {
		struct tracepoint *tp = tracepoint_ptr_deref(iter);

		for (i = 0; i < ARRAY_SIZE(vt_hooks); i++)
			if (!vt_hooks[i].tp && !strcmp(tp->name, vt_hooks[i].name))
				vt_hooks[i].tp = tp;
	}
	return NOTIFY_OK;
}

static struct notifier_block vt_tp_nb = {
	.notifier_call = vt_tp_module_notify,
};

static void vt_unhook(void)
{
	int i;

	for (i = ARRAY_SIZE(vt_hooks) - 1; i >= 0; i--) {
		if (!vt_hooks[i].registered)
			continue;
		tracepoint_probe_unregister(vt_hooks[i].tp, vt_hooks[i].probe,
					    NULL);
		vt_hooks[i].registered = false;
	}
	tracepoint_synchronize_unregister();
	/* No hook queues the statedump walk any more: wait for the last one. */
	cancel_work_sync(&vt_statedump_work);
}

static int vt_hook(void)
{
	int i, ret;

	/* Registering replays COMING for every module already loaded. */
	ret = register_tracepoint_module_notifier(&vt_tp_nb);
	if (ret)
		return ret;
	unregister_tracepoint_module_notifier(&vt_tp_nb);

	for (i = 0; i < ARRAY_SIZE(vt_hooks); i++) {
		if (vt_hooks[i].enabled && !*vt_hooks[i].enabled)
			continue;
		if (!vt_hooks[i].tp) {
			pr_err("tracepoint %s not found\n", vt_hooks[i].name);
			ret = -ENOENT;
			goto err;
		}
		ret = tracepoint_probe_register(vt_hooks[i].tp,
						vt_hooks[i].probe, NULL);
		if (ret) {
			pr_err("cannot hook tracepoint %s: %d\n",
			       vt_hooks[i].name, ret);
			goto err;
		}
		vt_hooks[i].registered = true;
	}
	return 0;
err:
	vt_unhook();
	return ret;
}

#ifdef VMTRACE_HAVE_TDP_SPTE_CHANGED
#define VT_TDP_STATE (tdp_mmu_map ? "on" : "off")
static int vt_tdp_events_init(void)
{
	return __lttng_events_init__kvm_tdp_mmu();
}

static void vt_tdp_events_exit(void)
{
	__lttng_events_exit__kvm_tdp_mmu();
}
#else
#define VT_TDP_STATE "left out of this build"
static int vt_tdp_events_init(void)
{
	return 0;
}

static void vt_tdp_events_exit(void)
{
}
#endif

static int __init vt_host_init(void)
{
	int ret;

	vt_check_hook_protos();
	wrapper_vmalloc_sync_mappings();
	vt_kvm_x86_ops = (void *)kallsyms_lookup_dataptr("kvm_x86_ops");
	if (!vt_kvm_x86_ops || !vt_kvm_x86_ops->get_exit_info ||
	    !vt_kvm_x86_ops->get_cpl) {
		pr_err("kvm_x86_ops not found or no vendor module (kvm_amd/kvm_intel) loaded\n");
		return -ENODEV;
	}
	vcpu_slots = kcalloc(1U << VCPU_SLOTS_BITS, sizeof(*vcpu_slots),
			     GFP_KERNEL);
	if (!vcpu_slots)
		return -ENOMEM;

	ret = __lttng_events_init__kvm_x86();
	if (ret)
		goto err_x86;
	ret = __lttng_events_init__kvm_vm();
	if (ret)
		goto err_vm;
	ret = vt_tdp_events_init();
	if (ret)
		goto err_tdp;

	ret = vt_hook();
	if (ret)
		goto err_hooks;
	vt_msr_user_probe();
	pr_info("loaded: vmsync hypercall %#lx, TDP MMU mappings %s\n",
		hc_nr, VT_TDP_STATE);
	return 0;

err_hooks:
	vt_tdp_events_exit();
err_tdp:
	__lttng_events_exit__kvm_vm();
err_vm:
	__lttng_events_exit__kvm_x86();
err_x86:
	kfree(vcpu_slots);
	return ret;
}

static void __exit vt_host_exit(void)
{
	vt_msr_user_unprobe();
	vt_unhook();
	vt_tdp_events_exit();
	__lttng_events_exit__kvm_vm();
	__lttng_events_exit__kvm_x86();
	kfree(vcpu_slots);
}

module_init(vt_host_init);
module_exit(vt_host_exit);

MODULE_LICENSE("GPL and additional rights");
MODULE_DESCRIPTION("vmtrace LTTng host probes (KVM exits, TDP mappings, VM identity, vmsync)");
MODULE_SOFTDEP("pre: kvm");
