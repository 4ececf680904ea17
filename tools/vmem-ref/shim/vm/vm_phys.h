/* kmemu vmem reference shim for <vm/vm_phys.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
