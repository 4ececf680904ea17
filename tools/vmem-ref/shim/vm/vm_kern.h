/* kmemu vmem reference shim for <vm/vm_kern.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
