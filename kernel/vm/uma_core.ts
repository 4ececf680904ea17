// UMA: the slab allocator with kegs, slabs, per-CPU buckets and the bucket depot.
//
// Models FreeBSD sys/vm/uma_core.c and uma_dbg.c of 2004–2005 (after mbuma's keg/zone split,
// with rwatson's 2005 critical sections around the per-CPU caches), with what came later where
// the issue asks for it (uma_zcache_create's import/release, uma_zone_reserve — with FreeBSD 10
// zone_import's stop at the reserve when filling a bucket, under vm.kmem_backend=vmem — NOBUCKET and
// MAXBUCKET, the contention-driven bucket sizing of 2013, the 2019 depot limit and working-set
// estimate, the 2019 cache-line-aligned uma_cache, and FreeBSD 12's large internal kegs: the
// slab header on the slab, with runs of boot pages, for "UMA Zones" on 60-64 CPUs).
// Structures are in kernel/vm/uma_int.ts.
//
// - Kegs own slabs (part/free/full lists; on-page headers with a byte index free list, or
//   off-page headers from "UMA Slabs" found through the keg's hash, or through the page's back
//   pointer for malloc kegs). A zone owns per-CPU caches (an alloc and a free bucket each) and
//   the depot (uz_full_bucket, uz_free_bucket) under the zone lock, which for a keg's zones is
//   the keg's lock (uz_lock = &uk_lock, as in 2005). Buckets come from the "16 Bucket" ..
//   "128 Bucket" zones.
// - The backend: page_alloc is kmem_alloc3 on kernel_map (no kmem_map submap is carved: the
//   machine's small memories make a separate submap only a second place to run out), page_free
//   is kmem_free; with the boot tunable vm.kmem_backend=vmem they are FreeBSD 10's instead,
//   kmem_malloc / kmem_free on kmem_arena (vm_kern.ts), which zero only for M_ZERO; obj_alloc fills a zone's reserved KVA (uma_zone_set_obj) with vm_page_alloc
//   and pmap_kenter; before uma_startup2 single-page slabs come from the .bss boot pages.
// - Paths: uma.alloc.cpucache (bucket hit or alloc/free bucket swap), uma.alloc.depot (a full
//   bucket from the depot under the zone lock), uma.alloc.slab (a bucket filled from the keg's
//   slabs, or with buckets off an item straight from a slab), uma.alloc.backend (a new slab);
//   uma.free.cpucache, uma.free.depot (the free bucket handed to the depot and an empty one
//   taken), uma.free.slab (a bucket drained to slabs because the depot is over uz_bktmax, or
//   the item freed straight to its slab), uma.free.backend (pages given back during the free).
//   Each operation ends with one cpu.completeOp on the deepest path it went down.
//
// The default zone is 2005's (uma_core.c rev 1.136, uma_int.h rev 1.37): struct uma_zone of
// 120 bytes with uz_cpu[] packed after it, the fast path touching uz_ctor / uz_dtor and its
// uma_cache only; uz_count bumped on every bucket fill miss up to BUCKET_MAX; no more than
// mp_ncpus bucket fills at once (the next caller takes a single item from a slab); an internal
// keg in slab_zalloc (uk_recurse) gives no item but to "UMA Slabs" and "UMA RCntSlabs"; M_WAITOK going round the
// slab layer until it has a slab.
// What kmemu adds, per zone, with the era of each (the handle says; the hot path never reads it
// from memory):
// - cacheLock 'critical' (2005 onward, the default) or 'mutex' (2003): CPU_LOCK, a lock per CPU
//   in the uma_pcpu_mtx[] array (32-byte mutexes side by side, or a line each when aligned).
// - aligned (2019): uz_cpu[] as the cache-line-aligned uma_cache, from the line after the
//   header, instead of 2005's 32-byte structures packed after it.
// - autoTune (2013): uz_count grows only when the zone lock is found contended (trylock
//   fails, on alloc or free) and shrinks by one on each depot drain, instead of 2005's growth.
// - depotMax (2019): uz_bktmax, the depot's limit; bucketSize: uz_count set by hand.
// - Cache zones (2013's uma_zcache_create, keg 0) keep their uz_count without autoTune.
// - uz_count 0 (pcpu: false, or 2013's UMA_ZONE_NOBUCKET) sends every request that misses the
//   (then empty) per-CPU cache to the slab layer.
// Deviations:
// - The slab back pointer of a page (vsetslab/vtoslab) lives in its vm_page's rb_left link
//   (unused here, the page lookup being by hash): the page's object field is kernel_object's.
// - Function pointers (ctor, dtor, init, fini, allocf, freef, import, release) are stored in
//   memory as addresses in the kernel's text, each naming a JS callback of this kernel.
// - uma_timeout (hash_expand, the working set) runs when called, not from a 20-second callout;
//   M_UMAHASH is registered with malloc(9) at the first expansion, not at boot.
// - A zone item from "UMA Zones" holds, below the zone's address, kmemu's block of fields from
//   later eras (uma_int.ts: uz_flags, uz_size, the depot counters, the name) and after the
//   header room for either uz_cpu[] layout.
// - page_alloc panics (as 2005's kmem_malloc does when kmem_map is full) rather than fail an
//   M_WAITOK request the slab layer would retry for ever.
// - A UMA "stack" scratch word for import/release of one item sits in the CPU's globaldata page.
// - UMA_ZONE_REFCNT (mbuma, 2004): slabs of struct uma_slab_refcnt, a reference count beside
//   each free-list index, found by uma_find_refcnt through vtoslab. "UMA RCntSlabs" (their
//   off-page headers) is made with the first refcount keg, not by uma_startup, so that a boot
//   without one lays out and costs as before; refcount kegs are VTOSLAB (not hashed), as from
//   FreeBSD 7. The uk_flags test for the entry size in the slab alloc/free is made (and charged)
//   only on refcount kegs: the keg's kind is known from its creation.

import { type Cpu, type Task, hex64, spinTryAcquire } from '../../emu/index.js';
import {
  crit_enter, crit_exit, free, globaldata, type Kernel, malloc, malloc_init, type MallocType, panic, PINTERLOCKED, spin_lock, spin_unlock, spinlock,
  tsleep, tsleep_interlock, vm_object, vm_page, wakeup_one,
} from '../kern/index.js';
import {
  atop, bzero, KERNBASE, KERNLOAD, PAGE_SIZE, pmap_kenter, pmap_kextract, VM_ALLOC_INTERRUPT, VM_ALLOC_SYSTEM,
  VM_PAGE_BITS_ALL,
} from '../amd64/index.js';
import {
  BUCKET_MAX, M_NOVM, M_NOWAIT, M_USE_RESERVE, M_WAITOK, M_ZERO, UMA_ALIGN_CACHE, UMA_ALIGN_PTR, UMA_BOOT_PAGES, UMA_DBG_ALLOCATED,
  UMA_FRITM_SZ, UMA_HASH_SIZE_INIT, UMA_MAX_IPERS, UMA_MAX_WASTE, UMA_NAME_MAX, UMA_SLAB_BOOT, UMA_SLAB_KERNEL, UMA_SLAB_KMEM,
  UMA_SLAB_PRIV, UMA_SLAB_SHIFT, UMA_SLAB_SIZE, UMA_SMALLEST_UNIT, UMA_ZFLAG_BUCKET, UMA_ZFLAG_CACHEONLY, UMA_ZFLAG_DRAINING, UMA_ZFLAG_FULL, UMA_ZFLAG_INHERIT,
  UMA_ZFLAG_INTERNAL, UMA_ZFLAG_PRIVALLOC, UMA_ZONE_HASH, UMA_ZONE_INHERIT, UMA_ZONE_MALLOC, UMA_ZONE_MAXBUCKET, UMA_ZONE_MTXCLASS,
  UMA_ZONE_NOBUCKET, UMA_ZONE_NOFREE, UMA_ZONE_OFFPAGE, UMA_ZONE_REFCNT, UMA_ZONE_SECONDARY, UMA_ZONE_VM, UMA_ZONE_VTOSLAB, UMA_ZONE_ZINIT,
  UMA_FRITMREF_SZ, uma_slab_refcnt_sizeof, usr_freelist, usr_refcnt, bucketZoneEntries, mtx, ub_bucket, uma_hash, uma_bucket, uma_cache,
  uma_globals, uma_keg, uma_slab, uma_zone, UMA_ZONE_EXT, us_freelist, zoneCacheOffset,
  zoneCacheStride, zoneHeaderSize,
} from './uma_int.js';
import { kmem_alloc3, kmem_alloc_nofault, kmem_free, kmem_malloc } from './vm_kern.js';
import { OBJT_DEFAULT, _vm_object_allocate } from './vm_object.js';
import { vm_page_alloc, vm_page_wakeup, vm_page_wire } from './vm_page.js';

/** ctor, dtor, init and fini: (cpu, item, size, arg, flags); ctor and init return 0 for success. */
export type UmaCallback = (cpu: Cpu, item: number, size: number, arg: number, flags: number) => Task<number | void>;
/** A backend allocator: returns the memory and the UMA_SLAB_* flags for the slab. */
export type UmaAllocf = (cpu: Cpu, zone: number, bytes: number, wait: number) => Task<{ mem: number; pflag: number }>;
export type UmaFreef = (cpu: Cpu, mem: number, bytes: number, pflag: number) => Task;
/** A cache zone's import: writes up to `count` item pointers at `store`; returns how many. */
export type UmaImport = (cpu: Cpu, arg: number, store: number, count: number, flags: number) => Task<number>;
export type UmaRelease = (cpu: Cpu, arg: number, store: number, count: number) => Task;

type AnyFn = UmaCallback | UmaAllocf | UmaFreef | UmaImport | UmaRelease;

/** A zone: its header's address and how kmemu runs it (see the file header). */
export interface UmaZone {
  readonly z: number;
  readonly aligned: boolean;
  readonly cacheLock: 'critical' | 'mutex';
  readonly autoTune: boolean;
}

export interface UmaZoneOptions {
  /** Per-CPU buckets on (default) or off (uz_count 0: every request to the slab layer). */
  pcpu?: boolean;
  /** uz_cpu[] one cache line per CPU (2019) instead of upstream 2005's packed array. */
  aligned?: boolean;
  /** Protection of the per-CPU cache: a critical section (default) or CPU_LOCK. */
  cacheLock?: 'critical' | 'mutex';
  /** Items per bucket (uz_count), 1..128, instead of upstream's choice. */
  bucketSize?: number;
  /** Grow uz_count on zone-lock contention, shrink it on drains (2013). */
  autoTune?: boolean;
  /** Items the depot may hold in full buckets before a freed bucket is drained to slabs. */
  depotMax?: number;
}

/** Kernel-wide UMA build options. */
export interface UmaKernelOptions {
  /** INVARIANTS: uma_dbg_alloc/uma_dbg_free on every operation (default on). */
  invariants: boolean;
  /** INVARIANTS' trash_ctor/dtor/init/fini for zones without their own (default off). */
  trash: boolean;
}

const SKIP_NONE = 0;
const SKIP_DTOR = 1;
const SKIP_FINI = 2;
const UMA_STARTUP = 1;
const UMA_STARTUP2 = 2;
const FN_BASE = KERNBASE + KERNLOAD + 0x30_0000;
const SCRATCH_OFFSET = 3072;
const CPUCACHE = 0;
const DEPOT = 1;
const SLAB = 2;
const BACKEND = 3;

interface UmaOp {
  depth: number;
  backend: boolean;
  kind: number; // 0 alloc, 1 free
}

interface UmaState {
  /** M_UMAHASH, registered at the first hash_expand. */
  umahash: MallocType | undefined;
  readonly fns: AnyFn[];
  readonly fnIndex: Map<AnyFn, number>;
  readonly handles: Map<number, UmaZone>;
  readonly ops: UmaOp[];
  readonly options: UmaKernelOptions;
  readonly console: string[];
  /** Kegs made with UMA_ZONE_REFCNT (see freeItem). */
  readonly refcntKegs: Set<number>;
  page_alloc: number;
  page_free: number;
  startup_alloc: number;
  obj_alloc: number;
  zero_init: number;
  trash: [number, number, number, number];
  zone_import: number;
  zone_release: number;
}

const states = new WeakMap<Kernel, UmaState>();
/** UMA's JS-side state of a kernel, for machine checkpoints (kernel/kern/kernel-state.ts); made on first use. */
export function umaJsState(k: Kernel): object {
  return st(k);
}

function st(k: Kernel): UmaState {
  let s = states.get(k);
  if (s === undefined) {
    s = {
      umahash: undefined, fns: [], fnIndex: new Map(), handles: new Map(), ops: [], options: { invariants: true, trash: false }, console: [],
      refcntKegs: new Set(),
      page_alloc: 0, page_free: 0, startup_alloc: 0, obj_alloc: 0, zero_init: 0, trash: [0, 0, 0, 0], zone_import: 0, zone_release: 0,
    };
    states.set(k, s);
    const S = s;
    S.page_alloc = fnptr(k, ((cpu, _zone, bytes, wait) => page_alloc(k, cpu, bytes, wait)) as UmaAllocf);
    S.page_free = fnptr(k, ((cpu, mem, bytes, pflag) => page_free(k, cpu, mem, bytes, pflag)) as UmaFreef);
    S.startup_alloc = fnptr(k, ((cpu, zone, bytes, wait) => startup_alloc(k, cpu, zone, bytes, wait)) as UmaAllocf);
    S.obj_alloc = fnptr(k, ((cpu, zone, bytes) => obj_alloc(k, cpu, zone, bytes)) as UmaAllocf);
    S.zero_init = fnptr(k, function* (cpu, item, size) {
      bzero(cpu, item, size);
      return 0;
    } as UmaCallback);
    S.trash = [fnptr(k, trash_ctor), fnptr(k, trash_dtor), fnptr(k, trash_init), fnptr(k, trash_fini)];
    S.zone_import = fnptr(k, (() => 0) as unknown as UmaImport);
    S.zone_release = fnptr(k, (() => 0) as unknown as UmaRelease);
  }
  return s;
}

/** The kernel's UMA build options (INVARIANTS, trash); change them before creating zones. */
export function umaOptions(k: Kernel): UmaKernelOptions {
  return st(k).options;
}

/** Lines UMA printed on the console (keg_dtor's complaints), oldest first. */
export function umaConsole(k: Kernel): readonly string[] {
  return st(k).console;
}

/** The address a JS callback has in the kernel's text (registered on first use). */
export function fnptr(k: Kernel, f: AnyFn | undefined): number {
  if (f === undefined) return 0;
  const s = st(k);
  let i = s.fnIndex.get(f);
  if (i === undefined) {
    i = s.fns.length;
    s.fns.push(f);
    s.fnIndex.set(f, i);
  }
  return FN_BASE + i * 16;
}

function fnAt<T extends AnyFn>(k: Kernel, cpu: Cpu, ptr: number): T {
  const f = st(k).fns[(ptr - FN_BASE) / 16];
  if (f === undefined) panic(cpu, `uma: call through a bad function pointer 0x${hex64(ptr)}`);
  return f as T;
}

