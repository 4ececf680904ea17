/* kmemu vmem reference shim for <sys/systm.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
