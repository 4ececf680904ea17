/* kmemu vmem reference shim for <sys/hash.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
