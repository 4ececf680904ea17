/* kmemu vmem reference shim for <sys/sysctl.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
