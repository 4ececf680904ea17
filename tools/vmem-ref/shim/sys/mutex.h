/* kmemu vmem reference shim for <sys/mutex.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
