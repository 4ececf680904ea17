/* kmemu vmem reference shim for <sys/lock.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
