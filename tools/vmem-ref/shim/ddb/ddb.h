/* kmemu vmem reference shim for <ddb/ddb.h>: see ../kmemu_shim.h. */
#include "../kmemu_shim.h"
