/* kmemu vmem reference shim for <sys/taskqueue.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
