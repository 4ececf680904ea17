/* kmemu vmem reference shim for <vm/uma.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
