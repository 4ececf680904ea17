// The modeled kernel, laid out as the source tree its reader knows: kernel/amd64/ (machine-
// dependent: param, support, pmap), kernel/kern/ (kernel state and boot, locks and sleep,
// sysctl, malloc(9), vmem) and kernel/vm/ (pages, objects, maps, faults, vm_kern, vm_zone, UMA).
// The one public surface of kernel/: each folder is entered through its own index.ts.
export * from './amd64/index.js';
export * from './kern/index.js';
export * from './vm/index.js';
