// ddb's view of UMA zones: a zone's per-CPU caches, its bucket depot, its keg's slabs and the
// cache lines all of them sit in, read functionally (Kernel.peek*: no cycles, no cache or TLB
// effects), for `kmemu view`.
//
// Models FreeBSD sys/vm/uma_core.c's `show uma` (DB_SHOW_COMMAND(uma, db_show_uma)), which walks
// every keg's zones and then the cache zones, printing each zone's size, used and free items and
// requests. Deviations:
// - It returns structures instead of printing a table, and shows one zone in depth (its
//   buckets with their items, the depot lists, the slab lists) besides the list of them all.
// - The cache lines under the structures (`lines`) are kmemu's: ddb has no such notion.
// - used / freeItems are umaZoneStats' figures (sysctl_vm_zone_stats' arithmetic), not the
//   2019 uma_zone_sumstat that `show uma` calls.

import { type Kernel } from '../kern/index.js';
import { walkList, type ZoneLineShow, type ZoneLockShow, ZoneLines } from './ddb_lines.js';
import { cacheOf, p, umaHandle, umaReader, umaZoneStats, type UmaZoneStats } from './uma_core.js';
import {
  mtx, UMA_FRITM_SZ, UMA_FRITMREF_SZ, UMA_ZFLAG_INTERNAL, UMA_ZONE_EXT, UMA_ZONE_REFCNT, ub_bucket, uma_bucket, uma_cache, uma_keg,
  uma_slab, uma_zone, us_freelist, usr_freelist, zoneCacheStride,
} from './uma_int.js';

export interface UmaBucketShow {
  va: number;
  cnt: number;
  entries: number;
  /**
   * ub_bucket[max(0, cnt - maxItems) .. cnt - 1]: the top of the stack (the next item
   * uma_zalloc takes) last; when cnt > maxItems the bottom is left off.
   */
  items: number[];
}

export interface UmaCacheShow {
  cpu: number;
  /** The struct uma_cache. */
  va: number;
  alloc: UmaBucketShow | null;
  free: UmaBucketShow | null;
  /** uc_allocs / uc_frees: not yet folded into the zone's uz_allocs / uz_frees. */
  allocs: number;
  frees: number;
}

export interface UmaSlabShow {
  /** The slab header (on the slab's page, or off page from "UMA Slabs"). */
  va: number;
  freecount: number;
  ipers: number;
}

export interface UmaZoneShow {
  va: number;
  name: string;
  size: number;
  /** uz_flags. */
  flags: number;
  internal: boolean;
  /** The lock uma_zalloc's depot path takes: uz_lock, the keg's uk_lock (or a cache zone's own). */
  lock: ZoneLockShow;
  /** The keg's lock when it is not `lock` (never in this model: a keg's zones use uk_lock, as in 2005). */
  kegLock: ZoneLockShow | null;
  /** One per CPU; empty for internal zones, which have no per-CPU caches. */
  caches: UmaCacheShow[];
  /** The depot: uz_full_bucket and uz_free_bucket, in list order. */
  full: UmaBucketShow[];
  free: UmaBucketShow[];
  /** The keg's slab lists; null for a cache zone (no keg). */
  slabs: { part: UmaSlabShow[]; full: UmaSlabShow[]; free: UmaSlabShow[] } | null;
  used: number;
  freeItems: number;
  lines: ZoneLineShow[];
}

/**
 * Buckets, and separately slab headers, whose lines `lines` lists: a zone with thousands of
 * slabs keeps a readable list (the bucket and slab lists themselves are complete).
 */
const DB_LINES_MAX_BUCKETS = 32;
const DB_LINES_MAX_SLABS = 32;

/** One zone: its caches, depot, slabs and lines (maxItems: items shown per bucket). */
export function db_show_uma_zone(k: Kernel, zone: number, maxItems = 16): UmaZoneShow {
  const s = umaZoneStats(k).find((z) => z.zone === zone);
  if (s === undefined) throw new Error(`db_show_uma_zone: ${p(zone)} is not a zone on UMA's lists`);
  return show(k, s, maxItems);
}

/** Every zone, in umaZoneStats' order (kegs oldest first, each keg's zones, then cache zones). */
export function db_show_uma_zones(k: Kernel, maxItems = 16): UmaZoneShow[] {
  // A zone another CPU's uma_zcreate is still building is on the list before its lock is set
  // (a viewer may pause then): it is left out until it is whole.
  const { rptr } = umaReader(k);
  return umaZoneStats(k).filter((s) => rptr(s.zone + uma_zone.uz_lock) !== 0).map((s) => show(k, s, maxItems));
}

