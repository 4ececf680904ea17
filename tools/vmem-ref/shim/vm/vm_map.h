/* kmemu vmem reference shim for <vm/vm_map.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
