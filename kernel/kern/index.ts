// Machine-independent kernel services (FreeBSD's and DragonFly's sys/kern, with the few sys/
// headers they share): panic, struct layouts in emulated memory, the per-CPU globaldata, locks
// and sleep, the kernel's state and boot, sysctl, malloc(9), vmem and mbufs. The one public surface of
// kernel/kern/. The modules other folders use at load time (the layouts, the locks) come first:
// kernel/'s folders import each other, and this order lets every module's top level find them.
export * from './panic.js';
export * from './struct.js';
export * from './kern_environment.js';
export * from './globaldata.js';
export * from './sync.js';
export * from './structs.js';
export * from './kernel.js';
export * from './boot.js';
export * from './kern_sysctl.js';
export * from './kern_malloc.js';
export * from './subr_vmem.js';
export * from './mbuf.js';
export * from './kern_mbuf.js';
export * from './uipc_mbuf.js';
export * from './subr_trap.js';
export * from './kernel-state.js';
