/* kmemu vmem reference shim for <vm/vm_extern.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
