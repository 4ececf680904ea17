/* kmemu vmem reference shim for <vm/vm_param.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
/*
 * As on amd64 (machine/vmparam.h): UMA gets its pages from the direct map, so subr_vmem.c
 * leaves out vmem_bt_alloc() and the kernel-arena recursion for boundary-tag pages.
 */
#ifndef UMA_MD_SMALL_ALLOC
#define UMA_MD_SMALL_ALLOC
#endif
