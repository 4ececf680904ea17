/* kmemu vmem reference shim for <sys/kernel.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
