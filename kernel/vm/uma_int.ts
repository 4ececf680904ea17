// UMA's structures and constants: the public flags of uma.h and the private layouts of
// uma_int.h, LP64, as they live in emulated memory.
//
// Models FreeBSD sys/vm/uma.h (../shared/seeds/freebsd-uma.h-2002.txt) and sys/vm/uma_int.h of
// 2004–2005 (the keg/zone split of mbuma): struct uma_keg, uma_zone with its uz_cpu[] array of
// struct uma_cache, uma_slab with its byte index free list (us_firstfree, us_freelist[]),
// uma_bucket, uma_hash. Deviations:
// - Flag values follow the 2013 headers, where the later flags (NOBUCKET, MAXBUCKET, the
//   UMA_ZFLAG_* bits in the top of a 32-bit uz_flags) have room; the 2002 ones keep theirs.
// - struct uma_zone is 2005's (120 bytes, uz_cpu[] after it); the fields kmemu adds from later
//   eras (the 2019 depot counters uz_bktcount / uz_bktmax and working-set estimate uz_wssize,
//   uz_imin, uz_imax; uz_flags, uz_size, uz_sleeps, uz_count_min, the cache zones' import and
//   release) sit in a block right below the zone's address, at negative offsets.
// - struct mtx is a spinlock word plus upstream's lock_object fields, 32 bytes as on amd64.

import { PAGE_SIZE } from '../amd64/index.js';
import { array, embed, spinlock, struct } from '../kern/index.js';

export const UMA_SLAB_SIZE = PAGE_SIZE;
export const UMA_SLAB_MASK = PAGE_SIZE - 1;
export const UMA_SLAB_SHIFT = 12;
/** Smallest item (uma.h: PAGE_SIZE / 256). */
export const UMA_SMALLEST_UNIT = PAGE_SIZE / 256;
/** Wasted space that makes a keg try off-page slab headers (uma_int.h: a tenth of a slab). */
export const UMA_MAX_WASTE = Math.floor(UMA_SLAB_SIZE / 10);
/** Bytes of free-list index per item (us_freelist[i].us_item). */
export const UMA_FRITM_SZ = 1;
/** The free-list index of an allocated item under INVARIANTS (uma_dbg.c). */
export const UMA_DBG_ALLOCATED = 255;
/** Items a slab can index with one byte each, 255 being the allocated marker. */
export const UMA_MAX_IPERS = 254;
export const UMA_HASH_SIZE_INIT = 32;
/** Pages of .bss that feed slabs before the VM can (vm.boot_pages). */
export const UMA_BOOT_PAGES = 30;

// uma_zcreate flags (uma.h)
export const UMA_ZONE_PAGEABLE = 0x0001;
export const UMA_ZONE_ZINIT = 0x0002;
export const UMA_ZONE_STATIC = 0x0004;
export const UMA_ZONE_OFFPAGE = 0x0008;
export const UMA_ZONE_MALLOC = 0x0010;
export const UMA_ZONE_NOFREE = 0x0020;
export const UMA_ZONE_MTXCLASS = 0x0040;
export const UMA_ZONE_VM = 0x0080;
export const UMA_ZONE_HASH = 0x0100;
export const UMA_ZONE_SECONDARY = 0x0200;
export const UMA_ZONE_REFCNT = 0x0400;
export const UMA_ZONE_MAXBUCKET = 0x0800;
export const UMA_ZONE_CACHESPREAD = 0x1000;
export const UMA_ZONE_VTOSLAB = 0x2000;
export const UMA_ZONE_NODUMP = 0x4000;
export const UMA_ZONE_PCPU = 0x8000;
export const UMA_ZONE_NOBUCKET = 0x10000;
/** Zone flags a zone inherits from its keg. */
export const UMA_ZONE_INHERIT = UMA_ZONE_OFFPAGE | UMA_ZONE_MALLOC | UMA_ZONE_NOFREE | UMA_ZONE_HASH | UMA_ZONE_VTOSLAB;

// Internal flags (uma_int.h)
export const UMA_ZFLAG_MULTI = 0x04000000;
export const UMA_ZFLAG_DRAINING = 0x08000000;
export const UMA_ZFLAG_BUCKET = 0x10000000;
export const UMA_ZFLAG_INTERNAL = 0x20000000;
export const UMA_ZFLAG_FULL = 0x40000000;
export const UMA_ZFLAG_CACHEONLY = 0x80000000;
export const UMA_ZFLAG_PRIVALLOC = 0x00100000;
export const UMA_ZFLAG_INHERIT = UMA_ZFLAG_INTERNAL | UMA_ZFLAG_CACHEONLY | UMA_ZFLAG_BUCKET;

