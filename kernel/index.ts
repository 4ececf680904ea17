// The modeled kernel: the one public surface of kernel/.
export { Kernel, kernelLabels, SMP_MAXCPU, MAX_MAPENT, VMEPERCPU } from './kernel.js';
export type { KernelLabel, PhysSegment } from './kernel.js';
export { boot } from './boot.js';
export { KernelPanic, panic } from './panic.js';
export * from './param.js';
export { struct, array, embed } from './struct.js';
export type { Layout, FieldType } from './struct.js';
export { globaldata, thread, GD_THREAD_OFFSET } from './globaldata.js';
export * from './structs.js';
export * from './sync.js';
export * from './vm_page.js';
export * from './vm_object.js';
export * from './pmap.js';
export * from './vm_map.js';
export * from './vm_fault.js';
export * from './vm_kern.js';
export { sysctls, sysctl } from './sysctl.js';
export type { SysctlEntry } from './sysctl.js';
