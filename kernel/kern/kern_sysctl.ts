// sysctl(3) names the kernel publishes, read functionally (a view charges no cycles and
// disturbs no cache).
//
// vm.kmem_size, vm.kmem_map_size and vm.kmem_map_free are FreeBSD 10–11's (kern_malloc.c):
// vm_kmem_size, and vmem_size(kmem_arena, VMEM_ALLOC / VMEM_FREE). They exist only with the
// boot tunable vm.kmem_backend=vmem: with the default DragonFly-style backend there is no
// kmem arena or kmem_map submap whose size they could report (UMA allocates from kernel_map,
// whose figures are vm.kvm_size and vm.kvm_free), so they are absent, as an unknown oid.

import { UserError } from '../../emu/index.js';
import { type Kernel } from './kernel.js';
import { KvaSize, PAGE_SIZE, ptoa } from '../amd64/index.js';
import { vmmeter, vmstats } from './structs.js';
import { GD_CNT_OFFSET } from './globaldata.js';
import { vmem } from './subr_vmem.js';
import { mbuf_started, nmbclusters } from './kern_mbuf.js';

const hasArenas = (k: Kernel): boolean => k.kmem_arena !== 0;
const arenaU64 = (k: Kernel, field: number): number => k.peek64(k.kmem_arena + field);
import { sysctl_vm_zone, umaPages, umaZoneStats } from '../vm/index.js';

export interface SysctlEntry {
  name: string;
  description: string;
  value: (k: Kernel) => number | string;
  /** For a writable name: sets the value (functionally, as a sysctl(8) write would). */
  set?: (k: Kernel, value: number) => void;
  /** For a writable name: the values it takes, inclusive. */
  range?: readonly [min: number, max: number];
  /** Whether this kernel has the name (absent: always). */
  present?: (k: Kernel) => boolean;
}

/** INT_MAX: the largest value of a SYSCTL_INT. */
const INT_MAX = 2 ** 31 - 1;

const u32 = (addr: (k: Kernel) => number) => (k: Kernel) => k.peek32(addr(k));

function stat(field: keyof typeof vmstats & string) {
  return (k: Kernel) => k.peek32(k.vmstats + (vmstats as unknown as Record<string, number>)[field]!);
}

/** A vmmeter counter, summed over the CPUs' gd_cnt as vm_meter's sysctls do. */
function meter(field: keyof typeof vmmeter & string) {
  return (k: Kernel) => {
    let n = 0;
    for (let c = 0; c < k.ncpus; c++) n += k.peek32(k.gd(c) + GD_CNT_OFFSET + (vmmeter as unknown as Record<string, number>)[field]!);
    return n;
  };
}

