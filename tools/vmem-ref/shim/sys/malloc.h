/* kmemu vmem reference shim for <sys/malloc.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
