// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmtrace host probes: KVM entry/exit/TDP-fault events, the VM's port I/O,
 * MMIO, MSR accesses, interrupt injections and hypercalls, TDP MMU GPA->HPA
 * mappings attributed to their VM, VM and vCPU identity (live and as a
 * statedump), and the host half of the vmsync handshake.
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
#include <vmtrace/vmsync.h>

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
#define TRACE_INCLUDE_FILE vmsync_host
#include <vmtrace_events/vmsync_host.h>
#undef TRACE_INCLUDE_FILE

#undef LTTNG_TRACEPOINT_EVENT_H
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_FILE kvm_vm
#include <vmtrace_events/kvm_vm.h>
#undef TRACE_INCLUDE_FILE

#undef LTTNG_TRACEPOINT_EVENT_H
#define CREATE_TRACE_POINTS
#define TRACE_INCLUDE_FILE kvm_tdp_mmu
#include <vmtrace_events/kvm_tdp_mmu.h>
#undef TRACE_INCLUDE_FILE

LTTNG_DEFINE_TRACE(vmsync_gh_host,
	PARAMS(u32 cnt, u64 vm_uid, u32 vcpu_id),
	PARAMS(cnt, vm_uid, vcpu_id));
LTTNG_DEFINE_TRACE(vmsync_hg_host,
	PARAMS(u32 cnt, u64 vm_uid, u32 vcpu_id),
	PARAMS(cnt, vm_uid, vcpu_id));
LTTNG_DEFINE_TRACE(kvm_vm_vcpu_thread,
	PARAMS(s32 vm_pid, u32 vcpu_id, s32 tid, u32 nr_vcpus,
		const char *vm_comm),
	PARAMS(vm_pid, vcpu_id, tid, nr_vcpus, vm_comm));
LTTNG_DEFINE_TRACE(kvm_vm_statedump_vm,
	PARAMS(s32 vm_pid, s32 owner_pid, u32 nr_vcpus, const char *vm_comm),
	PARAMS(vm_pid, owner_pid, nr_vcpus, vm_comm));
LTTNG_DEFINE_TRACE(kvm_vm_statedump_vcpu,
	PARAMS(s32 vm_pid, u32 vcpu_id, s32 tid),
	PARAMS(vm_pid, vcpu_id, tid));
LTTNG_DEFINE_TRACE(kvm_tdp_mmu_map,
	PARAMS(s32 vm_pid, u8 as_id, u64 gfn, u64 pfn, u64 old_pfn,
		u8 level, u8 op),
	PARAMS(vm_pid, as_id, gfn, pfn, old_pfn, level, op));

/* ---- parameters ------------------------------------------------------ */

static unsigned long hc_nr = VMSYNC_HC_NR_DEFAULT;

static int hc_nr_set(const char *val, const struct kernel_param *kp)
{
	unsigned long v;

	if (kstrtoul(val, 0, &v) || v < VMSYNC_HC_NR_MIN || v > VMSYNC_HC_NR_MAX) {
		pr_err("hc_nr=%s refused: must be in [%#lx, %#lx], below is KVM's own hypercall range\n",
		       val, VMSYNC_HC_NR_MIN, VMSYNC_HC_NR_MAX);
		return -EINVAL;
	}
	*(unsigned long *)kp->arg = v;
	return 0;
}

static const struct kernel_param_ops hc_nr_ops = {
	.set = hc_nr_set,
	.get = param_get_ulong,
};
module_param_cb(hc_nr, &hc_nr_ops, &hc_nr, 0444);
MODULE_PARM_DESC(hc_nr, "vmsync hypercall number (same as the guests' module)");

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

struct vm_slot {
	struct kvm *kvm;
	pid_t vm_pid;		/* kvm->userspace_pid: the VM's key in events */
	pid_t tgid;		/* process that owns the VM's file */
	unsigned long last_seen;
};

