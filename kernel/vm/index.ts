// The virtual memory system (sys/vm): physical pages, objects, maps and faults, the kernel's
// own allocations (vm_kern), DragonFly's vm_zone and FreeBSD's UMA. The one public surface of
// kernel/vm/.
export * from './vm_page.js';
export * from './vm_pageout.js';
export * from './vm_object.js';
export * from './vm_map.js';
export * from './vm_fault.js';
export * from './vm_kern.js';
export * from './vm_zone.js';
export * from './uma_int.js';
export * from './uma_core.js';
export type { ZoneLineShow, ZoneLockShow } from './ddb_lines.js';
export * from './uma_ddb.js';
export * from './vm_zone_ddb.js';