function show(k: Kernel, s: UmaZoneStats, maxItems: number): UmaZoneShow {
  const { r16, r32, r64, rptr } = umaReader(k);
  const z = s.zone;
  const h = umaHandle(k, z);
  const flags = r32(z + uma_zone.uz_flags);
  const keg = rptr(z + uma_zone.uz_keg);
  const lockVa = rptr(z + uma_zone.uz_lock);
  const lockOf = (m: number): ZoneLockShow => ({ va: m + mtx.mtx_lock, word: r32(m + mtx.mtx_lock) });

  const bucket = (b: number): UmaBucketShow | null => {
    if (b === 0) return null;
    const cnt = r16(b + uma_bucket.ub_cnt);
    const items: number[] = [];
    for (let i = Math.max(0, cnt - maxItems); i < cnt; i++) items.push(rptr(b + ub_bucket + i * 8));
    return { va: b, cnt, entries: r16(b + uma_bucket.ub_entries), items };
  };
  const depot = (head: number) => walkList(rptr, z + head, uma_bucket.ub_link_next).map((b) => bucket(b)!);

  const internal = (flags & UMA_ZFLAG_INTERNAL) !== 0;
  const caches: UmaCacheShow[] = [];
  if (!internal) {
    for (let c = 0; c < k.ncpus; c++) {
      const va = cacheOf(h, c);
      caches.push({
        cpu: c, va, alloc: bucket(rptr(va + uma_cache.uc_allocbucket)), free: bucket(rptr(va + uma_cache.uc_freebucket)),
        allocs: r64(va + uma_cache.uc_allocs), frees: r64(va + uma_cache.uc_frees),
      });
    }
  }
  const full = depot(uma_zone.uz_full_bucket);
  const free = depot(uma_zone.uz_free_bucket);

  let slabs: UmaZoneShow['slabs'] = null;
  if (keg !== 0) {
    const ipers = r16(keg + uma_keg.uk_ipers);
    const slabList = (head: number) =>
      walkList(rptr, keg + head, uma_slab.us_link_next).map((va) => ({ va, freecount: r16(va + uma_slab.us_freecount), ipers }));
    slabs = { part: slabList(uma_keg.uk_part_slab), full: slabList(uma_keg.uk_full_slab), free: slabList(uma_keg.uk_free_slab) };
  }

  const lines = new ZoneLines();
  lines.add(z - UMA_ZONE_EXT, UMA_ZONE_EXT + uma_zone.sizeof, 'zone header');
  for (const c of caches) lines.addCpu(c.va, zoneCacheStride(h.aligned), c.cpu, 'cache', 'caches');
  lines.add(lockVa, mtx.sizeof, 'lock');
  const kegLockVa = keg !== 0 ? keg + uma_keg.uk_lock : 0;
  const kegLock = kegLockVa !== 0 && kegLockVa !== lockVa ? lockOf(kegLockVa) : null;
  if (kegLock !== null) lines.add(kegLockVa, mtx.sizeof, 'keg lock');
  if (keg !== 0) lines.add(keg, uma_keg.sizeof, 'keg header');
  const bucketLines: [UmaBucketShow, string][] = [];
  for (const c of caches) for (const b of [c.alloc, c.free]) if (b !== null) bucketLines.push([b, 'bucket']);
  for (const b of [...full, ...free]) bucketLines.push([b, 'depot bucket']);
  for (const [b, what] of bucketLines.slice(0, DB_LINES_MAX_BUCKETS)) lines.add(b.va, ub_bucket + b.entries * 8, `${what} ${p(b.va)}`);
  if (slabs !== null) {
    const refcnt = (r32(keg + uma_keg.uk_flags) & UMA_ZONE_REFCNT) !== 0;
    const hdr = (ipers: number) => (refcnt ? usr_freelist + ipers * UMA_FRITMREF_SZ : us_freelist + ipers * UMA_FRITM_SZ);
    for (const sl of [...slabs.part, ...slabs.full, ...slabs.free].slice(0, DB_LINES_MAX_SLABS)) lines.add(sl.va, hdr(sl.ipers), `slab ${p(sl.va)}`);
  }

  return {
    va: z, name: s.name, size: s.size, flags, internal, lock: lockOf(lockVa), kegLock, caches, full, free, slabs,
    used: s.used, freeItems: s.free, lines: lines.list(),
  };
}