// Alignment masks (uma.h); UMA_ALIGN_CACHE is the boot-time uma_align_cache of amd64.
export const UMA_ALIGN_PTR = 8 - 1;
export const UMA_ALIGN_LONG = 8 - 1;
export const UMA_ALIGN_INT = 4 - 1;
export const UMA_ALIGN_SHORT = 2 - 1;
export const UMA_ALIGN_CHAR = 1 - 1;
export const UMA_ALIGN_CACHE = 64 - 1;

// Slab flags, set by the backend allocf and seen by the freef (uma.h)
export const UMA_SLAB_BOOT = 0x01;
export const UMA_SLAB_KMEM = 0x02;
export const UMA_SLAB_KERNEL = 0x04;
export const UMA_SLAB_PRIV = 0x08;
export const UMA_SLAB_OFFP = 0x10;
export const UMA_SLAB_MALLOC = 0x20;

// malloc(9) / uma_zalloc wait flags (sys/malloc.h)
export const M_NOWAIT = 0x0001;
export const M_WAITOK = 0x0002;
export const M_ZERO = 0x0100;
export const M_NOVM = 0x0200;
export const M_USE_RESERVE = 0x0400;

/** struct mtx: the lock word (a spinlock here) and lock_object's fields. */
export const mtx = struct('mtx', [
  ['mtx_lock', embed(spinlock)],
  ['lo_name', 'ptr'],
  ['lo_flags', 'u32'],
  ['lo_data', 'u32'],
  ['lo_witness', 'ptr'],
]);

/** struct uma_hash: off-page slab headers found by the page address. */
export const uma_hash = struct('uma_hash', [
  ['uh_slab_hash', 'ptr'],
  ['uh_hashsize', 'u32'],
  ['uh_hashmask', 'u32'],
]);

/**
 * struct uma_slab; us_freelist[uk_ipers] (one byte each) follows. us_size (the bytes of a
 * large malloc) shares its word with us_link as upstream's union does.
 */
export const uma_slab = struct('uma_slab', [
  ['us_keg', 'ptr'],
  ['us_link_next', 'ptr'], // LIST_ENTRY us_link; us_size for UMA_SLAB_MALLOC slabs
  ['us_link_prev', 'ptr'],
  ['us_hlink', 'ptr'], // SLIST_ENTRY in the keg's hash
  ['us_data', 'ptr'],
  ['us_flags', 'u16'],
  ['us_freecount', 'u16'],
  ['us_firstfree', 'u8'],
]);
export const us_size = uma_slab.us_link_next;
export const us_freelist = uma_slab.sizeof;

/**
 * struct uma_slab_refcnt (UMA_ZONE_REFCNT kegs, mbuma 2004): uma_slab's header, then
 * us_freelist[uk_ipers] of { u8 us_item; u32 us_refcnt; }, 8 bytes each on amd64. Its sizeof is
 * upstream's: the header and one entry, which is what keg_small_init sets aside.
 */
export const UMA_FRITMREF_SZ = 8;
export const usr_freelist = uma_slab.sizeof;
export const usr_item = 0;
export const usr_refcnt = 4;
export const uma_slab_refcnt_sizeof = usr_freelist + UMA_FRITMREF_SZ;

/** struct uma_bucket; ub_bucket[ub_entries] (pointers) follows. */
export const uma_bucket = struct('uma_bucket', [
  ['ub_link_next', 'ptr'],
  ['ub_link_prev', 'ptr'],
  ['ub_cnt', 'u16'],
  ['ub_entries', 'u16'],
]);
export const ub_bucket = uma_bucket.sizeof;

/** struct uma_cache as upstream (2005): 32 bytes, two CPUs to a cache line. */
export const uma_cache = struct('uma_cache', [
  ['uc_freebucket', 'ptr'],
  ['uc_allocbucket', 'ptr'],
  ['uc_allocs', 'u64'],
  ['uc_frees', 'u64'],
]);
/** struct uma_cache padded to a cache line of its own (FreeBSD 2019). */
export const uma_cache_aligned = struct('uma_cache (aligned)', [
  ['uc_freebucket', 'ptr'],
  ['uc_allocbucket', 'ptr'],
  ['uc_allocs', 'u64'],
  ['uc_frees', 'u64'],
], 64);

export const UMA_NAME_MAX = 32;

