/* kmemu vmem reference shim for <vm/pmap.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
