// SPDX-License-Identifier: GPL-2.0-only
/* Kbuild: the kvm_tdp_mmu_spte_changed tracepoint has the prototype of
 * vt_tdp_spte_changed() (the kvm_tdp_mmu_map events).
 */
#include <linux/kvm_host.h>
#include <kvm_cache_regs.h>
#include <mmu.h>
#include <mmu/mmu_internal.h>
#include <mmu/spte.h>
#include <trace.h>
#include <mmu/mmutrace.h>
#include <vmtrace/hook_protos.h>

_Static_assert(__same_type(&register_trace_kvm_tdp_mmu_spte_changed,
			   int (*)(VMTRACE_TDP_SPTE_CHANGED_HOOK, void *)),
	       "kvm_tdp_mmu_spte_changed");