function* callCb(k: Kernel, cpu: Cpu, ptr: number, item: number, size: number, arg: number, flags: number): Task<number> {
  const r = yield* fnAt<UmaCallback>(k, cpu, ptr)(cpu, item, size, arg, flags);
  return typeof r === 'number' ? r : 0;
}

export const p = (va: number): string => `0x${hex64(va)}`;

// --- Small helpers ---------------------------------------------------------------------------

function add64(cpu: Cpu, va: number, d: number): void {
  cpu.store64(va, cpu.load64(va) + d);
}

function add32(cpu: Cpu, va: number, d: number): void {
  cpu.store32(va, (cpu.load32(va) + d) >>> 0);
}

function listInsertHead(cpu: Cpu, head: number, elm: number, next: number, prev: number): void {
  const first = cpu.loadPtr(head);
  cpu.storePtr(elm + next, first);
  if (first !== 0) cpu.storePtr(first + prev, elm + next);
  cpu.storePtr(head, elm);
  cpu.storePtr(elm + prev, head);
}

function listRemove(cpu: Cpu, elm: number, next: number, prev: number): void {
  const n = cpu.loadPtr(elm + next);
  const pv = cpu.loadPtr(elm + prev);
  if (n !== 0) cpu.storePtr(n + prev, pv);
  cpu.storePtr(pv, n);
}

function g(k: Kernel, field: keyof typeof uma_globals & string): number {
  return k.uma_globals + (uma_globals as unknown as Record<string, number>)[field]!;
}