export const uma_keg = struct('uma_keg', [
  ['uk_link_next', 'ptr'],
  ['uk_link_prev', 'ptr'],
  ['uk_lock', embed(mtx)],
  ['uk_hash', embed(uma_hash)],
  ['uk_zones', 'ptr'], // LIST_HEAD of the keg's zones
  ['uk_part_slab', 'ptr'],
  ['uk_free_slab', 'ptr'],
  ['uk_full_slab', 'ptr'],
  ['uk_recurse', 'u32'],
  ['uk_align', 'u32'],
  ['uk_pages', 'u32'],
  ['uk_free', 'u32'],
  ['uk_size', 'u32'],
  ['uk_rsize', 'u32'],
  ['uk_maxpages', 'u32'],
  ['uk_reserve', 'u32'],
  ['uk_init', 'ptr'],
  ['uk_fini', 'ptr'],
  ['uk_allocf', 'ptr'],
  ['uk_freef', 'ptr'],
  ['uk_obj', 'ptr'],
  ['uk_kva', 'ptr'],
  ['uk_slabzone', 'ptr'],
  ['uk_pgoff', 'u16'],
  ['uk_ppera', 'u16'],
  ['uk_ipers', 'u16'],
  ['uk_flags', 'u32'],
  ['uk_name', 'ptr'],
]);

/**
 * struct uma_zone as 2005's uma_int.h (rev 1.37) lays it out on amd64: 116 bytes of fields
 * padded to 120 for uz_cpu[], whose 32-byte uma_caches follow from byte 120 (zoneCacheOffset).
 */
const uma_zone_2005 = struct('uma_zone', [
  ['uz_name', 'ptr'],
  ['uz_lock', 'ptr'], // the keg's uk_lock, or uz_lockstore for a cache-only zone
  ['uz_keg', 'ptr'],
  ['uz_link_next', 'ptr'],
  ['uz_link_prev', 'ptr'],
  ['uz_full_bucket', 'ptr'], // LIST_HEAD: the depot's full buckets
  ['uz_free_bucket', 'ptr'], // LIST_HEAD: the depot's empty buckets
  ['uz_ctor', 'ptr'],
  ['uz_dtor', 'ptr'],
  ['uz_init', 'ptr'],
  ['uz_fini', 'ptr'],
  ['uz_allocs', 'u64'],
  ['uz_frees', 'u64'],
  ['uz_fails', 'u64'],
  ['uz_fills', 'u16'],
  ['uz_count', 'u16'],
]);

/**
 * kmemu's zone fields that 2005's struct uma_zone lacks (the 2013 cache zones' import/release
 * and uz_count_min, later eras' uz_flags, uz_size and uz_sleeps, the 2019 depot counters, a
 * cache-only zone's lock and the name): a block just below the zone's address, so that
 * uma_zone itself, and the lines its fast path touches, are 2005's. A multiple of 64 bytes.
 */
const uma_zone_ext = struct('uma_zone (kmemu)', [
  ['uz_import', 'ptr'],
  ['uz_release', 'ptr'],
  ['uz_arg', 'ptr'],
  ['uz_sleeps', 'u64'],
  ['uz_count_min', 'u16'],
  ['uz_flags', 'u32'],
  ['uz_bktcount', 'u32'],
  ['uz_bktmax', 'u32'],
  ['uz_wssize', 'u32'],
  ['uz_imin', 'u32'],
  ['uz_imax', 'u32'],
  ['uz_size', 'u32'],
  ['uz_lockstore', embed(mtx)],
  ['uz_namebuf', array('u8', UMA_NAME_MAX)],
], 64);

/** Bytes of kmemu's block below a zone's address (uma_zone_ext). */
export const UMA_ZONE_EXT = uma_zone_ext.sizeof;

type ExtField = Exclude<keyof typeof uma_zone_ext, 'sizeof' | 'alignof' | 'structName'>;
const extOffsets = Object.fromEntries(
  Object.entries(uma_zone_ext).filter(([f]) => f.startsWith('uz_')).map(([f, off]) => [f, (off as number) - UMA_ZONE_EXT]),
) as Record<ExtField, number>;

/** struct uma_zone up to uz_cpu[] (2005's 120 bytes); kmemu's fields at negative offsets. */
export const uma_zone = Object.freeze({ ...uma_zone_2005, ...extOffsets });

/** Where uz_cpu[] starts: right after the header (upstream), or on the next line (aligned). */
export function zoneCacheOffset(aligned: boolean): number {
  return aligned ? Math.ceil(uma_zone.sizeof / 64) * 64 : uma_zone.sizeof;
}

