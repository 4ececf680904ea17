/* kmemu vmem reference shim for <sys/param.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
