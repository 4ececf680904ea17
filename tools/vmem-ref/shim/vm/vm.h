/* kmemu vmem reference shim for <vm/vm.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
