/* kmemu vmem reference shim for <sys/callout.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
