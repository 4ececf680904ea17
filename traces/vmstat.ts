// The kernel's own allocator statistics as data (a report's `vmstat`, with --vmstat --json):
// the rows sysctl vm.zone, vmstat -z and vmstat -m print, from the same kernel functions the
// text printers use (zoneStats, umaZoneStats, mallocTypeStats).

import { z } from 'zod';
import { type Kernel, mallocTypeStats, umaZoneStats, zoneStats } from '../kernel/index.js';

const n = (what: string) => z.number().int().describe(what);

export const vmZoneRowSchema = z
  .object({
    name: z.string().describe('ITEM: the zone\'s name'),
    size: n('SIZE: item size (bytes)'),
    limit: n('LIMIT: zmax, the most items the zone may hold (0: no limit)'),
    used: n('USED: items allocated (ztotal minus the free ones)'),
    free: n('FREE: free items, on the zone\'s list and in the per-CPU caches'),
    requests: n('REQUESTS: allocations served (znalloc)'),
  })
  .describe('one row of sysctl vm.zone');

export const vmstatZRowSchema = z
  .object({
    name: z.string().describe('ITEM: the zone\'s name'),
    size: n('SIZE: item size (bytes)'),
    limit: n('LIMIT: the most items the zone may hold (0: no limit)'),
    used: n('USED: items allocated'),
    free: n('FREE: free items (per-CPU buckets, depot and slabs)'),
    requests: n('REQ: allocations served'),
    fails: n('FAIL: allocations that failed'),
    sleeps: n('SLEEP: allocations that slept for memory'),
  })
  .describe('one row of vmstat -z');

export const vmstatMRowSchema = z
  .object({
    type: z.string().describe('Type: the malloc type\'s short description'),
    inUse: n('InUse: allocations not yet freed'),
    memUse: n('MemUse: bytes allocated and not yet freed (vmstat -m prints KiB, rounded up)'),
    requests: n('Requests: allocations'),
    sizes: z.array(n('a size class (bytes)')).describe('Size(s): the size classes the type allocated from'),
  })
  .describe('one row of vmstat -m');

export const vmstatSchema = z
  .union([
    z.object({ vmZone: z.array(vmZoneRowSchema).describe('sysctl vm.zone, in zone list order') }),
    z.object({
      vmstatZ: z.array(vmstatZRowSchema).describe('vmstat -z, in zone list order'),
      vmstatM: z.array(vmstatMRowSchema).describe('vmstat -m, oldest type first'),
    }),
  ])
  .describe('the kernel\'s allocator statistics at the end of the run: vm.zone (vm_zone), or vmstat -z and -m (UMA)');
export type Vmstat = z.infer<typeof vmstatSchema>;

/** The statistics vmstat(8) and sysctl(8) would show for `allocator` on kernel `k`, as rows. */
export function kernelVmstat(k: Kernel, allocator: 'vmzone' | 'uma'): Vmstat {
  if (allocator === 'vmzone') return { vmZone: zoneStats(k).map((r) => ({ ...r })) };
  return {
    vmstatZ: umaZoneStats(k).map((r) => ({
      name: r.name, size: r.size, limit: r.limit, used: r.used, free: r.free, requests: r.requests, fails: r.fails, sleeps: r.sleeps,
    })),
    vmstatM: mallocTypeStats(k).map((t) => ({ type: t.name, inUse: t.inUse, memUse: t.memUse, requests: t.requests, sizes: [...t.sizes] })),
  };
}
