/* kmemu vmem reference shim for <vm/uma_int.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