static struct vcpu_slot *vcpu_slots;
static struct vm_slot vm_slots[VM_SLOTS];

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
	struct vm_slot *s, *oldest = NULL;
	int i;

	for (i = 0; i < VM_SLOTS; i++) {
		s = &vm_slots[i];
		if (READ_ONCE(s->kvm) == kvm) {
			s->last_seen = jiffies;
			return;
		}
	}
	for (i = 0; i < VM_SLOTS; i++) {
		s = &vm_slots[i];
		if (!oldest || time_before(s->last_seen, oldest->last_seen))
			oldest = s;
		if (!READ_ONCE(s->kvm))
			break;
	}
	s = i < VM_SLOTS ? s : oldest;
	WRITE_ONCE(s->vm_pid, kvm->userspace_pid);
	WRITE_ONCE(s->tgid, tgid);
	s->last_seen = jiffies;
	WRITE_ONCE(s->kvm, kvm);
}

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
		if (READ_ONCE(vm_slots[i].kvm) && READ_ONCE(vm_slots[i].tgid) == tgid)
			return READ_ONCE(vm_slots[i].vm_pid);
	}
	return 0;
}

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

/* ---- statedump ------------------------------------------------------- */

struct vt_dump_ctx {
	struct task_struct *task;
};

static int vt_dump_fd(const void *arg, struct file *file, unsigned int fd)
{
	const struct vt_dump_ctx *ctx = arg;
	const char *name = file->f_path.dentry->d_name.name;
	char comm[TASK_COMM_LEN];

	/* KVM's anonymous inodes are named kvm-vm and kvm-vcpu:N. */
	if (!strcmp(name, "kvm-vm")) {
		struct kvm *kvm = file->private_data;

		vt_comm(comm, ctx->task);
		vm_slot_note(kvm, task_tgid_nr(ctx->task));
		trace_kvm_vm_statedump_vm(kvm->userspace_pid,
					  task_tgid_nr(ctx->task),
					  atomic_read(&kvm->online_vcpus), comm);
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
	}
	return 0;
}

/*
 * Runs inside LTTng's statedump (its lttng_statedump_end tracepoint), so the
 * VMs that already exist are described in every session that starts.
 */
static void vt_statedump(void *data, struct lttng_kernel_session *session)
{
	struct task_struct *p;
	struct vt_dump_ctx ctx;

	rcu_read_lock();
	for_each_process(p) {
		task_lock(p);
		if (p->files && !(p->flags & PF_KTHREAD)) {
			ctx.task = p;
			iterate_fd(p->files, 0, vt_dump_fd, &ctx);
		}
		task_unlock(p);
	}
	rcu_read_unlock();
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
	{ "kvm_tdp_mmu_spte_changed", vt_tdp_spte_changed, &tdp_mmu_map },
	{ "lttng_statedump_end", vt_statedump, NULL },
};

/* Our hook functions must have the kernel's tracepoint prototypes. */
static inline void vt_check_hook_protos(void)
{
	BUILD_BUG_ON(!__same_type(&register_trace_kvm_entry,
		int (*)(typeof(&vt_kvm_entry), void *)));
	BUILD_BUG_ON(!__same_type(&register_trace_kvm_hypercall,
		int (*)(typeof(&vt_kvm_hypercall), void *)));
	BUILD_BUG_ON(!__same_type(&register_trace_kvm_tdp_mmu_spte_changed,
		int (*)(typeof(&vt_tdp_spte_changed), void *)));
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
	ret = __lttng_events_init__vmsync();
	if (ret)
		goto err_vmsync;
	ret = __lttng_events_init__kvm_vm();
	if (ret)
		goto err_vm;
	ret = __lttng_events_init__kvm_tdp_mmu();
	if (ret)
		goto err_tdp;

	ret = vt_hook();
	if (ret)
		goto err_hooks;
	pr_info("loaded: vmsync hypercall %#lx, TDP MMU mappings %s\n",
		hc_nr, tdp_mmu_map ? "on" : "off");
	return 0;

err_hooks:
	__lttng_events_exit__kvm_tdp_mmu();
err_tdp:
	__lttng_events_exit__kvm_vm();
err_vm:
	__lttng_events_exit__vmsync();
err_vmsync:
	__lttng_events_exit__kvm_x86();
err_x86:
	kfree(vcpu_slots);
	return ret;
}

static void __exit vt_host_exit(void)
{
	vt_unhook();
	__lttng_events_exit__kvm_tdp_mmu();
	__lttng_events_exit__kvm_vm();
	__lttng_events_exit__vmsync();
	__lttng_events_exit__kvm_x86();
	kfree(vcpu_slots);
}

module_init(vt_host_init);
module_exit(vt_host_exit);

MODULE_LICENSE("GPL and additional rights");
MODULE_DESCRIPTION("vmtrace LTTng host probes (KVM exits, TDP mappings, VM identity, vmsync)");
MODULE_SOFTDEP("pre: kvm");
