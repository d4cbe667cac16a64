// SPDX-License-Identifier: GPL-2.0-only
/* Kbuild: the prototype checks can compile against this kernel at all. */
#include <linux/module.h>
#include <vmtrace/hook_protos.h>
