/* kmemu vmem reference shim for <vm/vm_object.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
