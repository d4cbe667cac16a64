// SPDX-License-Identifier: GPL-2.0-only
/* Kbuild: handle_mm_fault() has the arguments gmm_fault_entry() reads. */
#include <linux/mm.h>
#include <vmtrace/hook_protos.h>

_Static_assert(__same_type(&handle_mm_fault, VMTRACE_HANDLE_MM_FAULT_TYPE),
	       "handle_mm_fault");
