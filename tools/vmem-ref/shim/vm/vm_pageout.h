/* kmemu vmem reference shim for <vm/vm_pageout.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