export function zoneCacheStride(aligned: boolean): number {
  return aligned ? uma_cache_aligned.sizeof : uma_cache.sizeof;
}

/**
 * Bytes of a zone item from "UMA Zones" with `ncpus` caches: kmemu's block, the header and
 * room for either uz_cpu[] layout. The zone's address is the item's plus UMA_ZONE_EXT.
 */
export function zoneHeaderSize(ncpus: number): number {
  return UMA_ZONE_EXT + zoneCacheOffset(true) + ncpus * uma_cache_aligned.sizeof;
}

/** Bucket zones (uma_core.c of 2005): entries per bucket, smallest first. */
export const bucketZoneEntries = [16, 32, 64, 128] as const;
export const BUCKET_MAX = 128;

/** kern_malloc.c's size classes: kmemzones "16" .. "4096" (KMEM_ZMAX = PAGE_SIZE). */
export const kmemzoneSizes = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096] as const;
export const KMEM_ZSHIFT = 4;
export const KMEM_ZBASE = 16;
export const KMEM_ZMASK = KMEM_ZBASE - 1;
export const KMEM_ZMAX = PAGE_SIZE;
export const KMEM_ZSIZE = KMEM_ZMAX >> KMEM_ZSHIFT;

/** struct malloc_type_stats (FreeBSD 6): one cache line per CPU. */
export const malloc_type_stats = struct('malloc_type_stats', [
  ['mts_memalloced', 'u64'],
  ['mts_memfreed', 'u64'],
  ['mts_numallocs', 'u64'],
  ['mts_numfrees', 'u64'],
  ['mts_size', 'u64'], // bit i: the type used kmemzones[i]
  ['mts_reserved1', 'u64'],
  ['mts_reserved2', 'u64'],
  ['mts_reserved3', 'u64'],
], 64);

/** struct malloc_type with its malloc_type_internal (mti_stats[ncpus]) after it. */
export const malloc_type = struct('malloc_type', [
  ['ks_next', 'ptr'],
  ['ks_magic', 'u64'],
  ['ks_shortdesc', 'ptr'],
  ['ks_handle', 'ptr'],
  ['ks_namebuf', array('u8', UMA_NAME_MAX)],
], 64);
export const M_MAGIC = 877983977;

const UMA_MAXCPU = 64;

/**
 * UMA's and malloc(9)'s static data in .bss: the boot zones and keg, the lists, the per-CPU
 * locks (the 2003 uma_pcpu_mtx[] array, 32 bytes each; a line each in the aligned layout),
 * the boot-page list, counters, kmemzones[] and kmemsize[].
 */
export const uma_globals = struct('uma_globals', [
  ['masterkeg', embed(uma_keg)],
  ['masterzone_k_ext', { bytes: UMA_ZONE_EXT, align: 64 }], // kmemu's block of masterzone_k, right below it
  ['masterzone_k', { bytes: uma_zone.sizeof, align: 8 }],
  ['masterzone_z_ext', { bytes: UMA_ZONE_EXT, align: 64 }],
  ['masterzone_z', { bytes: uma_zone.sizeof, align: 8 }],
  ['uma_kegs', 'ptr'], // LIST_HEAD of every keg
  ['uma_cachezones', 'ptr'], // LIST_HEAD of cache-only zones
  ['uma_boot_pages', 'ptr'], // LIST_HEAD of unused boot pages (slab headers on them)
  ['uma_boot_free', 'u32'],
  ['booted', 'u32'],
  ['bucketdisable', 'u32'],
  ['slabzone', 'ptr'],
  ['hashzone', 'ptr'],
  ['bucket_zones', array('ptr', bucketZoneEntries.length)],
  ['uma_kmem_pages', 'u64'], // pages UMA holds from the backend (boot pages not counted)
  ['uma_reclaimed_pages', 'u64'], // pages uma_reclaim / zone_drain gave back
  ['uma_mtx', embed(mtx)],
  ['uma_pcpu_mtx', { bytes: UMA_MAXCPU * 64, align: 64 }],
  ['kmemzones', array('ptr', kmemzoneSizes.length)],
  ['kmemsize', array('u8', KMEM_ZSIZE + 1)],
  ['kmemstatistics', 'ptr'], // list of malloc types
  ['mt_zone', 'ptr'],
  ['kmem_large_pages', 'u64'],
  ['slabrefzone', 'ptr'], // "UMA RCntSlabs", made with the first UMA_ZONE_REFCNT keg
], 64);
