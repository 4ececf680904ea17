/* kmemu vmem reference shim for <sys/vmmeter.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
