// SPDX-License-Identifier: GPL-2.0-only
/* Kbuild: unmap_vmas() has the arguments gmm_unmap_pre() reads. */
#include <linux/mm.h>
#include <vmtrace/hook_protos.h>

_Static_assert(__same_type(&unmap_vmas, VMTRACE_UNMAP_VMAS_TYPE),
	       "unmap_vmas");