function zname(cpu: Cpu, z: number): string {
  const at = cpu.loadPtr(z + uma_zone.uz_name);
  let s = '';
  for (let i = 0; at !== 0 && i < UMA_NAME_MAX; i++) {
    const c = cpu.load8(at + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

function scratch(k: Kernel, cpu: Cpu): number {
  return k.gd(cpu.id) + SCRATCH_OFFSET;
}

/** The handle of the zone at z (internal zones get a plain one). */
export function umaHandle(k: Kernel, z: number): UmaZone {
  return st(k).handles.get(z) ?? { z, aligned: false, cacheLock: 'critical', autoTune: false };
}

/** The address of CPU `cpuid`'s struct uma_cache in the zone's uz_cpu[], in the handle's layout. */
export function cacheOf(h: UmaZone, cpuid: number): number {
  return h.z + zoneCacheOffset(h.aligned) + cpuid * zoneCacheStride(h.aligned);
}

/** An item's size: the keg's uk_size as 2005 reads it, or a cache zone's uz_size. */
function zoneSize(cpu: Cpu, z: number): number {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  return keg !== 0 ? cpu.load32(keg + uma_keg.uk_size) : cpu.load32(z + uma_zone.uz_size);
}

function pcpuMtx(k: Kernel, h: UmaZone, cpuid: number): number {
  return g(k, 'uma_pcpu_mtx') + cpuid * (h.aligned ? 64 : mtx.sizeof);
}

// --- Locks -----------------------------------------------------------------------------------

function* ZONE_LOCK(k: Kernel, cpu: Cpu, z: number): Task {
  yield* spin_lock(k, cpu, cpu.loadPtr(z + uma_zone.uz_lock));
}

function* ZONE_UNLOCK(k: Kernel, cpu: Cpu, z: number): Task {
  yield* spin_unlock(k, cpu, cpu.loadPtr(z + uma_zone.uz_lock));
}

/** ZONE_LOCK that says whether it had to wait (ZONE_TRYLOCK first, as 2013 does). */
function* zoneLockContended(k: Kernel, cpu: Cpu, z: number): Task<boolean> {
  const lk = cpu.loadPtr(z + uma_zone.uz_lock);
  crit_enter(k, cpu);
  const gd = k.gd(cpu.id) + globaldata.gd_spinlocks;
  cpu.store32(gd, cpu.load32(gd) + 1);
  if (yield* spinTryAcquire(cpu, lk + spinlock.counta)) return false;
  cpu.store32(gd, cpu.load32(gd) - 1);
  crit_exit(k, cpu);
  yield* spin_lock(k, cpu, lk);
  return true;
}

function* KEG_LOCK(k: Kernel, cpu: Cpu, keg: number): Task {
  yield* spin_lock(k, cpu, keg + uma_keg.uk_lock);
}

function* KEG_UNLOCK(k: Kernel, cpu: Cpu, keg: number): Task {
  yield* spin_unlock(k, cpu, keg + uma_keg.uk_lock);
}

/** critical_enter or CPU_LOCK: the per-CPU cache is this CPU's until cacheExit. */
function* cacheEnter(k: Kernel, cpu: Cpu, h: UmaZone): Task {
  if (h.cacheLock === 'mutex') yield* spin_lock(k, cpu, pcpuMtx(k, h, cpu.id));
  else crit_enter(k, cpu);
}

function* cacheExit(k: Kernel, cpu: Cpu, h: UmaZone): Task {
  if (h.cacheLock === 'mutex') yield* spin_unlock(k, cpu, pcpuMtx(k, h, cpu.id));
  else crit_exit(k, cpu);
}

/** msleep: sleeps on ident, releasing the spin mutex at lk meanwhile. */
function* msleep(k: Kernel, cpu: Cpu, ident: number, lk: number, wmesg: string): Task {
  yield* tsleep_interlock(k, cpu, ident);
  yield* spin_unlock(k, cpu, lk);
  yield* tsleep(k, cpu, ident, PINTERLOCKED, wmesg);
  yield* spin_lock(k, cpu, lk);
}

// --- Operation bookkeeping (which path an operation ended on) ---------------------------------

function opOf(k: Kernel, cpu: Cpu): UmaOp {
  const s = st(k);
  let op = s.ops[cpu.id];
  if (op === undefined) {
    op = { depth: 0, backend: false, kind: 0 };
    s.ops[cpu.id] = op;
  }
  return op;
}

function pathLabels(k: Kernel, kind: number): number[] {
  const L = k.label;
  return kind === 0
    ? [L['uma.alloc.cpucache'], L['uma.alloc.depot'], L['uma.alloc.slab'], L['uma.alloc.backend']]
    : [L['uma.free.cpucache'], L['uma.free.depot'], L['uma.free.slab'], L['uma.free.backend']];
}

/** The path of one uma_zalloc_arg / uma_zfree_arg: labels entered as it goes deeper. */
class OpPath {
  rank = -1;
  private entered = 0;
  private readonly labels: number[];
  private readonly op: UmaOp;
  private readonly outer: boolean;

  constructor(k: Kernel, private readonly cpu: Cpu, kind: number) {
    this.op = opOf(k, cpu);
    this.outer = this.op.depth === 0;
    if (this.outer) {
      this.op.backend = false;
      this.op.kind = kind;
    }
    this.op.depth++;
    this.labels = pathLabels(k, kind);
  }

  go(rank: number): void {
    if (rank <= this.rank) return;
    this.cpu.enter(this.labels[rank]!);
    this.entered++;
    this.rank = rank;
  }

  end(): void {
    if (this.outer) this.cpu.completeOp(this.labels[this.op.backend ? BACKEND : this.rank]!);
    while (this.entered-- > 0) this.cpu.leave();
    this.op.depth--;
  }
}

/** Enters the backend label of the operation under way (if any); returns whether it did. */
function backendEnter(k: Kernel, cpu: Cpu): boolean {
  const op = opOf(k, cpu);
  if (op.depth === 0) return false;
  op.backend = true;
  cpu.enter(pathLabels(k, op.kind)[BACKEND]!);
  return true;
}

// --- vtoslab ---------------------------------------------------------------------------------

function pageOf(k: Kernel, cpu: Cpu, va: number): number {
  const pa = pmap_kextract(k, cpu, va);
  if (pa === 0) return 0;
  const idx = atop(pa) - k.first_page;
  if (idx < 0 || idx >= k.vm_page_array_size) return 0;
  return k.PHYS_TO_VM_PAGE(pa);
}

/** vsetslab: records the slab of the page at va in its vm_page. */
export function vsetslab(k: Kernel, cpu: Cpu, va: number, slab: number): void {
  const m = pageOf(k, cpu, va);
  if (m !== 0) cpu.storePtr(m + vm_page.rb_left, slab);
}

/** vtoslab: the slab of the page at va, or 0. */
export function vtoslab(k: Kernel, cpu: Cpu, va: number): number {
  const m = pageOf(k, cpu, va);
  return m === 0 ? 0 : cpu.loadPtr(m + vm_page.rb_left);
}

// --- Refcount slabs (UMA_ZONE_REFCNT) ----------------------------------------------------------

/**
 * The us_item byte of free-list entry `freei`: one byte each in a uma_slab, 8 bytes each (with
 * the item's reference count) in a uma_slab_refcnt. `charge`: make the uk_flags test upstream
 * makes — only on refcount kegs, so that every other keg costs what it did before.
 */
function freeItem(k: Kernel, cpu: Cpu, keg: number, slab: number, freei: number, charge: boolean): number {
  if (!st(k).refcntKegs.has(keg)) return slab + us_freelist + freei;
  if (charge) cpu.load32(keg + uma_keg.uk_flags);
  return slab + usr_freelist + freei * UMA_FRITMREF_SZ;
}

/**
 * uma_find_refcnt: the address of the reference count of `item`, an item of a UMA_ZONE_REFCNT
 * zone, in its slab header (found by vtoslab).
 */
export function uma_find_refcnt(k: Kernel, cpu: Cpu, h: UmaZone, item: number): number {
  const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
  const slab = vtoslab(k, cpu, item - (item % UMA_SLAB_SIZE));
  if (slab === 0 || (cpu.load32(cpu.loadPtr(slab + uma_slab.us_keg) + uma_keg.uk_flags) & UMA_ZONE_REFCNT) === 0) {
    panic(cpu, 'uma_find_refcnt(): zone possibly not UMA_ZONE_REFCNT');
  }
  const idx = Math.floor((item - cpu.loadPtr(slab + uma_slab.us_data)) / cpu.load32(keg + uma_keg.uk_rsize));
  return slab + usr_freelist + idx * UMA_FRITMREF_SZ + usr_refcnt;
}

/**
 * uma_startup's uma_max_ipers_ref: items of the smallest size whose refcount slab wastes more
 * than UMA_MAX_WASTE; "UMA RCntSlabs" items hold that many free-list entries.
 */
function umaMaxIpersRef(): number {
  const wsize = UMA_SLAB_SIZE - uma_slab_refcnt_sizeof - UMA_MAX_WASTE;
  let totsize = wsize;
  let objsize = UMA_SMALLEST_UNIT;
  while (totsize >= wsize) {
    totsize = Math.floor((UMA_SLAB_SIZE - uma_slab_refcnt_sizeof) / (objsize + UMA_FRITMREF_SZ)) * (UMA_FRITMREF_SZ + objsize);
    objsize++;
  }
  if (objsize > UMA_SMALLEST_UNIT) objsize--;
  return Math.floor(UMA_SLAB_SIZE / objsize);
}

/** Bytes of a "UMA RCntSlabs" item: the header and uma_max_ipers_ref entries. */
export const UMA_RCNTSLAB_SIZE = uma_slab_refcnt_sizeof + umaMaxIpersRef() * UMA_FRITMREF_SZ;

// --- Backend allocators -------------------------------------------------------------------------

/** page_alloc: kmem_alloc3 on kernel_map, or (vm.kmem_backend=vmem) FreeBSD 10's kmem_malloc on kmem_arena. */
function* page_alloc(k: Kernel, cpu: Cpu, bytes: number, wait: number): Task<{ mem: number; pflag: number }> {
  // The 2005 bucket fill adds M_NOWAIT to M_WAITOK for its next slabs; FreeBSD 10's zone_import,
  // whose kmem_malloc refuses both, clears M_WAITOK.
  if ((wait & M_NOWAIT) !== 0) wait &= ~M_WAITOK;
  const mem = k.kmem_backend === 'vmem' ? yield* kmem_malloc(k, cpu, k.kmem_arena, bytes, wait) : yield* kmem_alloc3(k, cpu, k.kernel_map, bytes, 0);
  // 2005's kmem_malloc never fails an M_WAITOK request (the slab layer loops on it): it waits
  // for pages, and panics when the map has no room left.
  if (mem === 0 && (wait & M_NOWAIT) === 0) {
    panic(cpu, `kmem_malloc(${bytes}): kmem_map too small: ${umaPages(k).kmem * PAGE_SIZE} total allocated`);
  }
  return { mem, pflag: UMA_SLAB_KMEM };
}

/** page_free: kmem_free on kernel_map, or on kmem_arena (UMA_SLAB_KMEM) / kernel_arena (UMA_SLAB_KERNEL). */
function* page_free(k: Kernel, cpu: Cpu, mem: number, bytes: number, pflag: number): Task {
  if ((pflag & (UMA_SLAB_KMEM | UMA_SLAB_KERNEL)) === 0) panic(cpu, `UMA: page_free used with invalid flags ${pflag}`);
  const where = k.kmem_backend !== 'vmem' ? k.kernel_map : (pflag & UMA_SLAB_KMEM) !== 0 ? k.kmem_arena : k.kernel_arena;
  yield* kmem_free(k, cpu, where, mem, bytes);
}

function* startup_alloc(k: Kernel, cpu: Cpu, zone: number, bytes: number, wait: number): Task<{ mem: number; pflag: number }> {
  const keg = cpu.loadPtr(zone + uma_zone.uz_keg);
  if (bytes === PAGE_SIZE) {
    yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
    const tmps = cpu.loadPtr(g(k, 'uma_boot_pages'));
    if (tmps !== 0) {
      listRemove(cpu, tmps, uma_slab.us_link_next, uma_slab.us_link_prev);
      add32(cpu, g(k, 'uma_boot_free'), -1);
      yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
      const mem = cpu.loadPtr(tmps + uma_slab.us_data);
      const pflag = cpu.load16(tmps + uma_slab.us_flags);
      bzero(cpu, tmps, uma_slab.sizeof);
      return { mem, pflag };
    }
    yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
  } else {
    const run = yield* startup_alloc_run(k, cpu, bytes / PAGE_SIZE);
    if (run !== 0) return { mem: run, pflag: UMA_SLAB_BOOT };
  }
  if (cpu.load32(g(k, 'booted')) < UMA_STARTUP2) panic(cpu, 'UMA: Increase vm.boot_pages');
  cpu.storePtr(keg + uma_keg.uk_allocf, st(k).page_alloc);
  return yield* page_alloc(k, cpu, bytes, wait);
}

/**
 * `pages` adjacent boot pages for a multi-page internal slab ("UMA Zones" on many CPUs), or 0.
 * The list holds the unused boot pages highest first (uma_startup pushed them in address order
 * and none comes back), so a run is that many entries from its head, each a page below the one
 * before, the last one its start (FreeBSD 12's startup_alloc takes runs of boot pages too).
 */
function* startup_alloc_run(k: Kernel, cpu: Cpu, pages: number): Task<number> {
  yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
  let run = 0;
  for (let p = cpu.loadPtr(g(k, 'uma_boot_pages')), prev = 0; p !== 0 && run < pages; p = cpu.loadPtr(p + uma_slab.us_link_next)) {
    if (prev !== 0 && p !== prev - PAGE_SIZE) break;
    prev = p;
    run++;
  }
  let mem = 0;
  if (run === pages) {
    for (let i = 0; i < pages; i++) {
      const tmps = cpu.loadPtr(g(k, 'uma_boot_pages'));
      listRemove(cpu, tmps, uma_slab.us_link_next, uma_slab.us_link_prev);
      mem = cpu.loadPtr(tmps + uma_slab.us_data);
      bzero(cpu, tmps, uma_slab.sizeof);
    }
    add32(cpu, g(k, 'uma_boot_free'), -pages);
  }
  yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
  return mem;
}

function* obj_alloc(k: Kernel, cpu: Cpu, zone: number, bytes: number): Task<{ mem: number; pflag: number }> {
  const keg = cpu.loadPtr(zone + uma_zone.uz_keg);
  const object = cpu.loadPtr(keg + uma_keg.uk_obj);
  let retkva = 0;
  let pages = cpu.load32(object + vm_object.resident_page_count);
  for (let i = 0; i < bytes / PAGE_SIZE; i++) {
    const m = yield* vm_page_alloc(k, cpu, object, pages, VM_ALLOC_INTERRUPT | VM_ALLOC_SYSTEM);
    if (m === 0) return { mem: 0, pflag: 0 };
    cpu.store8(m + vm_page.valid, VM_PAGE_BITS_ALL);
    vm_page_wire(k, cpu, m);
    yield* vm_page_wakeup(k, cpu, m);
    const zkva = cpu.loadPtr(keg + uma_keg.uk_kva) + pages * PAGE_SIZE;
    if (retkva === 0) retkva = zkva;
    yield* pmap_kenter(k, cpu, zkva, cpu.load64(m + vm_page.phys_addr));
    pages++;
  }
  return { mem: retkva, pflag: UMA_SLAB_PRIV };
}

// --- INVARIANTS: uma_dbg.c ----------------------------------------------------------------------

const uma_junk = 0xdeadc0de;

function* trash_ctor(cpu: Cpu, mem: number, size: number): Task<number> {
  for (let off = 0; off + 4 <= size; off += 4) {
    const v = cpu.load32(mem + off);
    if (v !== uma_junk) panic(cpu, `Memory modified after free ${p(mem)}(${size}) val=${v.toString(16)} @ ${p(mem + off)}`);
  }
  return 0;
}

function* trash_dtor(cpu: Cpu, mem: number, size: number): Task<number> {
  for (let off = 0; off + 4 <= size; off += 4) cpu.store32(mem + off, uma_junk);
  return 0;
}

function* trash_init(cpu: Cpu, mem: number, size: number): Task<number> {
  return yield* trash_dtor(cpu, mem, size);
}

function* trash_fini(cpu: Cpu, mem: number, size: number): Task<number> {
  return yield* trash_ctor(cpu, mem, size);
}

/** uma_dbg_getslab: the slab an item would belong to in this zone's keg, or 0. */
function uma_dbg_getslab(k: Kernel, cpu: Cpu, keg: number, item: number): number {
  const mem = item - (item % UMA_SLAB_SIZE);
  const flags = cpu.load32(keg + uma_keg.uk_flags);
  if ((flags & UMA_ZONE_VTOSLAB) !== 0) return vtoslab(k, cpu, mem);
  if ((flags & UMA_ZONE_HASH) !== 0) return hash_sfind(cpu, keg, mem);
  return mem + cpu.load16(keg + uma_keg.uk_pgoff);
}

/** uma_dbg_alloc: marks the item allocated in its slab's free list (the zone lock held). */
function uma_dbg_alloc(k: Kernel, cpu: Cpu, z: number, slab: number, item: number): void {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  if (keg === 0) return;
  if (slab === 0) {
    slab = uma_dbg_getslab(k, cpu, keg, item);
    if (slab === 0) panic(cpu, `uma: item ${p(item)} did not belong to zone ${zname(cpu, z)}`);
  }
  const freei = Math.floor((item - cpu.loadPtr(slab + uma_slab.us_data)) / cpu.load32(keg + uma_keg.uk_rsize));
  cpu.store8(freeItem(k, cpu, keg, slab, freei, false), UMA_DBG_ALLOCATED);
}

/** uma_dbg_free: checks slab membership, alignment and duplicate frees (the zone lock held). */
function uma_dbg_free(k: Kernel, cpu: Cpu, z: number, slab: number, item: number): void {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  if (keg === 0) return;
  if (slab === 0) {
    slab = uma_dbg_getslab(k, cpu, keg, item);
    if (slab === 0 || cpu.loadPtr(slab + uma_slab.us_keg) !== keg) panic(cpu, `uma: Freed item ${p(item)} did not belong to zone ${zname(cpu, z)}`);
  }
  const rsize = cpu.load32(keg + uma_keg.uk_rsize);
  const data = cpu.loadPtr(slab + uma_slab.us_data);
  const freei = Math.floor((item - data) / rsize);
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  if (freei < 0 || freei >= ipers) panic(cpu, `zone: ${zname(cpu, z)}(${p(z)}) slab ${p(slab)} freelist ${freei} out of range 0-${ipers - 1}`);
  if (freei * rsize + data !== item) {
    panic(cpu, `zone: ${zname(cpu, z)}(${p(z)}) slab ${p(slab)} freed address ${p(item)} unaligned. should be ${p(freei * rsize + data)}`);
  }
  const fi = freeItem(k, cpu, keg, slab, freei, false);
  if (cpu.load8(fi) !== UMA_DBG_ALLOCATED) {
    panic(cpu, `Duplicate free of item ${p(item)} from zone ${p(z)}(${zname(cpu, z)})`);
  }
  cpu.store8(fi, 0);
}

// --- The hash of off-page slabs ---------------------------------------------------------------

function hashBucket(cpu: Cpu, keg: number, mem: number): number {
  const h = keg + uma_keg.uk_hash;
  const mask = cpu.load32(h + 12);
  return cpu.loadPtr(h) + (Math.floor(mem / 2 ** UMA_SLAB_SHIFT) & mask) * 8;
}

function hash_sfind(cpu: Cpu, keg: number, mem: number): number {
  for (let s = cpu.loadPtr(hashBucket(cpu, keg, mem)); s !== 0; s = cpu.loadPtr(s + uma_slab.us_hlink)) {
    if (cpu.loadPtr(s + uma_slab.us_data) === mem) return s;
  }
  return 0;
}

function hashInsert(cpu: Cpu, keg: number, slab: number, mem: number): void {
  const b = hashBucket(cpu, keg, mem);
  cpu.storePtr(slab + uma_slab.us_hlink, cpu.loadPtr(b));
  cpu.storePtr(b, slab);
}

function hashRemove(cpu: Cpu, keg: number, slab: number, mem: number): void {
  let link = hashBucket(cpu, keg, mem);
  for (let s = cpu.loadPtr(link); s !== 0; link = s + uma_slab.us_hlink, s = cpu.loadPtr(link)) {
    if (s === slab) {
      cpu.storePtr(link, cpu.loadPtr(s + uma_slab.us_hlink));
      return;
    }
  }
}

// --- Slabs ---------------------------------------------------------------------------------

/**
 * slab_zalloc: a new slab for the zone's keg from its backend, its items init'ed by the keg's
 * init. Called and returns with the zone lock held; drops it meanwhile.
 */
function* slab_zalloc(k: Kernel, cpu: Cpu, z: number, wait: number): Task<number> {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  const kflags = cpu.load32(keg + uma_keg.uk_flags);
  yield* ZONE_UNLOCK(k, cpu, z);
  const entered = backendEnter(k, cpu);
  const done = function* (slab: number): Task<number> {
    yield* ZONE_LOCK(k, cpu, z);
    if (entered) cpu.leave();
    return slab;
  };
  let slab = 0;
  if ((kflags & UMA_ZONE_OFFPAGE) !== 0) {
    slab = yield* uma_zalloc_internal(k, cpu, cpu.loadPtr(keg + uma_keg.uk_slabzone), 0, wait);
    if (slab === 0) return yield* done(0);
  }
  wait = (kflags & UMA_ZONE_MALLOC) === 0 ? wait | M_ZERO : wait & ~M_ZERO;
  const ppera = cpu.load16(keg + uma_keg.uk_ppera);
  const { mem, pflag } = yield* fnAt<UmaAllocf>(k, cpu, cpu.loadPtr(keg + uma_keg.uk_allocf))(cpu, z, ppera * UMA_SLAB_SIZE, wait);
  if (mem === 0) {
    if ((kflags & UMA_ZONE_OFFPAGE) !== 0) yield* uma_zfree_internal(k, cpu, cpu.loadPtr(keg + uma_keg.uk_slabzone), slab, 0, SKIP_NONE);
    return yield* done(0);
  }
  if ((kflags & UMA_ZONE_OFFPAGE) === 0) slab = mem + cpu.load16(keg + uma_keg.uk_pgoff);
  if ((kflags & UMA_ZONE_VTOSLAB) !== 0) for (let i = 0; i < ppera; i++) vsetslab(k, cpu, mem + i * PAGE_SIZE, slab);
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  cpu.storePtr(slab + uma_slab.us_keg, keg);
  cpu.storePtr(slab + uma_slab.us_data, mem);
  cpu.store16(slab + uma_slab.us_freecount, ipers);
  cpu.store8(slab + uma_slab.us_firstfree, 0);
  cpu.store16(slab + uma_slab.us_flags, pflag);
  if ((kflags & UMA_ZONE_REFCNT) !== 0) {
    for (let i = 0; i < ipers; i++) {
      cpu.store32(slab + usr_freelist + i * UMA_FRITMREF_SZ + usr_refcnt, 0);
      cpu.store8(slab + usr_freelist + i * UMA_FRITMREF_SZ, i + 1);
    }
  } else {
    for (let i = 0; i < ipers; i++) cpu.store8(slab + us_freelist + i, i + 1);
  }
  const init = cpu.loadPtr(keg + uma_keg.uk_init);
  if (init !== 0) {
    const rsize = cpu.load32(keg + uma_keg.uk_rsize);
    const size = cpu.load32(keg + uma_keg.uk_size);
    let i = 0;
    for (; i < ipers; i++) if ((yield* callCb(k, cpu, init, mem + rsize * i, size, 0, wait)) !== 0) break;
    if (i !== ipers) {
      yield* keg_free_slab(k, cpu, keg, slab, i);
      return yield* done(0);
    }
  }
  if ((pflag & UMA_SLAB_BOOT) === 0) add64(cpu, g(k, 'uma_kmem_pages'), ppera);
  yield* ZONE_LOCK(k, cpu, z);
  if (entered) cpu.leave();
  if ((kflags & UMA_ZONE_HASH) !== 0) hashInsert(cpu, keg, slab, mem);
  add32(cpu, keg + uma_keg.uk_pages, ppera);
  add32(cpu, keg + uma_keg.uk_free, ipers);
  return slab;
}

/** keg_free_slab: fini for the first `start` items, then the pages back to the backend. */
function* keg_free_slab(k: Kernel, cpu: Cpu, keg: number, slab: number, start: number): Task {
  const mem = cpu.loadPtr(slab + uma_slab.us_data);
  const flags = cpu.load16(slab + uma_slab.us_flags);
  const fini = cpu.loadPtr(keg + uma_keg.uk_fini);
  const rsize = cpu.load32(keg + uma_keg.uk_rsize);
  const size = cpu.load32(keg + uma_keg.uk_size);
  if (fini !== 0) for (let i = start - 1; i > -1; i--) yield* callCb(k, cpu, fini, mem + rsize * i, size, 0, 0);
  const kflags = cpu.load32(keg + uma_keg.uk_flags);
  const ppera = cpu.load16(keg + uma_keg.uk_ppera);
  if ((kflags & UMA_ZONE_VTOSLAB) !== 0) for (let i = 0; i < ppera; i++) vsetslab(k, cpu, mem + i * PAGE_SIZE, 0);
  if ((kflags & UMA_ZONE_OFFPAGE) !== 0) yield* uma_zfree_internal(k, cpu, cpu.loadPtr(keg + uma_keg.uk_slabzone), slab, 0, SKIP_NONE);
  yield* fnAt<UmaFreef>(k, cpu, cpu.loadPtr(keg + uma_keg.uk_freef))(cpu, mem, ppera * UMA_SLAB_SIZE, flags);
  if ((flags & UMA_SLAB_BOOT) === 0) add64(cpu, g(k, 'uma_kmem_pages'), -ppera);
}

/**
 * uma_zone_slab (keg_fetch_slab): a slab with a free item, partly used ones first; a new one
 * from the backend when the keg has none, sleeping at the zone's limit for M_WAITOK. Called
 * with the zone lock held.
 */
function* uma_zone_slab(k: Kernel, cpu: Cpu, z: number, flags: number): Task<number> {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  // An internal keg already in slab_zalloc (its backend recursing into UMA, e.g. for a bucket)
  // gives no item; the bucket's caller copes with NULL. "UMA Slabs" is exempt: an off-page
  // slab header under M_WAITOK must not fail (2005's uk_recurse rule).
  if ((cpu.load32(keg + uma_keg.uk_flags) & UMA_ZFLAG_INTERNAL) !== 0 && cpu.load32(keg + uma_keg.uk_recurse) !== 0 &&
    z !== cpu.loadPtr(g(k, 'slabzone')) && z !== cpu.loadPtr(g(k, 'slabrefzone'))) {
    return 0;
  }
  const reserve = (flags & M_USE_RESERVE) !== 0 ? 0 : cpu.load32(keg + uma_keg.uk_reserve);
  for (;;) {
    if (cpu.load32(keg + uma_keg.uk_free) > reserve) {
      let slab = cpu.loadPtr(keg + uma_keg.uk_part_slab);
      if (slab === 0) {
        slab = cpu.loadPtr(keg + uma_keg.uk_free_slab);
        listRemove(cpu, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
        listInsertHead(cpu, keg + uma_keg.uk_part_slab, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
      }
      return slab;
    }
    if ((flags & M_NOVM) !== 0) break;
    const maxpages = cpu.load32(keg + uma_keg.uk_maxpages);
    if (maxpages !== 0 && cpu.load32(keg + uma_keg.uk_pages) >= maxpages) {
      cpu.store32(keg + uma_keg.uk_flags, (cpu.load32(keg + uma_keg.uk_flags) | UMA_ZFLAG_FULL) >>> 0);
      cpu.store32(z + uma_zone.uz_flags, (cpu.load32(z + uma_zone.uz_flags) | UMA_ZFLAG_FULL) >>> 0);
      if ((flags & M_NOWAIT) !== 0) break;
      add64(cpu, z + uma_zone.uz_sleeps, 1);
      yield* msleep(k, cpu, keg, cpu.loadPtr(z + uma_zone.uz_lock), 'zonelimit');
      continue;
    }
    add32(cpu, keg + uma_keg.uk_recurse, 1);
    const slab = yield* slab_zalloc(k, cpu, z, flags);
    add32(cpu, keg + uma_keg.uk_recurse, -1);
    if (slab !== 0) {
      listInsertHead(cpu, keg + uma_keg.uk_part_slab, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
      return slab;
    }
    // Another CPU may have added a slab while the lock was dropped: look again, then (only
    // M_NOWAIT) fail. M_WAITOK goes round again, as 2005 does.
    if ((flags & M_NOWAIT) !== 0) flags |= M_NOVM;
  }
  return 0;
}

/** uma_slab_alloc (slab_alloc_item): takes the slab's first free item (the zone lock held). */
function uma_slab_alloc(k: Kernel, cpu: Cpu, z: number, slab: number): number {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  const freei = cpu.load8(slab + uma_slab.us_firstfree);
  cpu.store8(slab + uma_slab.us_firstfree, cpu.load8(freeItem(k, cpu, keg, slab, freei, true)));
  const item = cpu.loadPtr(slab + uma_slab.us_data) + cpu.load32(keg + uma_keg.uk_rsize) * freei;
  const cnt = cpu.load16(slab + uma_slab.us_freecount) - 1;
  cpu.store16(slab + uma_slab.us_freecount, cnt);
  add32(cpu, keg + uma_keg.uk_free, -1);
  if (st(k).options.invariants) uma_dbg_alloc(k, cpu, z, slab, item);
  if (cnt === 0) {
    listRemove(cpu, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
    listInsertHead(cpu, keg + uma_keg.uk_full_slab, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
  }
  return item;
}

/** The slab an item of this keg lives in. */
function slabOf(k: Kernel, cpu: Cpu, keg: number, item: number): number {
  const flags = cpu.load32(keg + uma_keg.uk_flags);
  const mem = item - (item % UMA_SLAB_SIZE);
  if ((flags & UMA_ZONE_VTOSLAB) !== 0) return vtoslab(k, cpu, mem);
  if ((flags & UMA_ZONE_HASH) !== 0) return hash_sfind(cpu, keg, mem);
  return mem + cpu.load16(keg + uma_keg.uk_pgoff);
}

/** slab_free_item: the item back on its slab's free list (the zone lock held). */
function* slab_free_item(k: Kernel, cpu: Cpu, z: number, keg: number, slab: number, item: number): Task {
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  const cnt = cpu.load16(slab + uma_slab.us_freecount);
  if (cnt + 1 === ipers) {
    listRemove(cpu, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
    listInsertHead(cpu, keg + uma_keg.uk_free_slab, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
  } else if (cnt === 0) {
    listRemove(cpu, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
    listInsertHead(cpu, keg + uma_keg.uk_part_slab, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
  }
  const freei = Math.floor((item - cpu.loadPtr(slab + uma_slab.us_data)) / cpu.load32(keg + uma_keg.uk_rsize));
  cpu.store8(freeItem(k, cpu, keg, slab, freei, true), cpu.load8(slab + uma_slab.us_firstfree));
  cpu.store8(slab + uma_slab.us_firstfree, freei);
  cpu.store16(slab + uma_slab.us_freecount, cnt + 1);
  add32(cpu, keg + uma_keg.uk_free, 1);
  const kf = cpu.load32(keg + uma_keg.uk_flags);
  if ((kf & UMA_ZFLAG_FULL) !== 0) {
    if (cpu.load32(keg + uma_keg.uk_pages) < cpu.load32(keg + uma_keg.uk_maxpages)) {
      cpu.store32(keg + uma_keg.uk_flags, (kf & ~UMA_ZFLAG_FULL) >>> 0);
      cpu.store32(z + uma_zone.uz_flags, (cpu.load32(z + uma_zone.uz_flags) & ~UMA_ZFLAG_FULL) >>> 0);
    }
    // One more allocation can be had.
    yield* wakeup_one(k, cpu, keg);
  }
}

// --- Buckets -------------------------------------------------------------------------------

function bucketZoneIndex(entries: number): number {
  for (let i = 0; i < bucketZoneEntries.length; i++) if (bucketZoneEntries[i]! >= entries) return i;
  return bucketZoneEntries.length - 1;
}

function* bucket_alloc(k: Kernel, cpu: Cpu, entries: number, bflags: number): Task<number> {
  if (cpu.load32(g(k, 'bucketdisable')) !== 0) return 0;
  const idx = bucketZoneIndex(entries);
  const bucket = yield* uma_zalloc_internal(k, cpu, cpu.loadPtr(g(k, 'bucket_zones') + idx * 8), 0, bflags);
  if (bucket !== 0) {
    cpu.store16(bucket + uma_bucket.ub_cnt, 0);
    cpu.store16(bucket + uma_bucket.ub_entries, bucketZoneEntries[idx]!);
  }
  return bucket;
}

function* bucket_free(k: Kernel, cpu: Cpu, bucket: number): Task {
  const idx = bucketZoneIndex(cpu.load16(bucket + uma_bucket.ub_entries));
  yield* uma_zfree_internal(k, cpu, cpu.loadPtr(g(k, 'bucket_zones') + idx * 8), bucket, 0, SKIP_NONE);
}

/** zone_release: `cnt` items at `store` back to their slabs (or the cache zone's release). */
function* zone_release(k: Kernel, cpu: Cpu, z: number, store: number, cnt: number): Task {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  if (keg === 0) {
    yield* fnAt<UmaRelease>(k, cpu, cpu.loadPtr(z + uma_zone.uz_release))(cpu, cpu.loadPtr(z + uma_zone.uz_arg), store, cnt);
    return;
  }
  yield* ZONE_LOCK(k, cpu, z);
  for (let i = 0; i < cnt; i++) {
    const item = cpu.loadPtr(store + i * 8);
    yield* slab_free_item(k, cpu, z, keg, slabOf(k, cpu, keg, item), item);
  }
  yield* ZONE_UNLOCK(k, cpu, z);
}

/** bucket_drain: the bucket's items fini'ed (zone fini) and released; the zone lock not held. */
function* bucket_drain(k: Kernel, cpu: Cpu, z: number, bucket: number): Task {
  const cnt = cpu.load16(bucket + uma_bucket.ub_cnt);
  const fini = cpu.loadPtr(z + uma_zone.uz_fini);
  if (fini !== 0) {
    const size = cpu.load32(z + uma_zone.uz_size);
    for (let i = 0; i < cnt; i++) yield* callCb(k, cpu, fini, cpu.loadPtr(bucket + ub_bucket + i * 8), size, 0, 0);
  }
  yield* zone_release(k, cpu, z, bucket + ub_bucket, cnt);
  cpu.store16(bucket + uma_bucket.ub_cnt, 0);
}

/**
 * uma_zalloc_bucket: a bucket (from the depot's empty ones, else a bucket zone) filled from the
 * keg's slabs (or the cache zone's import) and put on uz_full_bucket. The zone lock is held on
 * entry and exit. Returns whether a bucket with items was added.
 */
function* uma_zalloc_bucket(k: Kernel, cpu: Cpu, z: number, flags: number): Task<boolean> {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  let bucket = cpu.loadPtr(z + uma_zone.uz_free_bucket);
  if (bucket !== 0) {
    listRemove(cpu, bucket, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
  } else {
    let bflags = flags & ~M_ZERO;
    if ((cpu.load32(z + uma_zone.uz_flags) & UMA_ZFLAG_CACHEONLY) !== 0) bflags |= M_NOVM;
    const count = cpu.load16(z + uma_zone.uz_count);
    yield* ZONE_UNLOCK(k, cpu, z);
    bucket = yield* bucket_alloc(k, cpu, count, bflags);
    yield* ZONE_LOCK(k, cpu, z);
  }
  if (bucket === 0) return false;
  // No more fills under way at once than there are CPUs (2005, SMP): the bucket goes back and
  // the caller takes a single item from the slab layer.
  const fills = cpu.load16(z + uma_zone.uz_fills);
  if (fills >= k.ncpus) {
    yield* bucket_free(k, cpu, bucket);
    return false;
  }
  cpu.store16(z + uma_zone.uz_fills, fills + 1);
  const max = Math.min(cpu.load16(bucket + uma_bucket.ub_entries), cpu.load16(z + uma_zone.uz_count));
  const saved = cpu.load16(bucket + uma_bucket.ub_cnt);
  let cnt = saved;
  if (keg === 0) {
    yield* ZONE_UNLOCK(k, cpu, z);
    cnt += yield* fnAt<UmaImport>(k, cpu, cpu.loadPtr(z + uma_zone.uz_import))(cpu, cpu.loadPtr(z + uma_zone.uz_arg), bucket + ub_bucket + cnt * 8, max - cnt, flags);
    yield* ZONE_LOCK(k, cpu, z);
  } else {
    let f = flags;
    while (cnt < max) {
      const slab = yield* uma_zone_slab(k, cpu, z, f);
      if (slab === 0) break;
      // With FreeBSD 10's arenas (vm.kmem_backend=vmem), a keg with a reserve (uma_zone_reserve)
      // gives buckets no item of it, as FreeBSD 10's zone_import; the 2005 fill has no such test.
      const keg = k.kmem_arena !== 0 ? cpu.loadPtr(z + uma_zone.uz_keg) : 0;
      const reserve = keg !== 0 ? cpu.load32(keg + uma_keg.uk_reserve) : 0;
      let atReserve = false;
      while (cpu.load16(slab + uma_slab.us_freecount) > 0 && cnt < max) {
        cpu.storePtr(bucket + ub_bucket + 8 * cnt++, uma_slab_alloc(k, cpu, z, slab));
        if (reserve !== 0 && cpu.load32(keg + uma_keg.uk_free) <= reserve) {
          atReserve = true;
          break;
        }
      }
      if (atReserve) break;
      f |= M_NOWAIT; // don't block on the next slab
    }
  }
  cpu.store16(bucket + uma_bucket.ub_cnt, cnt);
  const init = cpu.loadPtr(z + uma_zone.uz_init);
  if (init !== 0 && cnt > saved) {
    yield* ZONE_UNLOCK(k, cpu, z);
    const size = cpu.load32(z + uma_zone.uz_size);
    let i = saved;
    for (; i < cnt; i++) if ((yield* callCb(k, cpu, init, cpu.loadPtr(bucket + ub_bucket + i * 8), size, 0, flags)) !== 0) break;
    if (i !== cnt) {
      yield* zone_release(k, cpu, z, bucket + ub_bucket + i * 8, cnt - i);
      cnt = i;
      cpu.store16(bucket + uma_bucket.ub_cnt, cnt);
    }
    yield* ZONE_LOCK(k, cpu, z);
  }
  cpu.store16(z + uma_zone.uz_fills, cpu.load16(z + uma_zone.uz_fills) - 1);
  if (cnt !== 0) {
    depotPutFull(cpu, z, bucket, cnt);
    return true;
  }
  yield* bucket_free(k, cpu, bucket);
  return false;
}

function depotPutFull(cpu: Cpu, z: number, bucket: number, cnt: number): void {
  listInsertHead(cpu, z + uma_zone.uz_full_bucket, bucket, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
  const n = cpu.load32(z + uma_zone.uz_bktcount) + cnt;
  cpu.store32(z + uma_zone.uz_bktcount, n);
  if (n > cpu.load32(z + uma_zone.uz_imax)) cpu.store32(z + uma_zone.uz_imax, n);
}

function depotTakeFull(cpu: Cpu, z: number, bucket: number): void {
  listRemove(cpu, bucket, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
  const n = cpu.load32(z + uma_zone.uz_bktcount) - cpu.load16(bucket + uma_bucket.ub_cnt);
  cpu.store32(z + uma_zone.uz_bktcount, n);
  if (n < cpu.load32(z + uma_zone.uz_imin)) cpu.store32(z + uma_zone.uz_imin, n);
}

// --- Allocation ------------------------------------------------------------------------------

/**
 * uma_zalloc_internal (zone_alloc_item): one item straight from a slab (or the cache zone's
 * import), then the zone's init and ctor. 0 on failure.
 */
export function* uma_zalloc_internal(k: Kernel, cpu: Cpu, z: number, udata: number, flags: number): Task<number> {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  let item: number;
  if (keg === 0) {
    const s = scratch(k, cpu);
    const n = yield* fnAt<UmaImport>(k, cpu, cpu.loadPtr(z + uma_zone.uz_import))(cpu, cpu.loadPtr(z + uma_zone.uz_arg), s, 1, flags);
    if (n !== 1) {
      add64(cpu, z + uma_zone.uz_fails, 1);
      return 0;
    }
    item = cpu.loadPtr(s);
    add64(cpu, z + uma_zone.uz_allocs, 1);
  } else {
    yield* ZONE_LOCK(k, cpu, z);
    const slab = yield* uma_zone_slab(k, cpu, z, flags);
    if (slab === 0) {
      add64(cpu, z + uma_zone.uz_fails, 1);
      yield* ZONE_UNLOCK(k, cpu, z);
      return 0;
    }
    item = uma_slab_alloc(k, cpu, z, slab);
    add64(cpu, z + uma_zone.uz_allocs, 1);
    yield* ZONE_UNLOCK(k, cpu, z);
  }
  const size = cpu.load32(z + uma_zone.uz_size);
  const init = cpu.loadPtr(z + uma_zone.uz_init);
  if (init !== 0 && (yield* callCb(k, cpu, init, item, size, 0, flags)) !== 0) {
    yield* uma_zfree_internal(k, cpu, z, item, udata, SKIP_FINI);
    add64(cpu, z + uma_zone.uz_fails, 1);
    return 0;
  }
  const ctor = cpu.loadPtr(z + uma_zone.uz_ctor);
  if (ctor !== 0 && (yield* callCb(k, cpu, ctor, item, size, udata, flags)) !== 0) {
    yield* uma_zfree_internal(k, cpu, z, item, udata, SKIP_DTOR);
    add64(cpu, z + uma_zone.uz_fails, 1);
    return 0;
  }
  if ((flags & M_ZERO) !== 0) bzero(cpu, item, size);
  return item;
}

/**
 * uma_zalloc_arg: an item from the zone. The CPU's alloc bucket first (swapped with the free
 * bucket when empty), else under the zone lock a full bucket from the depot, else a bucket
 * filled from the keg's slabs, else a single item. With buckets off (uz_count 0) the item
 * comes straight from a slab.
 */
export function* uma_zalloc_arg(k: Kernel, cpu: Cpu, h: UmaZone, udata: number, flags: number): Task<number> {
  const z = h.z;
  const path = new OpPath(k, cpu, 0);
  path.go(CPUCACHE);
  // Instruction cost of the bucket-hit path, estimated from FreeBSD 12's C for it (not
  // compiled here: the seeds hold only uma.h): ~45 instructions, ~15 of them the accesses
  // made here. Entry: call, prologue, the flag tests, curcpu and the cache's address.
  cpu.work(14);
  if ((flags & (M_WAITOK | M_NOWAIT)) === 0) flags |= M_WAITOK;
  const inv = st(k).options.invariants;
  let haveCache = false;
  for (;;) {
    if (!haveCache) {
      yield* cacheEnter(k, cpu, h);
      haveCache = true;
    }
    let cache = cacheOf(h, cpu.id);
    const bucket = cpu.loadPtr(cache + uma_cache.uc_allocbucket);
    if (bucket !== 0) {
      const cnt = cpu.load16(bucket + uma_bucket.ub_cnt);
      if (cnt > 0) {
        cpu.store16(bucket + uma_bucket.ub_cnt, cnt - 1);
        const slot = bucket + ub_bucket + (cnt - 1) * 8;
        const item = cpu.loadPtr(slot);
        if (inv) cpu.storePtr(slot, 0);
        add64(cpu, cache + uma_cache.uc_allocs, 1);
        yield* cacheExit(k, cpu, h);
        if (inv) {
          yield* ZONE_LOCK(k, cpu, z);
          uma_dbg_alloc(k, cpu, z, 0, item);
          yield* ZONE_UNLOCK(k, cpu, z);
        }
        // As 2005: the item's size (the keg's uk_size) is read only for a ctor or M_ZERO.
        const ctor = cpu.loadPtr(z + uma_zone.uz_ctor);
        if (ctor !== 0 && (yield* callCb(k, cpu, ctor, item, zoneSize(cpu, z), udata, flags)) !== 0) {
          add64(cpu, z + uma_zone.uz_fails, 1);
          yield* uma_zfree_internal(k, cpu, z, item, udata, SKIP_DTOR);
          path.end();
          return 0;
        }
        if ((flags & M_ZERO) !== 0) bzero(cpu, item, zoneSize(cpu, z));
        cpu.work(16); // the bucket tests, the decrement and index, the ctor and M_ZERO tests, epilogue
        cpu.branch(); // ret
        path.end();
        return item;
      }
      const fb = cpu.loadPtr(cache + uma_cache.uc_freebucket);
      if (fb !== 0 && cpu.load16(fb + uma_bucket.ub_cnt) > 0) {
        cpu.storePtr(cache + uma_cache.uc_freebucket, bucket);
        cpu.storePtr(cache + uma_cache.uc_allocbucket, fb);
        continue;
      }
    }
    // The per-CPU cache is empty: to the zone, which needs its lock.
    yield* cacheExit(k, cpu, h);
    haveCache = false;
    // uz_count 0 (buckets off, NOBUCKET, internal zones; FreeBSD 10 tests it on this slow path):
    // every request to the slab layer.
    if (cpu.load16(z + uma_zone.uz_count) === 0) {
      path.go(SLAB);
      const item = yield* uma_zalloc_internal(k, cpu, z, udata, flags);
      path.end();
      return item;
    }
    path.go(DEPOT);
    const lockfail = h.autoTune ? yield* zoneLockContended(k, cpu, z) : (yield* ZONE_LOCK(k, cpu, z), false);
    yield* cacheEnter(k, cpu, h);
    haveCache = true;
    cache = cacheOf(h, cpu.id);
    const ab = cpu.loadPtr(cache + uma_cache.uc_allocbucket);
    if (ab !== 0) {
      const fb = cpu.loadPtr(cache + uma_cache.uc_freebucket);
      if (cpu.load16(ab + uma_bucket.ub_cnt) > 0 || (fb !== 0 && cpu.load16(fb + uma_bucket.ub_cnt) > 0)) {
        yield* ZONE_UNLOCK(k, cpu, z);
        continue;
      }
    }
    add64(cpu, z + uma_zone.uz_allocs, cpu.load64(cache + uma_cache.uc_allocs));
    cpu.store64(cache + uma_cache.uc_allocs, 0);
    if (ab !== 0) {
      listInsertHead(cpu, z + uma_zone.uz_free_bucket, ab, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
      cpu.storePtr(cache + uma_cache.uc_allocbucket, 0);
    }
    const full = cpu.loadPtr(z + uma_zone.uz_full_bucket);
    if (full !== 0) {
      depotTakeFull(cpu, z, full);
      cpu.storePtr(cache + uma_cache.uc_allocbucket, full);
      yield* ZONE_UNLOCK(k, cpu, z);
      continue;
    }
    yield* cacheExit(k, cpu, h);
    haveCache = false;
    // 2005 bumps uz_count on every fill so that the zone comes here less; the 2013 rule
    // (autoTune) only when the zone lock was found contended. A cache zone (keg 0: 2013's
    // uma_zcache_create, vmem's quantum caches) has no 2005 rule and keeps its uz_count.
    const count = cpu.load16(z + uma_zone.uz_count);
    const grow = h.autoTune ? lockfail : cpu.loadPtr(z + uma_zone.uz_keg) !== 0;
    if (grow && count < BUCKET_MAX) cpu.store16(z + uma_zone.uz_count, count + 1);
    path.go(SLAB);
    if (yield* uma_zalloc_bucket(k, cpu, z, flags)) {
      yield* ZONE_UNLOCK(k, cpu, z);
      continue;
    }
    yield* ZONE_UNLOCK(k, cpu, z);
    const item = yield* uma_zalloc_internal(k, cpu, z, udata, flags);
    path.end();
    return item;
  }
}

export function* uma_zalloc(k: Kernel, cpu: Cpu, h: UmaZone, flags: number): Task<number> {
  return yield* uma_zalloc_arg(k, cpu, h, 0, flags);
}

// --- Free -------------------------------------------------------------------------------------

/** uma_zfree_internal (zone_free_item): dtor and fini unless skipped, then to the slab. */
export function* uma_zfree_internal(k: Kernel, cpu: Cpu, z: number, item: number, udata: number, skip: number): Task {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  const size = cpu.load32(z + uma_zone.uz_size);
  const dtor = cpu.loadPtr(z + uma_zone.uz_dtor);
  if (skip < SKIP_DTOR && dtor !== 0) yield* callCb(k, cpu, dtor, item, size, udata, 0);
  const fini = cpu.loadPtr(z + uma_zone.uz_fini);
  if (skip < SKIP_FINI && fini !== 0) yield* callCb(k, cpu, fini, item, size, 0, 0);
  if (keg === 0) {
    const s = scratch(k, cpu);
    cpu.storePtr(s, item);
    add64(cpu, z + uma_zone.uz_frees, 1);
    yield* fnAt<UmaRelease>(k, cpu, cpu.loadPtr(z + uma_zone.uz_release))(cpu, cpu.loadPtr(z + uma_zone.uz_arg), s, 1);
    return;
  }
  yield* ZONE_LOCK(k, cpu, z);
  const slab = (cpu.load32(keg + uma_keg.uk_flags) & UMA_ZONE_MALLOC) !== 0 && udata !== 0 ? udata : slabOf(k, cpu, keg, item);
  if (skip === SKIP_NONE && st(k).options.invariants) uma_dbg_free(k, cpu, z, slab, item);
  yield* slab_free_item(k, cpu, z, keg, slab, item);
  add64(cpu, z + uma_zone.uz_frees, 1);
  yield* ZONE_UNLOCK(k, cpu, z);
}

/**
 * uma_zfree_arg: the item back to the CPU's free bucket (swapped with the alloc bucket when
 * full); else under the zone lock the full free bucket goes to the depot — or, when the depot
 * holds uz_bktmax items already, is drained to slabs — and an empty bucket comes back; else a
 * new bucket; else the item goes straight to its slab.
 */
export function* uma_zfree_arg(k: Kernel, cpu: Cpu, h: UmaZone, item: number, udata: number): Task {
  const z = h.z;
  const path = new OpPath(k, cpu, 1);
  path.go(CPUCACHE);
  // As in uma_zalloc_arg: ~45 instructions on the bucket-hit path, ~18 of them accesses here.
  cpu.work(14); // call, prologue, item == NULL, the dtor, flag and count tests, the cache's address
  if (item === 0) {
    path.end();
    return;
  }
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  const dtor = cpu.loadPtr(z + uma_zone.uz_dtor);
  if (dtor !== 0) yield* callCb(k, cpu, dtor, item, zoneSize(cpu, z), udata, 0);
  if (st(k).options.invariants) {
    yield* ZONE_LOCK(k, cpu, z);
    const malloc = keg !== 0 && (cpu.load32(keg + uma_keg.uk_flags) & UMA_ZONE_MALLOC) !== 0;
    uma_dbg_free(k, cpu, z, malloc ? udata : 0, item);
    yield* ZONE_UNLOCK(k, cpu, z);
  }
  // As 2005: a keg at its limit takes frees straight to its slabs (the test may race).
  if (keg !== 0 && (cpu.load32(keg + uma_keg.uk_flags) & UMA_ZFLAG_FULL) !== 0) {
    path.go(SLAB);
    yield* uma_zfree_internal(k, cpu, z, item, udata, SKIP_DTOR);
    path.end();
    return;
  }
  let haveCache = false;
  for (;;) {
    if (!haveCache) {
      yield* cacheEnter(k, cpu, h);
      haveCache = true;
    }
    let cache = cacheOf(h, cpu.id);
    const bucket = cpu.loadPtr(cache + uma_cache.uc_freebucket);
    if (bucket !== 0) {
      const cnt = cpu.load16(bucket + uma_bucket.ub_cnt);
      if (cnt < cpu.load16(bucket + uma_bucket.ub_entries)) {
        cpu.storePtr(bucket + ub_bucket + cnt * 8, item);
        cpu.store16(bucket + uma_bucket.ub_cnt, cnt + 1);
        add64(cpu, cache + uma_cache.uc_frees, 1);
        yield* cacheExit(k, cpu, h);
        cpu.work(13); // the bucket tests, the index, the increment, epilogue
        cpu.branch(); // ret
        path.end();
        return;
      }
      const ab = cpu.loadPtr(cache + uma_cache.uc_allocbucket);
      if (ab !== 0 && cpu.load16(ab + uma_bucket.ub_cnt) < cnt) {
        cpu.storePtr(cache + uma_cache.uc_freebucket, ab);
        cpu.storePtr(cache + uma_cache.uc_allocbucket, bucket);
        continue;
      }
    }
    yield* cacheExit(k, cpu, h);
    haveCache = false;
    if (cpu.load16(z + uma_zone.uz_count) === 0) {
      path.go(SLAB);
      yield* uma_zfree_internal(k, cpu, z, item, udata, SKIP_DTOR);
      path.end();
      return;
    }
    path.go(DEPOT);
    const lockfail = h.autoTune ? yield* zoneLockContended(k, cpu, z) : (yield* ZONE_LOCK(k, cpu, z), false);
    yield* cacheEnter(k, cpu, h);
    haveCache = true;
    cache = cacheOf(h, cpu.id);
    const fb = cpu.loadPtr(cache + uma_cache.uc_freebucket);
    if (fb !== 0 && cpu.load16(fb + uma_bucket.ub_cnt) < cpu.load16(fb + uma_bucket.ub_entries)) {
      yield* ZONE_UNLOCK(k, cpu, z);
      continue;
    }
    add64(cpu, z + uma_zone.uz_allocs, cpu.load64(cache + uma_cache.uc_allocs));
    cpu.store64(cache + uma_cache.uc_allocs, 0);
    add64(cpu, z + uma_zone.uz_frees, cpu.load64(cache + uma_cache.uc_frees));
    cpu.store64(cache + uma_cache.uc_frees, 0);
    cpu.storePtr(cache + uma_cache.uc_freebucket, 0);
    if (fb !== 0) {
      const cnt = cpu.load16(fb + uma_bucket.ub_cnt);
      if (cpu.load32(z + uma_zone.uz_bktcount) + cnt > cpu.load32(z + uma_zone.uz_bktmax)) {
        // The depot is over its limit: this bucket's items go back to their slabs.
        yield* cacheExit(k, cpu, h);
        haveCache = false;
        yield* ZONE_UNLOCK(k, cpu, z);
        path.go(SLAB);
        yield* bucket_drain(k, cpu, z, fb);
        yield* cacheEnter(k, cpu, h);
        haveCache = true;
        cache = cacheOf(h, cpu.id);
        if (cpu.loadPtr(cache + uma_cache.uc_freebucket) === 0) {
          cpu.storePtr(cache + uma_cache.uc_freebucket, fb);
        } else {
          yield* cacheExit(k, cpu, h);
          haveCache = false;
          yield* bucket_free(k, cpu, fb);
        }
        continue;
      }
      depotPutFull(cpu, z, fb, cnt);
    }
    const empty = cpu.loadPtr(z + uma_zone.uz_free_bucket);
    if (empty !== 0) {
      listRemove(cpu, empty, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
      cpu.storePtr(cache + uma_cache.uc_freebucket, empty);
      yield* ZONE_UNLOCK(k, cpu, z);
      continue;
    }
    yield* cacheExit(k, cpu, h);
    haveCache = false;
    const count = cpu.load16(z + uma_zone.uz_count);
    if (lockfail && count < BUCKET_MAX) cpu.store16(z + uma_zone.uz_count, count + 1);
    yield* ZONE_UNLOCK(k, cpu, z);
    let bflags = M_NOWAIT;
    if ((cpu.load32(z + uma_zone.uz_flags) & UMA_ZFLAG_CACHEONLY) !== 0) bflags |= M_NOVM;
    const nb = yield* bucket_alloc(k, cpu, cpu.load16(z + uma_zone.uz_count), bflags);
    if (nb !== 0) {
      yield* ZONE_LOCK(k, cpu, z);
      listInsertHead(cpu, z + uma_zone.uz_free_bucket, nb, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
      yield* ZONE_UNLOCK(k, cpu, z);
      continue;
    }
    path.go(SLAB);
    yield* uma_zfree_internal(k, cpu, z, item, udata, SKIP_DTOR);
    path.end();
    return;
  }
}

export function* uma_zfree(k: Kernel, cpu: Cpu, h: UmaZone, item: number): Task {
  yield* uma_zfree_arg(k, cpu, h, item, 0);
}

// --- Kegs and zones ---------------------------------------------------------------------------

interface ZoneArgs {
  name: string;
  size: number;
  ctor: number;
  dtor: number;
  uminit: number;
  fini: number;
  importf: number;
  releasef: number;
  arg: number;
  keg: number;
  align: number;
  flags: number;
}

function keg_small_init(cpu: Cpu, keg: number): void {
  let rsize = cpu.load32(keg + uma_keg.uk_size);
  const align = cpu.load32(keg + uma_keg.uk_align);
  let flags = cpu.load32(keg + uma_keg.uk_flags);
  if (rsize < UMA_SMALLEST_UNIT) rsize = UMA_SMALLEST_UNIT;
  if ((rsize & align) !== 0) rsize = (rsize & ~align) + align + 1;
  cpu.store32(keg + uma_keg.uk_rsize, rsize);
  cpu.store16(keg + uma_keg.uk_ppera, 1);
  const refcnt = (flags & UMA_ZONE_REFCNT) !== 0;
  const shsize = refcnt ? uma_slab_refcnt_sizeof : (flags & UMA_ZONE_OFFPAGE) !== 0 ? 0 : uma_slab.sizeof;
  const fritm = refcnt ? UMA_FRITMREF_SZ : UMA_FRITM_SZ;
  let ipers = Math.min(UMA_MAX_IPERS, Math.floor((UMA_SLAB_SIZE - shsize) / (rsize + fritm)));
  const wasted = UMA_SLAB_SIZE - (ipers * (rsize + fritm) + shsize);
  if ((flags & (UMA_ZFLAG_INTERNAL | UMA_ZFLAG_CACHEONLY)) === 0 && wasted >= UMA_MAX_WASTE && ipers < Math.floor(UMA_SLAB_SIZE / rsize)) {
    ipers = Math.min(UMA_MAX_IPERS, Math.floor(UMA_SLAB_SIZE / rsize));
    flags |= UMA_ZONE_OFFPAGE;
    if ((flags & UMA_ZONE_VTOSLAB) === 0) flags |= UMA_ZONE_HASH;
  }
  cpu.store16(keg + uma_keg.uk_ipers, ipers);
  cpu.store32(keg + uma_keg.uk_flags, flags >>> 0);
}

function keg_large_init(cpu: Cpu, keg: number): void {
  const size = cpu.load32(keg + uma_keg.uk_size);
  let ppera = Math.ceil(size / PAGE_SIZE);
  let flags = cpu.load32(keg + uma_keg.uk_flags);
  cpu.store16(keg + uma_keg.uk_ipers, 1);
  cpu.store32(keg + uma_keg.uk_rsize, size);
  if ((flags & UMA_ZFLAG_INTERNAL) !== 0) {
    // An internal keg cannot take its slab headers from "UMA Slabs" (which may not exist yet:
    // "UMA Zones" on a machine with many CPUs): the header goes on the slab's last page, on
    // one more page when the item leaves no room (keg_large_init of FreeBSD 12).
    if (ppera * PAGE_SIZE - size < slabHeaderBytes(1)) ppera++;
  } else {
    flags |= UMA_ZONE_OFFPAGE;
    if ((flags & UMA_ZONE_VTOSLAB) === 0) flags |= UMA_ZONE_HASH;
  }
  cpu.store16(keg + uma_keg.uk_ppera, ppera);
  cpu.store32(keg + uma_keg.uk_flags, flags >>> 0);
}

/** An on-page slab header with its free-list index for `ipers` items, pointer-aligned. */
function slabHeaderBytes(ipers: number, refcnt = false): number {
  const totsize = refcnt ? uma_slab_refcnt_sizeof + ipers * UMA_FRITMREF_SZ : uma_slab.sizeof + ipers * UMA_FRITM_SZ;
  return (totsize & UMA_ALIGN_PTR) !== 0 ? (totsize & ~UMA_ALIGN_PTR) + UMA_ALIGN_PTR + 1 : totsize;
}

function* keg_ctor(k: Kernel, cpu: Cpu, keg: number, zone: number, a: ZoneArgs): Task {
  const s = st(k);
  bzero(cpu, keg, uma_keg.sizeof);
  cpu.store32(keg + uma_keg.uk_size, a.size);
  cpu.storePtr(keg + uma_keg.uk_init, a.uminit);
  cpu.storePtr(keg + uma_keg.uk_fini, a.fini);
  cpu.store32(keg + uma_keg.uk_align, a.align);
  let flags = a.flags;
  cpu.storePtr(keg + uma_keg.uk_allocf, s.page_alloc);
  cpu.storePtr(keg + uma_keg.uk_freef, s.page_free);
  cpu.storePtr(keg + uma_keg.uk_name, cpu.loadPtr(zone + uma_zone.uz_name));
  if ((flags & UMA_ZONE_VM) !== 0) flags |= UMA_ZFLAG_CACHEONLY;
  if ((flags & UMA_ZONE_ZINIT) !== 0) cpu.storePtr(keg + uma_keg.uk_init, s.zero_init);
  // Refcount kegs find their slab by vtoslab (uma_find_refcnt), as malloc's do.
  if ((flags & (UMA_ZONE_MALLOC | UMA_ZONE_REFCNT)) !== 0) flags |= UMA_ZONE_VTOSLAB;
  const refcnt = (flags & UMA_ZONE_REFCNT) !== 0;
  if (refcnt) s.refcntKegs.add(keg);
  cpu.store32(keg + uma_keg.uk_flags, flags >>> 0);
  const large = refcnt ? a.size + UMA_FRITMREF_SZ > UMA_SLAB_SIZE - uma_slab_refcnt_sizeof : a.size > UMA_SLAB_SIZE - uma_slab.sizeof - UMA_FRITM_SZ;
  if (large) keg_large_init(cpu, keg);
  else keg_small_init(cpu, keg);
  flags = cpu.load32(keg + uma_keg.uk_flags);
  if ((flags & UMA_ZONE_OFFPAGE) !== 0) cpu.storePtr(keg + uma_keg.uk_slabzone, cpu.loadPtr(g(k, refcnt ? 'slabrefzone' : 'slabzone')));
  const ppera = cpu.load16(keg + uma_keg.uk_ppera);
  const booted = cpu.load32(g(k, 'booted'));
  if ((ppera === 1 && booted < UMA_STARTUP2) || (booted < UMA_STARTUP2 && (flags & UMA_ZFLAG_INTERNAL) !== 0)) cpu.storePtr(keg + uma_keg.uk_allocf, s.startup_alloc);
  if ((flags & UMA_ZONE_OFFPAGE) === 0) {
    const pgoff = UMA_SLAB_SIZE * ppera - slabHeaderBytes(cpu.load16(keg + uma_keg.uk_ipers), refcnt);
    cpu.store16(keg + uma_keg.uk_pgoff, pgoff);
    const ipers = cpu.load16(keg + uma_keg.uk_ipers);
    if (ipers * cpu.load32(keg + uma_keg.uk_rsize) > pgoff) panic(cpu, "UMA slab won't fit.");
  }
  if ((flags & UMA_ZONE_HASH) !== 0) {
    const tab = yield* uma_zalloc_internal(k, cpu, cpu.loadPtr(g(k, 'hashzone')), 0, M_WAITOK);
    bzero(cpu, tab, UMA_HASH_SIZE_INIT * 8);
    cpu.storePtr(keg + uma_keg.uk_hash, tab);
    cpu.store32(keg + uma_keg.uk_hash + 8, UMA_HASH_SIZE_INIT);
    cpu.store32(keg + uma_keg.uk_hash + 12, UMA_HASH_SIZE_INIT - 1);
  }
  listInsertHead(cpu, keg + uma_keg.uk_zones, zone, uma_zone.uz_link_next, uma_zone.uz_link_prev);
  yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
  listInsertHead(cpu, g(k, 'uma_kegs'), keg, uma_keg.uk_link_next, uma_keg.uk_link_prev);
  yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
}

function setName(cpu: Cpu, z: number, name: string): void {
  const buf = z + uma_zone.uz_namebuf;
  const n = Math.min(name.length, UMA_NAME_MAX - 1);
  for (let i = 0; i < n; i++) cpu.store8(buf + i, name.charCodeAt(i) & 0xff);
  cpu.store8(buf + n, 0);
  cpu.storePtr(z + uma_zone.uz_name, buf);
}

/** zone_ctor: `headerBytes` from z (the header and its caches), kmemu's block below z zeroed too. */
function* zone_ctor(k: Kernel, cpu: Cpu, z: number, headerBytes: number, a: ZoneArgs, o: UmaZoneOptions): Task {
  bzero(cpu, z - UMA_ZONE_EXT, UMA_ZONE_EXT + headerBytes);
  setName(cpu, z, a.name);
  cpu.storePtr(z + uma_zone.uz_ctor, a.ctor);
  cpu.storePtr(z + uma_zone.uz_dtor, a.dtor);
  cpu.store32(z + uma_zone.uz_bktmax, o.depotMax ?? 0xffffffff);
  let keg = a.keg;
  if (a.importf !== 0) {
    let flags = a.flags;
    if ((flags & UMA_ZONE_VM) !== 0) flags |= UMA_ZFLAG_CACHEONLY;
    cpu.store32(z + uma_zone.uz_flags, flags >>> 0);
    cpu.store32(z + uma_zone.uz_size, a.size);
    cpu.storePtr(z + uma_zone.uz_import, a.importf);
    cpu.storePtr(z + uma_zone.uz_release, a.releasef);
    cpu.storePtr(z + uma_zone.uz_arg, a.arg);
    cpu.storePtr(z + uma_zone.uz_lock, z + uma_zone.uz_lockstore);
    yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
    listInsertHead(cpu, g(k, 'uma_cachezones'), z, uma_zone.uz_link_next, uma_zone.uz_link_prev);
    yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
  } else {
    cpu.storePtr(z + uma_zone.uz_import, st(k).zone_import);
    cpu.storePtr(z + uma_zone.uz_release, st(k).zone_release);
    cpu.storePtr(z + uma_zone.uz_arg, z);
    if ((a.flags & UMA_ZONE_SECONDARY) !== 0) {
      cpu.storePtr(z + uma_zone.uz_init, a.uminit);
      cpu.storePtr(z + uma_zone.uz_fini, a.fini);
      cpu.store32(z + uma_zone.uz_flags, UMA_ZONE_SECONDARY);
      yield* KEG_LOCK(k, cpu, keg);
      // After the keg's last zone.
      let link = keg + uma_keg.uk_zones;
      for (let zz = cpu.loadPtr(link); zz !== 0; zz = cpu.loadPtr(link)) link = zz + uma_zone.uz_link_next;
      cpu.storePtr(z + uma_zone.uz_link_next, 0);
      cpu.storePtr(z + uma_zone.uz_link_prev, link);
      cpu.storePtr(link, z);
      yield* KEG_UNLOCK(k, cpu, keg);
    } else if (keg === 0) {
      keg = yield* uma_zalloc_internal(k, cpu, g(k, 'masterzone_k'), 0, M_WAITOK);
      if (keg === 0) panic(cpu, 'uma_zcreate: no memory for the keg');
      yield* keg_ctor(k, cpu, keg, z, a);
    } else {
      yield* keg_ctor(k, cpu, keg, z, a);
    }
    cpu.storePtr(z + uma_zone.uz_keg, keg);
    cpu.storePtr(z + uma_zone.uz_lock, keg + uma_keg.uk_lock);
    cpu.store32(z + uma_zone.uz_size, cpu.load32(keg + uma_keg.uk_size));
    const kf = cpu.load32(keg + uma_keg.uk_flags);
    cpu.store32(z + uma_zone.uz_flags, (cpu.load32(z + uma_zone.uz_flags) | (kf & (UMA_ZONE_INHERIT | UMA_ZFLAG_INHERIT))) >>> 0);
    if ((kf & UMA_ZFLAG_INTERNAL) !== 0) return;
  }
  let count: number;
  const ipers = keg !== 0 ? cpu.load16(keg + uma_keg.uk_ipers) : Math.max(1, Math.floor(UMA_SLAB_SIZE / Math.max(a.size, 1)));
  if ((a.flags & UMA_ZONE_MAXBUCKET) !== 0) count = BUCKET_MAX;
  else count = Math.min(ipers, BUCKET_MAX);
  if (o.bucketSize !== undefined) count = Math.max(1, Math.min(BUCKET_MAX, Math.floor(o.bucketSize)));
  if ((a.flags & UMA_ZONE_NOBUCKET) !== 0 || o.pcpu === false) count = 0;
  cpu.store16(z + uma_zone.uz_count, count);
  cpu.store16(z + uma_zone.uz_count_min, count);
}

function makeHandle(k: Kernel, z: number, o: UmaZoneOptions): UmaZone {
  const h: UmaZone = { z, aligned: o.aligned ?? false, cacheLock: o.cacheLock ?? 'critical', autoTune: o.autoTune ?? false };
  st(k).handles.set(z, h);
  return h;
}

function* zoneCreate(k: Kernel, cpu: Cpu, a: ZoneArgs, o: UmaZoneOptions): Task<UmaZone> {
  if (((a.align + 1) & a.align) !== 0) panic(cpu, `invalid zone alignment ${a.align} for "${a.name}"`);
  const item = yield* uma_zalloc_internal(k, cpu, g(k, 'masterzone_z'), 0, M_WAITOK);
  if (item === 0) panic(cpu, `uma_zcreate(${a.name}): no memory for the zone`);
  const z = item + UMA_ZONE_EXT;
  yield* zone_ctor(k, cpu, z, zoneHeaderSize(k.ncpus) - UMA_ZONE_EXT, a, o);
  return makeHandle(k, z, o);
}

/** uma_zcreate: a zone over a new keg. */
export function* uma_zcreate(
  k: Kernel, cpu: Cpu, name: string, size: number, ctor: UmaCallback | undefined, dtor: UmaCallback | undefined,
  uminit: UmaCallback | undefined, fini: UmaCallback | undefined, align: number, flags: number, opts: UmaZoneOptions = {},
): Task<UmaZone> {
  const s = st(k);
  const a: ZoneArgs = {
    name, size, ctor: fnptr(k, ctor), dtor: fnptr(k, dtor), uminit: fnptr(k, uminit), fini: fnptr(k, fini),
    importf: 0, releasef: 0, arg: 0, keg: 0, align: align === UMA_ALIGN_CACHE ? UMA_ALIGN_CACHE : align, flags,
  };
  if (s.options.trash && (flags & (UMA_ZONE_ZINIT | UMA_ZONE_NOFREE)) === 0 && a.ctor === 0 && a.dtor === 0 && a.uminit === 0 && a.fini === 0) {
    [a.ctor, a.dtor, a.uminit, a.fini] = s.trash;
  }
  if ((flags & UMA_ZONE_REFCNT) !== 0 && cpu.loadPtr(g(k, 'slabrefzone')) === 0) {
    const rz = yield* uma_zcreate(k, cpu, 'UMA RCntSlabs', UMA_RCNTSLAB_SIZE, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, UMA_ZFLAG_INTERNAL);
    cpu.storePtr(g(k, 'slabrefzone'), rz.z);
  }
  return yield* zoneCreate(k, cpu, a, opts);
}

/** uma_zsecond_create: another zone over the keg of `master`, with its own ctor/dtor/init/fini. */
export function* uma_zsecond_create(
  k: Kernel, cpu: Cpu, name: string, ctor: UmaCallback | undefined, dtor: UmaCallback | undefined, zinit: UmaCallback | undefined,
  zfini: UmaCallback | undefined, master: UmaZone, opts: UmaZoneOptions = {},
): Task<UmaZone> {
  const keg = cpu.loadPtr(master.z + uma_zone.uz_keg);
  const a: ZoneArgs = {
    name, size: cpu.load32(keg + uma_keg.uk_size), ctor: fnptr(k, ctor), dtor: fnptr(k, dtor), uminit: fnptr(k, zinit), fini: fnptr(k, zfini),
    importf: 0, releasef: 0, arg: 0, keg, align: cpu.load32(keg + uma_keg.uk_align), flags: cpu.load32(keg + uma_keg.uk_flags) | UMA_ZONE_SECONDARY,
  };
  return yield* zoneCreate(k, cpu, a, opts);
}

/** uma_zcache_create: a cache-only zone whose items come from import and go back by release. */
export function* uma_zcache_create(
  k: Kernel, cpu: Cpu, name: string, size: number, ctor: UmaCallback | undefined, dtor: UmaCallback | undefined,
  zinit: UmaCallback | undefined, zfini: UmaCallback | undefined, zimport: UmaImport, zrelease: UmaRelease, arg: number, flags: number,
  opts: UmaZoneOptions = {},
): Task<UmaZone> {
  const a: ZoneArgs = {
    name, size, ctor: fnptr(k, ctor), dtor: fnptr(k, dtor), uminit: fnptr(k, zinit), fini: fnptr(k, zfini),
    importf: fnptr(k, zimport), releasef: fnptr(k, zrelease), arg, keg: 0, align: 0, flags,
  };
  const h = yield* zoneCreate(k, cpu, a, opts);
  cpu.storePtr(h.z + uma_zone.uz_init, a.uminit);
  cpu.storePtr(h.z + uma_zone.uz_fini, a.fini);
  return h;
}

/** cache_drain: every CPU's buckets drained and freed (only while the zone is torn down). */
function* cache_drain(k: Kernel, cpu: Cpu, h: UmaZone): Task {
  for (let c = 0; c < k.ncpus; c++) {
    const cache = cacheOf(h, c);
    for (const f of [uma_cache.uc_allocbucket, uma_cache.uc_freebucket]) {
      const b = cpu.loadPtr(cache + f);
      if (b === 0) continue;
      yield* bucket_drain(k, cpu, h.z, b);
      yield* bucket_free(k, cpu, b);
      cpu.storePtr(cache + f, 0);
    }
  }
}

/**
 * bucket_cache_drain: the depot's full buckets drained to slabs until it holds at most `keep`
 * items, its empty buckets freed; with auto-tuning uz_count shrinks by one. The zone lock is
 * held on entry and exit.
 */
function* bucket_cache_drain(k: Kernel, cpu: Cpu, h: UmaZone, keep: number): Task {
  const z = h.z;
  for (;;) {
    const b = cpu.loadPtr(z + uma_zone.uz_full_bucket);
    if (b === 0 || cpu.load32(z + uma_zone.uz_bktcount) <= keep) break;
    depotTakeFull(cpu, z, b);
    yield* ZONE_UNLOCK(k, cpu, z);
    yield* bucket_drain(k, cpu, z, b);
    yield* bucket_free(k, cpu, b);
    yield* ZONE_LOCK(k, cpu, z);
  }
  for (;;) {
    const b = cpu.loadPtr(z + uma_zone.uz_free_bucket);
    if (b === 0) break;
    listRemove(cpu, b, uma_bucket.ub_link_next, uma_bucket.ub_link_prev);
    yield* ZONE_UNLOCK(k, cpu, z);
    yield* bucket_free(k, cpu, b);
    yield* ZONE_LOCK(k, cpu, z);
  }
  cpu.store32(z + uma_zone.uz_imin, cpu.load32(z + uma_zone.uz_bktcount));
  if (h.autoTune) {
    const c = cpu.load16(z + uma_zone.uz_count);
    if (c > cpu.load16(z + uma_zone.uz_count_min)) cpu.store16(z + uma_zone.uz_count, c - 1);
  }
}

/** keg_drain: the keg's free slabs back to the backend (not NOFREE kegs, not boot pages). */
function* keg_drain(k: Kernel, cpu: Cpu, keg: number): Task<number> {
  const flags = cpu.load32(keg + uma_keg.uk_flags);
  if ((flags & UMA_ZONE_NOFREE) !== 0 || cpu.loadPtr(keg + uma_keg.uk_freef) === 0) return 0;
  yield* KEG_LOCK(k, cpu, keg);
  const ppera = cpu.load16(keg + uma_keg.uk_ppera);
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  const freed: number[] = [];
  for (let slab = cpu.loadPtr(keg + uma_keg.uk_free_slab); slab !== 0; ) {
    const next = cpu.loadPtr(slab + uma_slab.us_link_next);
    if ((cpu.load16(slab + uma_slab.us_flags) & UMA_SLAB_BOOT) === 0) {
      listRemove(cpu, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
      add32(cpu, keg + uma_keg.uk_pages, -ppera);
      add32(cpu, keg + uma_keg.uk_free, -ipers);
      if ((flags & UMA_ZONE_HASH) !== 0) hashRemove(cpu, keg, slab, cpu.loadPtr(slab + uma_slab.us_data));
      freed.push(slab);
    }
    slab = next;
  }
  yield* KEG_UNLOCK(k, cpu, keg);
  for (const slab of freed) {
    yield* keg_free_slab(k, cpu, keg, slab, ipers);
    add64(cpu, g(k, 'uma_reclaimed_pages'), ppera);
  }
  return freed.length * ppera;
}

/** zone_drain: the depot to slabs, then the keg's free slabs to the backend. Returns pages. */
export function* zone_drain(k: Kernel, cpu: Cpu, h: UmaZone, keep = 0): Task<number> {
  const z = h.z;
  yield* ZONE_LOCK(k, cpu, z);
  const zf = cpu.load32(z + uma_zone.uz_flags);
  if ((zf & UMA_ZFLAG_DRAINING) !== 0) {
    yield* ZONE_UNLOCK(k, cpu, z);
    return 0;
  }
  cpu.store32(z + uma_zone.uz_flags, (zf | UMA_ZFLAG_DRAINING) >>> 0);
  yield* bucket_cache_drain(k, cpu, h, keep);
  yield* ZONE_UNLOCK(k, cpu, z);
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  const pages = keg !== 0 ? yield* keg_drain(k, cpu, keg) : 0;
  yield* ZONE_LOCK(k, cpu, z);
  cpu.store32(z + uma_zone.uz_flags, (cpu.load32(z + uma_zone.uz_flags) & ~UMA_ZFLAG_DRAINING) >>> 0);
  yield* ZONE_UNLOCK(k, cpu, z);
  return pages;
}

/** Every zone's address, kegs oldest first and each keg's zones in order, then cache zones. */
function allZones(k: Kernel, read: (va: number) => number): number[] {
  const kegs: number[] = [];
  for (let keg = read(g(k, 'uma_kegs')); keg !== 0; keg = read(keg + uma_keg.uk_link_next)) kegs.push(keg);
  const out: number[] = [];
  for (const keg of kegs.reverse()) for (let z = read(keg + uma_keg.uk_zones); z !== 0; z = read(z + uma_zone.uz_link_next)) out.push(z);
  const cz: number[] = [];
  for (let z = read(g(k, 'uma_cachezones')); z !== 0; z = read(z + uma_zone.uz_link_next)) cz.push(z);
  return out.concat(cz.reverse());
}

/**
 * uma_reclaim: every zone's depot drained and its keg's free slabs returned (the slab and
 * bucket zones last, for what the others freed). With `trim`, each depot keeps its working set
 * (uz_wssize, from uma_timeout). Returns the pages given back.
 */
export function* uma_reclaim(k: Kernel, cpu: Cpu, trim = false): Task<number> {
  cpu.enter(k.label['uma.reclaim']);
  cpu.store32(g(k, 'bucketdisable'), 0);
  let pages = 0;
  const zones = allZones(k, (va) => cpu.loadPtr(va));
  const internal = new Set([cpu.loadPtr(g(k, 'slabzone'))]);
  if (st(k).refcntKegs.size > 0) internal.add(cpu.loadPtr(g(k, 'slabrefzone')));
  for (let i = 0; i < bucketZoneEntries.length; i++) internal.add(cpu.loadPtr(g(k, 'bucket_zones') + i * 8));
  for (const z of zones) {
    if (internal.has(z)) continue;
    pages += yield* zone_drain(k, cpu, umaHandle(k, z), trim ? cpu.load32(z + uma_zone.uz_wssize) : 0);
  }
  for (const z of internal) pages += yield* zone_drain(k, cpu, umaHandle(k, z));
  cpu.leave();
  return pages;
}

/**
 * hash_alloc: a zeroed table of twice `oldsize` heads (malloc(9), M_UMAHASH, M_NOWAIT), or of
 * UMA_HASH_SIZE_INIT from "UMA Hash" when oldsize is 0. Returns [table, size], table 0 on failure.
 */
function* hash_alloc(k: Kernel, cpu: Cpu, oldsize: number): Task<[number, number]> {
  let tab: number;
  let size: number;
  if (oldsize !== 0) {
    size = oldsize * 2;
    const s = st(k);
    s.umahash ??= yield* malloc_init(k, cpu, 'UMAHash');
    tab = yield* malloc(k, cpu, size * 8, s.umahash, M_NOWAIT);
  } else {
    size = UMA_HASH_SIZE_INIT;
    tab = yield* uma_zalloc_internal(k, cpu, cpu.loadPtr(g(k, 'hashzone')), 0, M_WAITOK);
  }
  if (tab !== 0) bzero(cpu, tab, size * 8);
  return [tab, size];
}

/** hash_free: a table back to "UMA Hash" (the initial size) or to malloc(9). */
function* hash_free(k: Kernel, cpu: Cpu, tab: number, size: number): Task {
  if (tab === 0) return;
  if (size === UMA_HASH_SIZE_INIT) yield* uma_zfree_internal(k, cpu, cpu.loadPtr(g(k, 'hashzone')), tab, 0, SKIP_NONE);
  else yield* free(k, cpu, tab, st(k).umahash!);
}

/**
 * hash_expand: every slab of the keg's hash rehashed into the larger table `tab` (the zone
 * lock held). Returns false, leaving the old table, when the new one is no larger.
 */
function hash_expand(cpu: Cpu, keg: number, tab: number, size: number): boolean {
  const h = keg + uma_keg.uk_hash;
  const oldtab = cpu.loadPtr(h + uma_hash.uh_slab_hash);
  const oldsize = cpu.load32(h + uma_hash.uh_hashsize);
  if (tab === 0 || oldsize >= size) return false;
  for (let i = 0; i < oldsize; i++) {
    for (let slab = cpu.loadPtr(oldtab + i * 8); slab !== 0; slab = cpu.loadPtr(oldtab + i * 8)) {
      cpu.storePtr(oldtab + i * 8, cpu.loadPtr(slab + uma_slab.us_hlink));
      const b = tab + (Math.floor(cpu.loadPtr(slab + uma_slab.us_data) / 2 ** UMA_SLAB_SHIFT) & (size - 1)) * 8;
      cpu.storePtr(slab + uma_slab.us_hlink, cpu.loadPtr(b));
      cpu.storePtr(b, slab);
    }
  }
  cpu.storePtr(h + uma_hash.uh_slab_hash, tab);
  cpu.store32(h + uma_hash.uh_hashsize, size);
  cpu.store32(h + uma_hash.uh_hashmask, size - 1);
  return true;
}

/**
 * zone_timeout's hash work: a HASH keg with at least as many slabs as hash heads gets a table
 * twice the size, allocated and freed with the zone lock dropped (2005's staged dance).
 */
function* zone_timeout_hash(k: Kernel, cpu: Cpu, z: number): Task {
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  if (keg === 0 || (cpu.load32(z + uma_zone.uz_flags) & UMA_ZONE_SECONDARY) !== 0) return;
  yield* ZONE_LOCK(k, cpu, z);
  const h = keg + uma_keg.uk_hash;
  const size = cpu.load32(h + uma_hash.uh_hashsize);
  if ((cpu.load32(keg + uma_keg.uk_flags) & UMA_ZONE_HASH) !== 0 && cpu.load32(keg + uma_keg.uk_pages) / cpu.load16(keg + uma_keg.uk_ppera) >= size) {
    yield* ZONE_UNLOCK(k, cpu, z);
    const [tab, newsize] = yield* hash_alloc(k, cpu, size);
    yield* ZONE_LOCK(k, cpu, z);
    if (tab !== 0) {
      const oldtab = cpu.loadPtr(h + uma_hash.uh_slab_hash);
      const oldsize = cpu.load32(h + uma_hash.uh_hashsize);
      const expanded = hash_expand(cpu, keg, tab, newsize);
      yield* ZONE_UNLOCK(k, cpu, z);
      if (expanded) yield* hash_free(k, cpu, oldtab, oldsize);
      else yield* hash_free(k, cpu, tab, newsize);
      yield* ZONE_LOCK(k, cpu, z);
    }
  }
  yield* ZONE_UNLOCK(k, cpu, z);
}

/**
 * uma_timeout (every UMA_TIMEOUT = 20 s upstream; here when called: by the replay driver or a
 * test): bucket_enable, then per zone the off-page hash's expansion and the depot's working
 * set since the last timeout.
 */
export function* uma_timeout(k: Kernel, cpu: Cpu): Task {
  for (const z of allZones(k, (va) => cpu.loadPtr(va))) {
    yield* zone_timeout_hash(k, cpu, z);
    yield* ZONE_LOCK(k, cpu, z);
    const imax = cpu.load32(z + uma_zone.uz_imax);
    const imin = cpu.load32(z + uma_zone.uz_imin);
    cpu.store32(z + uma_zone.uz_wssize, imax - Math.min(imin, imax));
    const now = cpu.load32(z + uma_zone.uz_bktcount);
    cpu.store32(z + uma_zone.uz_imin, now);
    cpu.store32(z + uma_zone.uz_imax, now);
    yield* ZONE_UNLOCK(k, cpu, z);
  }
}

/** uma_zdestroy: drains the caches and the depot, frees the keg's slabs, the keg and the zone. */
export function* uma_zdestroy(k: Kernel, cpu: Cpu, h: UmaZone): Task {
  const z = h.z;
  const zf = cpu.load32(z + uma_zone.uz_flags);
  if ((zf & UMA_ZFLAG_INTERNAL) === 0) yield* cache_drain(k, cpu, h);
  yield* ZONE_LOCK(k, cpu, z);
  yield* bucket_cache_drain(k, cpu, h, 0);
  yield* ZONE_UNLOCK(k, cpu, z);
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
  listRemove(cpu, z, uma_zone.uz_link_next, uma_zone.uz_link_prev);
  yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
  if (keg !== 0 && (zf & UMA_ZONE_SECONDARY) === 0) {
    yield* keg_drain(k, cpu, keg);
    const free = cpu.load32(keg + uma_keg.uk_free);
    const pages = cpu.load32(keg + uma_keg.uk_pages);
    if (free !== 0 || pages !== 0) st(k).console.push(`Freed UMA keg (${zname(cpu, z)}) was not empty (${free} items).  Lost ${pages} pages of memory.`);
    yield* hash_free(k, cpu, cpu.loadPtr(keg + uma_keg.uk_hash + uma_hash.uh_slab_hash), cpu.load32(keg + uma_keg.uk_hash + uma_hash.uh_hashsize));
    yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
    listRemove(cpu, keg, uma_keg.uk_link_next, uma_keg.uk_link_prev);
    yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
    yield* uma_zfree_internal(k, cpu, g(k, 'masterzone_k'), keg, 0, SKIP_NONE);
    st(k).refcntKegs.delete(keg);
  }
  st(k).handles.delete(z);
  yield* uma_zfree_internal(k, cpu, g(k, 'masterzone_z'), z - UMA_ZONE_EXT, 0, SKIP_NONE);
}

// --- Tuning --------------------------------------------------------------------------------

/** uma_zone_set_max: the keg's page limit for `nitems`; returns the items that fit. */
export function* uma_zone_set_max(k: Kernel, cpu: Cpu, h: UmaZone, nitems: number): Task<number> {
  const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
  if (keg === 0) return 0;
  yield* KEG_LOCK(k, cpu, keg);
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  const ppera = cpu.load16(keg + uma_keg.uk_ppera);
  let maxpages = Math.floor(nitems / ipers) * ppera;
  if (maxpages * ipers < nitems) maxpages += ppera;
  cpu.store32(keg + uma_keg.uk_maxpages, maxpages);
  yield* KEG_UNLOCK(k, cpu, keg);
  return (maxpages / ppera) * ipers;
}

/** uma_zone_reserve: items kept back for M_USE_RESERVE allocations. */
export function* uma_zone_reserve(k: Kernel, cpu: Cpu, h: UmaZone, items: number): Task {
  const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
  if (keg === 0) return;
  yield* KEG_LOCK(k, cpu, keg);
  cpu.store32(keg + uma_keg.uk_reserve, items);
  yield* KEG_UNLOCK(k, cpu, keg);
}

/** uma_zone_set_allocf: another backend allocator for the zone's keg. */
export function* uma_zone_set_allocf(k: Kernel, cpu: Cpu, h: UmaZone, allocf: UmaAllocf): Task {
  const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
  yield* KEG_LOCK(k, cpu, keg);
  cpu.storePtr(keg + uma_keg.uk_allocf, fnptr(k, allocf));
  yield* KEG_UNLOCK(k, cpu, keg);
}

export function* uma_zone_set_freef(k: Kernel, cpu: Cpu, h: UmaZone, freef: UmaFreef): Task {
  const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
  yield* KEG_LOCK(k, cpu, keg);
  cpu.storePtr(keg + uma_keg.uk_freef, fnptr(k, freef));
  yield* KEG_UNLOCK(k, cpu, keg);
}

/**
 * uma_zone_set_obj: the zone's slabs come from `count` items' worth of KVA reserved now and
 * filled page by page in `obj` (a new object when 0). NOFREE from then on. Returns 1, or 0
 * when the KVA cannot be had.
 */
export function* uma_zone_set_obj(k: Kernel, cpu: Cpu, h: UmaZone, obj: number, count: number): Task<number> {
  const keg = cpu.loadPtr(h.z + uma_zone.uz_keg);
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  let pages = Math.floor(count / ipers);
  if (pages * ipers < count) pages++;
  pages *= cpu.load16(keg + uma_keg.uk_ppera);
  const kva = yield* kmem_alloc_nofault(k, cpu, k.kernel_map, pages * UMA_SLAB_SIZE, PAGE_SIZE);
  if (kva === 0) return 0;
  if (obj === 0) obj = yield* kmem_alloc3(k, cpu, k.kernel_map, PAGE_SIZE, 0);
  _vm_object_allocate(cpu, OBJT_DEFAULT, pages, obj);
  yield* KEG_LOCK(k, cpu, keg);
  cpu.storePtr(keg + uma_keg.uk_kva, kva);
  cpu.storePtr(keg + uma_keg.uk_obj, obj);
  cpu.store32(keg + uma_keg.uk_maxpages, pages);
  cpu.storePtr(keg + uma_keg.uk_allocf, st(k).obj_alloc);
  cpu.store32(keg + uma_keg.uk_flags, (cpu.load32(keg + uma_keg.uk_flags) | UMA_ZONE_NOFREE | UMA_ZFLAG_PRIVALLOC) >>> 0);
  yield* KEG_UNLOCK(k, cpu, keg);
  return 1;
}

/** uma_prealloc: slabs for `items` items, put on the keg's free list now. */
export function* uma_prealloc(k: Kernel, cpu: Cpu, h: UmaZone, items: number): Task {
  const z = h.z;
  const keg = cpu.loadPtr(z + uma_zone.uz_keg);
  if (keg === 0) return;
  yield* ZONE_LOCK(k, cpu, z);
  const ipers = cpu.load16(keg + uma_keg.uk_ipers);
  let slabs = Math.ceil(items / ipers);
  while (slabs > 0) {
    const slab = yield* slab_zalloc(k, cpu, z, M_WAITOK);
    if (slab === 0) break;
    listInsertHead(cpu, keg + uma_keg.uk_free_slab, slab, uma_slab.us_link_next, uma_slab.us_link_prev);
    slabs--;
  }
  yield* ZONE_UNLOCK(k, cpu, z);
}

/**
 * Retunes a zone as a loader tunable would, before it is used: its handle's options and, in
 * memory (functionally, charging nothing), uz_count and uz_bktmax. Throws when the zone
 * already caches items in per-CPU buckets (the layout cannot move under them).
 */
export function uma_zone_tune(k: Kernel, h: UmaZone, o: UmaZoneOptions): UmaZone {
  const { r16, r32, rptr } = umaReader(k);
  for (let c = 0; c < k.ncpus; c++) {
    const cache = cacheOf(h, c);
    if (rptr(cache + uma_cache.uc_allocbucket) !== 0 || rptr(cache + uma_cache.uc_freebucket) !== 0) {
      throw new Error(`uma_zone_tune: zone at 0x${hex64(h.z)} already has per-CPU buckets`);
    }
  }
  if ((r32(h.z + uma_zone.uz_flags) & UMA_ZFLAG_INTERNAL) !== 0) return h;
  let count = r16(h.z + uma_zone.uz_count_min);
  if (count === 0 && o.pcpu !== false) {
    const keg = rptr(h.z + uma_zone.uz_keg);
    count = keg !== 0 ? Math.min(BUCKET_MAX, r16(keg + uma_keg.uk_ipers)) : BUCKET_MAX;
  }
  if (o.bucketSize !== undefined) count = Math.max(1, Math.min(BUCKET_MAX, Math.floor(o.bucketSize)));
  if (o.pcpu === false) count = 0;
  k.poke16(h.z + uma_zone.uz_count, count);
  k.poke16(h.z + uma_zone.uz_count_min, count);
  if (o.depotMax !== undefined) k.poke32(h.z + uma_zone.uz_bktmax, o.depotMax >>> 0);
  return makeHandle(k, h.z, { aligned: o.aligned ?? h.aligned, cacheLock: o.cacheLock ?? h.cacheLock, autoTune: o.autoTune ?? h.autoTune });
}

// --- Startup ---------------------------------------------------------------------------------

function* bootZone(k: Kernel, cpu: Cpu, z: number, name: string, size: number, keg: number): Task {
  const a: ZoneArgs = { name, size, ctor: 0, dtor: 0, uminit: 0, fini: 0, importf: 0, releasef: 0, arg: 0, keg, align: 32 - 1, flags: UMA_ZFLAG_INTERNAL };
  yield* zone_ctor(k, cpu, z, uma_zone.sizeof, a, {});
  makeHandle(k, z, {});
}

/**
 * uma_startup: the keg and zone of kegs ("UMA Kegs", static), the boot pages, the zone of
 * zones ("UMA Zones"), "UMA Slabs", "UMA Hash" and the bucket zones.
 */
export function* uma_startup(k: Kernel, cpu: Cpu): Task {
  cpu.enter(k.label['uma.startup']);
  st(k);
  cpu.store32(g(k, 'bucketdisable'), 1);
  yield* bootZone(k, cpu, g(k, 'masterzone_k'), 'UMA Kegs', uma_keg.sizeof, g(k, 'masterkeg'));
  for (let i = 0; i < UMA_BOOT_PAGES; i++) {
    const slab = k.uma_boot_pages + i * UMA_SLAB_SIZE;
    cpu.storePtr(slab + uma_slab.us_data, slab);
    cpu.store16(slab + uma_slab.us_flags, UMA_SLAB_BOOT);
    listInsertHead(cpu, g(k, 'uma_boot_pages'), slab, uma_slab.us_link_next, uma_slab.us_link_prev);
  }
  cpu.store32(g(k, 'uma_boot_free'), UMA_BOOT_PAGES);
  yield* bootZone(k, cpu, g(k, 'masterzone_z'), 'UMA Zones', zoneHeaderSize(k.ncpus), 0);
  // The zone of zones' items hold the aligned layout: a line-aligned header start.
  const zk = cpu.loadPtr(g(k, 'masterzone_z') + uma_zone.uz_keg);
  cpu.store32(zk + uma_keg.uk_align, UMA_ALIGN_CACHE);
  const internal = (name: string, size: number, flags = 0) =>
    uma_zcreate(k, cpu, name, size, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, UMA_ZFLAG_INTERNAL | flags);
  const slabzone = yield* internal('UMA Slabs', Math.ceil((uma_slab.sizeof + UMA_MAX_IPERS + 2) / 8) * 8);
  cpu.storePtr(g(k, 'slabzone'), slabzone.z);
  const hashzone = yield* internal('UMA Hash', 8 * UMA_HASH_SIZE_INIT);
  cpu.storePtr(g(k, 'hashzone'), hashzone.z);
  for (let i = 0; i < bucketZoneEntries.length; i++) {
    const n = bucketZoneEntries[i]!;
    const bz = yield* internal(`${n} Bucket`, ub_bucket + 8 * n, UMA_ZONE_MTXCLASS | UMA_ZFLAG_BUCKET);
    cpu.storePtr(g(k, 'bucket_zones') + i * 8, bz.z);
  }
  cpu.store32(g(k, 'booted'), UMA_STARTUP);
  cpu.leave();
}

/** Whether uma_startup2 has run on this kernel (a functional read, for callers kmemu adds). */
export function uma_booted(k: Kernel): boolean {
  return states.has(k) && k.peek32(g(k, 'booted')) >= UMA_STARTUP2;
}

/** uma_startup2: the VM is up: slabs come from the backend and buckets are enabled. */
export function* uma_startup2(k: Kernel, cpu: Cpu): Task {
  cpu.store32(g(k, 'booted'), UMA_STARTUP2);
  cpu.store32(g(k, 'bucketdisable'), 0);
  yield* cpu.sync();
}

// --- Views (functional reads: no cycles, no cache effects) ----------------------------------

export interface UmaZoneStats {
  /** The zone header's address. */
  zone: number;
  name: string;
  size: number;
  limit: number;
  used: number;
  free: number;
  requests: number;
  fails: number;
  sleeps: number;
  /** Free items by where they wait: the CPUs' buckets, the depot, the keg's slabs. */
  cacheFree: number;
  depotFree: number;
  kegFree: number;
  kegPages: number;
  internal: boolean;
  secondary: boolean;
}

/** Functional readers of kernel memory (Kernel.peek*), under the short names UMA's views use. */
export function umaReader(k: Kernel) {
  return {
    r8: (va: number) => k.peek8(va),
    r16: (va: number) => k.peek16(va),
    r32: (va: number) => k.peek32(va),
    r64: (va: number) => k.peek64(va),
    rptr: (va: number) => k.peekPtr(va),
    str: (va: number) => k.peekString(va, UMA_NAME_MAX),
  };
}

/** Each zone's figures as sysctl_vm_zone_stats and libmemstat compute them, in list order. */
export function umaZoneStats(k: Kernel): UmaZoneStats[] {
  const { r16, r32, r64, rptr, str } = umaReader(k);
  return allZones(k, rptr).map((z) => {
    const h = umaHandle(k, z);
    const keg = rptr(z + uma_zone.uz_keg);
    const flags = r32(z + uma_zone.uz_flags);
    const internal = (flags & UMA_ZFLAG_INTERNAL) !== 0;
    let allocs = r64(z + uma_zone.uz_allocs);
    let frees = r64(z + uma_zone.uz_frees);
    let cacheFree = 0;
    if (!internal) {
      for (let c = 0; c < k.ncpus; c++) {
        const cache = cacheOf(h, c);
        allocs += r64(cache + uma_cache.uc_allocs);
        frees += r64(cache + uma_cache.uc_frees);
        for (const f of [uma_cache.uc_allocbucket, uma_cache.uc_freebucket]) {
          const b = rptr(cache + f);
          if (b !== 0) cacheFree += r16(b + uma_bucket.ub_cnt);
        }
      }
    }
    let depotFree = 0;
    for (let b = rptr(z + uma_zone.uz_full_bucket); b !== 0; b = rptr(b + uma_bucket.ub_link_next)) depotFree += r16(b + uma_bucket.ub_cnt);
    const secondary = (flags & UMA_ZONE_SECONDARY) !== 0;
    const kegFree = keg !== 0 && !secondary ? r32(keg + uma_keg.uk_free) : 0;
    const ppera = keg !== 0 ? r16(keg + uma_keg.uk_ppera) : 1;
    const limit = keg !== 0 ? Math.floor(r32(keg + uma_keg.uk_maxpages) / ppera) * r16(keg + uma_keg.uk_ipers) : 0;
    return {
      zone: z, name: str(rptr(z + uma_zone.uz_name)), size: r32(z + uma_zone.uz_size), limit, used: Math.max(0, allocs - frees),
      free: kegFree + depotFree + cacheFree, requests: allocs, fails: r64(z + uma_zone.uz_fails), sleeps: r64(z + uma_zone.uz_sleeps),
      cacheFree, depotFree, kegFree, kegPages: keg !== 0 && !secondary ? r32(keg + uma_keg.uk_pages) : 0, internal, secondary,
    };
  });
}

/** `vmstat -z`, as FreeBSD 7–10's vmstat prints it (ITEM SIZE LIMIT USED FREE REQ FAIL SLEEP). */
export function uma_vmstat_z(k: Kernel): string {
  let s = `${'ITEM'.padEnd(20)} ${'SIZE'.padStart(6)} ${'LIMIT'.padStart(6)} ${'USED'.padStart(8)} ${'FREE'.padStart(8)} ${'REQ'.padStart(8)} ${'FAIL'.padStart(4)} ${'SLEEP'.padStart(4)}\n\n`;
  for (const z of umaZoneStats(k)) {
    const n = (v: number, w: number) => String(v).padStart(w);
    s += `${(z.name + ':').padEnd(20)} ${n(z.size, 6)}, ${n(z.limit, 6)},${n(z.used, 8)},${n(z.free, 8)},${n(z.requests, 8)},${n(z.fails, 4)},${n(z.sleeps, 4)}\n`;
  }
  return s;
}

/** UMA's page counts: held from the backend, and given back by reclaims. */
export function umaPages(k: Kernel): { kmem: number; reclaimed: number; bootFree: number; largeMalloc: number } {
  const { r32, r64 } = umaReader(k);
  return {
    kmem: r64(g(k, 'uma_kmem_pages')), reclaimed: r64(g(k, 'uma_reclaimed_pages')), bootFree: r32(g(k, 'uma_boot_free')),
    largeMalloc: r64(g(k, 'kmem_large_pages')),
  };
}

export { M_NOWAIT, M_WAITOK, M_ZERO, M_NOVM, M_USE_RESERVE, UMA_ZONE_NOFREE };
