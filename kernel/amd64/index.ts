// Machine-dependent code for the emulated x86_64 (FreeBSD's sys/amd64): the page size and the
// kernel's address map (machine/param.h, vmparam.h), the block copy and zeroing routines
// (amd64/support.S) and the pmap (amd64/pmap.c). The one public surface of kernel/amd64/.
export * from './param.js';
export * from './support.js';
export * from './pmap.js';
