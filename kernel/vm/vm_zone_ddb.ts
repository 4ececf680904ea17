// A ddb-style view of DragonFly vm_zones: a zone's per-CPU free lists, its locked list and the
// cache lines they sit in, read functionally (Kernel.peek*: no cycles, no cache or TLB
// effects), for `kmemu view`.
//
// DragonFly has no ddb command for zones (sys/vm/vm_zone.c has only the vm.zone sysctl); this
// is named as FreeBSD names its `show uma` (db_show_uma) and shows what that would for
// vm_zone.c's structures. Deviations: it returns structures instead of printing; the cache
// lines (`lines`) are kmemu's.

import { hex64 } from '../../emu/index.js';
import { type Kernel, spinlock } from '../kern/index.js';
import { walkList, type ZoneLineShow, type ZoneLockShow, ZoneLines } from './ddb_lines.js';
import { vm_zone, vm_zone_zpcpu, vm_zpcpu, type VmZone, zoneStats, type ZoneStats } from './vm_zone.js';

/** One CPU's free list (zitems_pcpu[cpu], zfreecnt_pcpu[cpu]; or its vm_zpcpu). */
export interface VmZoneCacheShow {
  cpu: number;
  count: number;
  /** The list from its head, at most maxItems. */
  items: number[];
}

export interface VmZoneShow {
  va: number;
  name: string;
  /** zsize: the item size, rounded to ZONE_ROUNDING. */
  size: number;
  pcpu: boolean;
  aligned: boolean;
  /** zlock, the zone spinlock. */
  lock: ZoneLockShow;
  /** One per CPU; empty when per-CPU lists are off. */
  caches: VmZoneCacheShow[];
  /** The list under the spinlock: zfreecnt, and zitems from its head (at most maxItems). */
  locked: { count: number; items: number[] };
  used: number;
  freeItems: number;
  lines: ZoneLineShow[];
}

/** One zone (a handle, or its header's address) in depth; maxItems: items shown per list. */
export function db_show_vm_zone(k: Kernel, zone: VmZone | number, maxItems = 16): VmZoneShow {
  const z = typeof zone === 'number' ? zone : zone.z;
  const listed = zoneList(k);
  const i = listed.indexOf(z);
  if (i < 0) throw new Error(`db_show_vm_zone: 0x${hex64(z)} is not a zone on the zone list`);
  const h = typeof zone === 'number' ? handleOf(k, z) : zone;
  return show(k, h, zoneStats(k)[i]!, maxItems);
}

/** Every zone, in the zone list's order (newest first, as sysctl vm.zone lists them). */
export function db_show_vm_zones(k: Kernel, maxItems = 16): VmZoneShow[] {
  const stats = zoneStats(k);
  return zoneList(k).map((z, i) => show(k, handleOf(k, z), stats[i]!, maxItems));
}

function handleOf(k: Kernel, z: number): VmZone {
  return k.zones.get(z) ?? { z, aligned: false, pcpu: true };
}

/** The zones' addresses, walked as zoneStats walks them. */
function zoneList(k: Kernel): number[] {
  const out: number[] = [];
  for (let z = k.peekPtr(k.zlist); z !== 0; z = k.peekPtr(z + (handleOf(k, z).aligned ? vm_zone_zpcpu : vm_zone).zlink_next)) out.push(z);
  return out;
}

function show(k: Kernel, h: VmZone, s: ZoneStats, maxItems: number): VmZoneShow {
  const L = h.aligned ? vm_zone_zpcpu : vm_zone;
  const z = h.z;
  const read = (va: number) => k.peekPtr(va);
  const head = (c: number) => (h.aligned ? z + vm_zone_zpcpu.zpcpu + c * vm_zpcpu.sizeof + vm_zpcpu.zitems : z + vm_zone.zitems_pcpu + c * 8);
  const count = (c: number) => (h.aligned ? z + vm_zone_zpcpu.zpcpu + c * vm_zpcpu.sizeof + vm_zpcpu.zfreecnt : z + vm_zone.zfreecnt_pcpu + c * 4);
  const cpus = h.pcpu ? [...Array(k.ncpus).keys()] : [];

  const lines = new ZoneLines();
  lines.add(z + L.zitems, L.sizeof - L.zitems, 'zone header');
  lines.add(z + L.zlock, spinlock.sizeof, 'lock');
  if (h.aligned) {
    for (const c of cpus) lines.addCpu(z + vm_zone_zpcpu.zpcpu + c * vm_zpcpu.sizeof, vm_zpcpu.sizeof, c, 'free list', 'free lists');
  } else {
    // Upstream's two arrays: several CPUs' heads (CPUs 0-6's on the lock's line), or counts, share each line.
    for (const c of cpus) lines.addCpu(head(c), 8, c, 'free list head', 'free list heads');
    for (const c of cpus) lines.addCpu(count(c), 4, c, 'free count', 'free counts');
  }

  const lockVa = z + L.zlock + spinlock.counta;
  return {
    va: z, name: s.name, size: s.size, pcpu: h.pcpu, aligned: h.aligned,
    lock: { va: lockVa, word: k.peek32(lockVa) },
    caches: cpus.map((cpu) => ({ cpu, count: k.peek32(count(cpu)), items: walkList(read, head(cpu), 0, maxItems) })),
    locked: { count: k.peek32(z + L.zfreecnt), items: walkList(read, z + L.zitems, 0, maxItems) },
    used: s.used, freeItems: s.free, lines: lines.list(),
  };
}
