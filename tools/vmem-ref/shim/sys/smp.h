/* kmemu vmem reference shim for <sys/smp.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
