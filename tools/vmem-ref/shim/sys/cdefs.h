/* kmemu vmem reference shim: libc's sys/cdefs.h plus __FBSDID (the rest is in ../kmemu_shim.h). */
#include_next <sys/cdefs.h>
#ifndef __FBSDID
#define __FBSDID(s)	struct __hack
#endif
