/* kmemu vmem reference shim for <sys/condvar.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