export const sysctls: readonly SysctlEntry[] = [
  { name: 'hw.ncpu', description: 'Number of active CPUs', value: (k) => k.ncpus },
  { name: 'hw.physmem', description: 'Bytes of physical memory the kernel found', value: (k) => ptoa(k.physmem) },
  { name: 'hw.pagesize', description: 'Bytes per page', value: () => PAGE_SIZE },
  { name: 'vm.kvm_size', description: 'Size of kernel virtual memory', value: () => KvaSize },
  {
    name: 'vm.kvm_free',
    description: 'Kernel virtual memory without page tables yet (virtual_end - kernel_vm_end)',
    value: (k) => k.virtual_end - k.peek64(k.kernel_vm_end),
  },
  { name: 'vm.stats.vm.v_page_count', description: 'Pages managed by the VM', value: stat('v_page_count') },
  { name: 'vm.stats.vm.v_free_count', description: 'Free pages', value: stat('v_free_count') },
  { name: 'vm.stats.vm.v_wire_count', description: 'Wired pages', value: stat('v_wire_count') },
  { name: 'vm.stats.vm.v_active_count', description: 'Active pages', value: stat('v_active_count') },
  { name: 'vm.stats.vm.v_inactive_count', description: 'Inactive pages', value: stat('v_inactive_count') },
  { name: 'vm.stats.vm.v_free_reserved', description: 'Pages reserved for deadlock avoidance', value: stat('v_free_reserved') },
  { name: 'vm.stats.vm.v_free_min', description: 'Minimum low-free-pages threshold', value: stat('v_free_min') },
  { name: 'vm.stats.vm.v_free_target', description: 'Desired free pages', value: stat('v_free_target') },
  { name: 'vm.stats.vm.v_interrupt_free_min', description: 'Reserved pages for interrupt code', value: stat('v_interrupt_free_min') },
  { name: 'vm.stats.vm.v_cache_min', description: 'Min pages on cache queue', value: stat('v_cache_min') },
  { name: 'vm.stats.vm.v_pdwakeups', description: 'Pagedaemon wakeups', value: meter('v_pdwakeups') },
  { name: 'vm.stats.vm.v_tfree', description: 'Pages freed', value: meter('v_tfree') },
  { name: 'vm.stats.vm.v_zfod', description: 'Pages zero-filled on demand', value: meter('v_zfod') },
  { name: 'vm.nkpt', description: 'Kernel page-table pages allocated by pmap_growkernel', value: u32((k) => k.nkpt) },
  { name: 'vm.zone_kmem_pages', description: 'Number of interrupt safe pages allocated by zone', value: u32((k) => k.zone_kmem_pages) },
  {
    name: 'vm.zone_burst',
    description: 'Burst from depot to pcpu cache',
    value: u32((k) => k.zone_burst),
    set: (k, v) => k.poke32(k.zone_burst, v),
    // Upstream's SYSCTL_INT takes any int, and zalloc's do-while moves one item for any value
    // below 1; the model refuses those rather than pretend they mean something else.
    range: [1, INT_MAX],
  },
  { name: 'vm.zone_kmem_kvaspace', description: 'KVA space allocated by zone', value: (k) => k.peek64(k.zone_kmem_kvaspace) },
  { name: 'vm.zone', description: 'Zone Info', value: (k) => sysctl_vm_zone(k) },
  { name: 'vm.zone_kern_pages', description: 'Number of non-interrupt safe pages allocated by zone', value: u32((k) => k.zone_kern_pages) },
  { name: 'vm.zone_count', description: 'Number of UMA zones', value: (k) => umaZoneStats(k).length },
  { name: 'vm.uma_kmem_pages', description: 'Pages UMA slabs hold from the backend (boot pages not counted)', value: (k) => umaPages(k).kmem },
  { name: 'vm.uma_reclaimed_pages', description: 'Pages uma_reclaim and zone_drain gave back to the VM', value: (k) => umaPages(k).reclaimed },
  { name: 'vm.uma_boot_pages_free', description: 'Boot pages UMA has not used yet', value: (k) => umaPages(k).bootFree },
  { name: 'kern.ipc.nmbclusters', description: 'Maximum number of mbuf clusters allowed', value: (k) => nmbclusters(k), present: mbuf_started },
  { name: 'vm.kmem_size', description: 'Size of kernel memory', value: (k) => k.peek64(k.vm_kmem_size), present: hasArenas },
  { name: 'vm.kmem_map_size', description: 'Current kmem allocation size', value: (k) => arenaU64(k, vmem.vm_inuse), present: hasArenas },
  {
    name: 'vm.kmem_map_free',
    description: 'Free space in kmem',
    value: (k) => arenaU64(k, vmem.vm_size) - arenaU64(k, vmem.vm_inuse),
    present: hasArenas,
  },
  { name: 'vm.kmem_large_pages', description: 'Pages of malloc(9) allocations larger than KMEM_ZMAX', value: (k) => umaPages(k).largeMalloc },
];

/**
 * Why `name` cannot be set to `value` (one sentence naming the sysctl and what it takes), or
 * undefined when it can.
 */
export function sysctlCheck(name: string, value: number): string | undefined {
  const e = sysctls.find((s) => s.name === name);
  if (e === undefined) return `${name} is not a sysctl of this kernel`;
  if (e.set === undefined) return `${name} is not a writable sysctl of this kernel`;
  const [min, max] = e.range ?? [0, 2 ** 32 - 1];
  if (!Number.isInteger(value) || value < min || value > max) return `${name} takes an integer from ${min} to ${max}, not ${value}`;
  return undefined;
}

/**
 * Sets a writable sysctl; returns false when the name is unknown or read-only, and throws a
 * UserError for a value out of its range (sysctlCheck).
 */
export function sysctlSet(k: Kernel, name: string, value: number): boolean {
  const e = sysctls.find((s) => s.name === name);
  if (e?.set === undefined) return false;
  const problem = sysctlCheck(name, value);
  if (problem !== undefined) throw new UserError(problem);
  e.set(k, value);
  return true;
}

/** The names this kernel has (sysctls without those its boot left absent). */
export function kernelSysctls(k: Kernel): SysctlEntry[] {
  return sysctls.filter((s) => s.present === undefined || s.present(k));
}

/** The value of a numeric sysctl name, or undefined when there is no such name. */
export function sysctl(k: Kernel, name: string): number | undefined {
  const v = kernelSysctls(k).find((s) => s.name === name)?.value(k);
  return typeof v === 'number' ? v : undefined;
}
