/* kmemu vmem reference shim for <vm/vm_pagequeue.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
