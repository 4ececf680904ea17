// vmem(9): general-purpose resource arenas with boundary tags, power-of-two free lists, a hash
// of busy tags and quantum caches on UMA.
//
// Models FreeBSD sys/kern/subr_vmem.c at revision 85732ac8 (the seed), with M_NEXTFIT from
// later FreeBSD (vmem_xalloc_nextfit, the vm_cursor tag of type BT_TYPE_CURSOR, and
// vmem_try_release's test, which lets the cursor precede a freed segment). struct vmem and
// every boundary tag live in emulated memory; boundary tags come from the UMA zone "vmem btag"
// and arenas from the zone "vmem" (vmem_startup), the hash tables beyond vm_hash0 from
// malloc(9) type "vmem"; the arena lock is a spinlock word and its waiters sleep on a cv.
//
// Values: vmem_addr_t and vmem_size_t are unsigned 64-bit, `bigint` in this API (exact over the
// whole range, 0xfffffe0000000000 + offsets included). In memory each is a u64 field written and
// read as its two 32-bit halves (two accesses to one line where upstream makes one).
//
// Deviations:
// - MPASS/KASSERT are always on (INVARIANTS) and panic with FreeBSD's own text, "Assertion EXPR
//   failed at sys/kern/subr_vmem.c:LINE" with the seed's line numbers.
// - vmem_xalloc_nextfit: later upstream loops forever when the cursor is the first tag of the
//   segment list and nothing fits (the wrap to TAILQ_FIRST lands on the cursor and the loop
//   test never sees it); kmemu stops there and fails with ENOMEM (or sleeps, M_WAITOK).
// - The boundary-tag supply depends on the boot tunable vm.kmem_backend (kern_environment.ts).
//   With the default there is no kmem_arena: bt_fill never dips into the btag zone's reserve
//   (M_USE_RESERVE is cleared, as for any other arena), and the btag zone keeps UMA's page
//   allocator, as upstream on amd64 (UMA_MD_SMALL_ALLOC). With vmem, kmemu's UMA has no
//   uma_small_alloc to fall back on, so vmem_startup sets the zone up as FreeBSD 10–11 do
//   without it: uma_prealloc of BT_MAXALLOC tags, a reserve of BT_MAXALLOC * (ncpus + 1) / 2
//   tags, and vmem_bt_alloc (pages from kmem_arena under vmem_bt_lock, M_USE_RESERVE) as its
//   allocf; bt_fill lets kmem_arena, and only it (FreeBSD 10–11), use the reserve.
//   vmem_bt_alloc does not pause("btalloc") when it loses a race for KVA: it returns NULL.
// - vmem_startup is not called by boot() with the default backend: whoever needs vmem runs it
//   after boot (as the SYSINIT would), so that existing boot figures stay as they were. With
//   vm.kmem_backend=vmem boot runs it (kern/boot.ts). vmem_periodic (a 10 s callout upstream)
//   runs when called.
// - qc_init creates the cache zones with flags 0, as later upstream does, not the seed's
//   UMA_ZONE_VM: that makes them cache-only (M_NOVM bucket allocations), and kmemu's bucket
//   zones then never give them a bucket, so nothing would ever be cached.
// - Quantum-cache items are UMA item pointers: an arena with a quantum cache hands out
//   canonical x86_64 addresses only (qc_import gives back, and stops at, any other address).
// - Import and release functions and reclaim functions are small integers in memory naming a
//   JS function of this kernel (ids from 1).
// - vmem_whatis skips the nextfit cursor (start 0, size 0: its BT_END would cover everything).
// - Each outermost vmem_alloc/xalloc/free/xfree ends with cpu.completeOp on vmem.qcache,
//   vmem.import (an xalloc that imported), vmem.xalloc or vmem.xfree.

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel } from './kernel.js';
import { type MallocType, free, malloc, malloc_init } from './kern_malloc.js';
import { panic } from './panic.js';
import { array, embed, struct } from './struct.js';
import { cv, cv_signal, cv_wait, spin_lock, spin_unlock, spinlock } from './sync.js';
import {
  kmem_back, kvaOf, M_NOVM, M_NOWAIT, M_USE_RESERVE, M_WAITOK, UMA_ALIGN_PTR, uma_prealloc, UMA_SLAB_KMEM, uma_zalloc, uma_zcache_create,
  uma_zcreate, uma_zdestroy, uma_zfree, uma_zone_reserve, uma_zone_set_allocf, UMA_ZONE_NOFREE, UMA_ZONE_VM, type UmaAllocf, type UmaImport, type UmaRelease, type UmaZone, vm_wait,
  zone_drain,
} from '../vm/index.js';

export const ENOMEM = 12;
export const EINVAL = 22;

/** sys/sys/malloc.h: the fit strategies of vmem(9). */
export const M_FIRSTFIT = 0x1000;
export const M_BESTFIT = 0x2000;
export const M_NEXTFIT = 0x8000;

/** vmem_size typemasks (sys/sys/vmem.h). */
export const VMEM_ALLOC = 0x01;
export const VMEM_FREE = 0x02;
export const VMEM_MAXFREE = 0x10;

const U64 = (1n << 64n) - 1n;
export const VMEM_ADDR_MIN = 0n;
export const VMEM_ADDR_MAX = U64;
/** The lowest address a quantum cache can hold: UMA's NULL is a failed allocation. */
export const VMEM_ADDR_QCACHE_MIN = 1n;

export const VMEM_OPTORDER = 5;
export const VMEM_OPTVALUE = 1 << VMEM_OPTORDER;
/** One list per size up to VMEM_OPTVALUE quanta, then one per power of two of a 64-bit size. */
export const VMEM_MAXORDER = VMEM_OPTVALUE - 1 + 64 - VMEM_OPTORDER;
export const VMEM_HASHSIZE_MIN = 16;
export const VMEM_HASHSIZE_MAX = 131072;
export const VMEM_QCACHE_IDX_MAX = 16;
export const VMEM_NAME_MAX = 16;
export const QC_NAME_MAX = 16;
const VMEM_FITMASK = M_BESTFIT | M_FIRSTFIT | M_NEXTFIT;
const VMEM_FLAGS = M_NOWAIT | M_WAITOK | M_USE_RESERVE | M_NOVM | VMEM_FITMASK;
const BT_FLAGS = M_NOWAIT | M_WAITOK | M_USE_RESERVE | M_NOVM;
/** Tags one allocation may need: two to import a span, two to clip the segment's edges. */
export const BT_MAXALLOC = 4;
/** Free tags an arena keeps cached before giving them back to the zone. */
export const BT_MAXFREE = BT_MAXALLOC * 8;

export const BT_TYPE_SPAN = 1;
export const BT_TYPE_SPAN_STATIC = 2;
export const BT_TYPE_FREE = 3;
export const BT_TYPE_BUSY = 4;
export const BT_TYPE_CURSOR = 5;

/** struct vmem_btag: bt_freelist and bt_hashlist share bt_u (a free tag is never busy). */
export const vmem_btag = struct('vmem_btag', [
  ['bt_seglist_next', 'ptr'],
  ['bt_seglist_prev', 'ptr'],
  ['bt_u_next', 'ptr'],
  ['bt_u_prev', 'ptr'],
  ['bt_start', 'u64'],
  ['bt_size', 'u64'],
  ['bt_type', 'u32'],
]);

export const qcache = struct('qcache', [
  ['qc_cache', 'ptr'],
  ['qc_vmem', 'ptr'],
  ['qc_size', 'u64'],
  ['qc_name', { bytes: QC_NAME_MAX, align: 1 }],
]);

/** struct vmem; vm_lock is a spinlock padded to its cache line (mtx_padalign). */
export const vmem = struct('vmem', [
  ['vm_lock', embed(spinlock)],
  ['vm_lock_pad', { bytes: 64 - spinlock.sizeof, align: 1 }],
  ['vm_cv', embed(cv)],
  ['vm_name', { bytes: VMEM_NAME_MAX + 1, align: 1 }],
  ['vm_alllist_next', 'ptr'],
  ['vm_alllist_prev', 'ptr'],
  ['vm_hash0', array('ptr', VMEM_HASHSIZE_MIN)],
  ['vm_freelist', array('ptr', VMEM_MAXORDER)],
  ['vm_seglist_first', 'ptr'],
  ['vm_seglist_last', 'ptr'],
  ['vm_hashlist', 'ptr'],
  ['vm_hashsize', 'u64'],
  ['vm_qcache_max', 'u64'],
  ['vm_quantum_mask', 'u64'],
  ['vm_import_quantum', 'u64'],
  ['vm_quantum_shift', 'u32'],
  ['vm_freetags', 'ptr'],
  ['vm_nfreetags', 'u32'],
  ['vm_nbusytag', 'u32'],
  ['vm_inuse', 'u64'],
  ['vm_size', 'u64'],
  ['vm_limit', 'u64'],
  ['vm_cursor', embed(vmem_btag)],
  ['vm_importfn', 'ptr'],
  ['vm_releasefn', 'ptr'],
  ['vm_arg', 'ptr'],
  ['vm_reclaimfn', 'ptr'],
  ['vm_qcache', array(embed(qcache), VMEM_QCACHE_IDX_MAX)],
], 64);

/** The globals of subr_vmem.c: vmem_list_lock (a line of its own) and vmem_list. */
const vmem_globals = struct('vmem_globals', [
  ['vmem_list_lock', embed(spinlock)],
  ['pad', { bytes: 64 - spinlock.sizeof, align: 1 }],
  ['vmem_list', 'ptr'],
], 64);

/** An import function: (cpu, arg, size, flags) → 0 and the address, or an error. */
export type VmemImport = (cpu: Cpu, arg: number, size: bigint, flags: number) => Task<{ error: number; addr: bigint }>;
export type VmemRelease = (cpu: Cpu, arg: number, addr: bigint, size: bigint) => Task;
export type VmemReclaim = (cpu: Cpu, vm: number, flags: number) => Task;
type VmemFn = VmemImport | VmemRelease | VmemReclaim;

const SEED = 'sys/kern/subr_vmem.c';

interface VmemState {
  globals: number;
  vmem_zone: UmaZone | undefined;
  vmem_bt_zone: UmaZone | undefined;
  M_VMEM: MallocType | undefined;
  readonly fns: VmemFn[];
  readonly fnIds: Map<VmemFn, number>;
  /** The quantum-cache zones by their qcache_t address (the handle UMA needs). */
  readonly qcZones: Map<number, UmaZone>;
  /** Per CPU: how deep in vmem calls, and the deepest label of the outermost one. */
  readonly depth: number[];
  readonly opLabel: number[];
  /** Lines vmem printed on the console (vmem_check_sanity), oldest first. */
  readonly console: string[];
  /** VMEM_LOCK acquisitions, for tests and views (not read by the modeled code). */
  locks: number;
}

const states = new WeakMap<Kernel, VmemState>();
/** Per kernel, vmem_xalloc/vmem_xfree as the import pair of child arenas (vmemImportXalloc). */
const importPairs = new WeakMap<Kernel, { importfn: VmemImport; releasefn: VmemRelease }>();
/** vmem's JS-side state of a kernel (machine checkpoints): its table, and the import pair of child arenas. */
export const vmemJsStates = { states: states as WeakMap<Kernel, object>, importPairs: importPairs as WeakMap<Kernel, object> };

function st(k: Kernel): VmemState {
  let s = states.get(k);
  if (s === undefined) {
    s = {
      globals: 0, vmem_zone: undefined, vmem_bt_zone: undefined, M_VMEM: undefined, fns: [], fnIds: new Map(), qcZones: new Map(),
      depth: [], opLabel: [], console: [], locks: 0,
    };
    states.set(k, s);
  }
  return s;
}

/** The id a JS function has in vmem's function pointers (registered on first use; 0 for none). */
export function vmemFn(k: Kernel, f: VmemFn | undefined): number {
  if (f === undefined) return 0;
  const s = st(k);
  let id = s.fnIds.get(f);
  if (id === undefined) {
    s.fns.push(f);
    id = s.fns.length;
    s.fnIds.set(f, id);
  }
  return id;
}

function fnAt<T extends VmemFn>(k: Kernel, cpu: Cpu, id: number): T {
  const f = st(k).fns[id - 1];
  if (f === undefined) panic(cpu, `vmem: call through a bad function pointer ${id}`);
  return f as T;
}

/** Lines vmem printed (vmem_check's diagnosis before its panic). */
export function vmemConsole(k: Kernel): readonly string[] {
  return st(k).console;
}

/** How many times VMEM_LOCK was taken on this kernel. */
export function vmemLockCount(k: Kernel): number {
  return st(k).locks;
}

// --- Small helpers -----------------------------------------------------------------------------

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

function ld64(cpu: Cpu, va: number): bigint {
  const lo = cpu.load32(va);
  const hi = cpu.load32(va + 4);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function st64(cpu: Cpu, va: number, v: bigint): void {
  const x = v & U64;
  cpu.store32(va, Number(x & 0xffffffffn));
  cpu.store32(va + 4, Number(x >> 32n));
}

function MPASS(cpu: Cpu, ok: boolean, expr: string, line: number): void {
  if (!ok) panic(cpu, `Assertion ${expr} failed at ${SEED}:${line}`);
}

/** flsl: the 1-based index of the most significant set bit, 0 for 0. */
export function flsl(v: bigint): number {
  return v === 0n ? 0 : v.toString(2).length;
}

export function ORDER2SIZE(order: number): bigint {
  return order < VMEM_OPTVALUE ? BigInt(order + 1) : 1n << BigInt(order - (VMEM_OPTVALUE - VMEM_OPTORDER - 1));
}

export function SIZE2ORDER(size: bigint): number {
  return size <= BigInt(VMEM_OPTVALUE) ? Number(size) - 1 : flsl(size) + (VMEM_OPTVALUE - VMEM_OPTORDER - 2);
}

const neg = (v: bigint): bigint => (-v) & U64;
const VMEM_ALIGNUP = (addr: bigint, align: bigint): bigint => neg(neg(addr) & neg(align));
const VMEM_CROSS_P = (a1: bigint, a2: bigint, boundary: bigint): boolean => ((a1 ^ a2) & neg(boundary)) !== 0n;

/** hash32_buf (sys/sys/hash.h) over the 8 little-endian bytes of a 64-bit value: h = h*33 + c. */
export function hash32_buf64(v: bigint, hash: number): number {
  let h = hash >>> 0;
  for (let i = 0n; i < 64n; i += 8n) h = (Math.imul(h, 33) + Number((v >> i) & 0xffn)) >>> 0;
  return h;
}

function writeString(cpu: Cpu, va: number, s: string, max: number): void {
  const n = Math.min(s.length, max - 1);
  for (let i = 0; i < n; i++) cpu.store8(va + i, s.charCodeAt(i) & 0xff);
  cpu.store8(va + n, 0);
}

function readString(cpu: Cpu, va: number, max: number): string {
  let s = '';
  for (let i = 0; i < max; i++) {
    const c = cpu.load8(va + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** A vmem address as a UMA item pointer (canonical addresses only), or 0. */
function addrToItem(a: bigint): number {
  const top = a >> 47n;
  if (top !== 0n && top !== (1n << 17n) - 1n) return 0;
  return Number(a & ((1n << 48n) - 1n));
}

function itemToAddr(p: number): bigint {
  const v = BigInt(p);
  return v >= 1n << 47n ? v | (U64 ^ ((1n << 48n) - 1n)) : v;
}

// Boundary-tag field access.
const btStart = (cpu: Cpu, bt: number): bigint => ld64(cpu, bt + vmem_btag.bt_start);
const btSize = (cpu: Cpu, bt: number): bigint => ld64(cpu, bt + vmem_btag.bt_size);
const btType = (cpu: Cpu, bt: number): number => cpu.load32(bt + vmem_btag.bt_type);
const BT_END = (cpu: Cpu, bt: number): bigint => (btStart(cpu, bt) + btSize(cpu, bt) - 1n) & U64;
const BT_ISSPAN_P = (type: number): boolean => type <= BT_TYPE_SPAN_STATIC;

// LIST and TAILQ (sys/sys/queue.h) in emulated memory. An entry is (next, prev) at `field`:
// le_prev/tqe_prev hold the address of the previous element's next pointer (or the head's).

function LIST_INSERT_HEAD(cpu: Cpu, head: number, elm: number, field: number): void {
  const first = cpu.loadPtr(head);
  cpu.storePtr(elm + field, first);
  if (first !== 0) cpu.storePtr(first + field + 8, elm + field);
  cpu.storePtr(head, elm);
  cpu.storePtr(elm + field + 8, head);
}

function LIST_REMOVE(cpu: Cpu, elm: number, field: number): void {
  const next = cpu.loadPtr(elm + field);
  const prev = cpu.loadPtr(elm + field + 8);
  if (next !== 0) cpu.storePtr(next + field + 8, prev);
  cpu.storePtr(prev, next);
}

// The seglist entry is at offset 0 of a tag, so &elm->tqe_next is the tag's own address.
const SEGHEAD = (vm: number): number => vm + vmem.vm_seglist_first;

function TAILQ_NEXT(cpu: Cpu, elm: number): number {
  return cpu.loadPtr(elm + vmem_btag.bt_seglist_next);
}

function TAILQ_PREV(cpu: Cpu, elm: number): number {
  return cpu.loadPtr(cpu.loadPtr(cpu.loadPtr(elm + vmem_btag.bt_seglist_prev) + 8));
}

function TAILQ_FIRST(cpu: Cpu, vm: number): number {
  return cpu.loadPtr(vm + vmem.vm_seglist_first);
}

function TAILQ_INSERT_TAIL(cpu: Cpu, vm: number, elm: number): void {
  const last = cpu.loadPtr(vm + vmem.vm_seglist_last);
  cpu.storePtr(elm + vmem_btag.bt_seglist_next, 0);
  cpu.storePtr(elm + vmem_btag.bt_seglist_prev, last);
  cpu.storePtr(last, elm);
  cpu.storePtr(vm + vmem.vm_seglist_last, elm);
}

function TAILQ_INSERT_HEAD(cpu: Cpu, vm: number, elm: number): void {
  const first = cpu.loadPtr(vm + vmem.vm_seglist_first);
  cpu.storePtr(elm + vmem_btag.bt_seglist_next, first);
  if (first !== 0) cpu.storePtr(first + vmem_btag.bt_seglist_prev, elm);
  else cpu.storePtr(vm + vmem.vm_seglist_last, elm);
  cpu.storePtr(vm + vmem.vm_seglist_first, elm);
  cpu.storePtr(elm + vmem_btag.bt_seglist_prev, SEGHEAD(vm));
}

function TAILQ_INSERT_AFTER(cpu: Cpu, vm: number, listelm: number, elm: number): void {
  const next = cpu.loadPtr(listelm + vmem_btag.bt_seglist_next);
  cpu.storePtr(elm + vmem_btag.bt_seglist_next, next);
  if (next !== 0) cpu.storePtr(next + vmem_btag.bt_seglist_prev, elm);
  else cpu.storePtr(vm + vmem.vm_seglist_last, elm);
  cpu.storePtr(listelm + vmem_btag.bt_seglist_next, elm);
  cpu.storePtr(elm + vmem_btag.bt_seglist_prev, listelm);
}

function TAILQ_INSERT_BEFORE(cpu: Cpu, listelm: number, elm: number): void {
  const prev = cpu.loadPtr(listelm + vmem_btag.bt_seglist_prev);
  cpu.storePtr(elm + vmem_btag.bt_seglist_prev, prev);
  cpu.storePtr(elm + vmem_btag.bt_seglist_next, listelm);
  cpu.storePtr(prev, elm);
  cpu.storePtr(listelm + vmem_btag.bt_seglist_prev, elm);
}

function TAILQ_REMOVE(cpu: Cpu, vm: number, elm: number): void {
  const next = cpu.loadPtr(elm + vmem_btag.bt_seglist_next);
  const prev = cpu.loadPtr(elm + vmem_btag.bt_seglist_prev);
  if (next !== 0) cpu.storePtr(next + vmem_btag.bt_seglist_prev, prev);
  else cpu.storePtr(vm + vmem.vm_seglist_last, prev);
  cpu.storePtr(prev, next);
}

// --- Locks and operation bookkeeping ---------------------------------------------------------

function* VMEM_LOCK(k: Kernel, cpu: Cpu, vm: number): Task {
  st(k).locks++;
  yield* spin_lock(k, cpu, vm + vmem.vm_lock);
}

function* VMEM_UNLOCK(k: Kernel, cpu: Cpu, vm: number): Task {
  yield* spin_unlock(k, cpu, vm + vmem.vm_lock);
}

function* VMEM_CONDVAR_WAIT(k: Kernel, cpu: Cpu, vm: number): Task {
  yield* cv_wait(k, cpu, vm + vmem.vm_cv, vm + vmem.vm_lock, 'vmem');
}

function* VMEM_CONDVAR_BROADCAST(k: Kernel, cpu: Cpu, vm: number): Task {
  yield* cv_signal(k, cpu, vm + vmem.vm_cv, true);
}

const RANK: Record<string, number> = { 'vmem.xfree': 0, 'vmem.qcache': 1, 'vmem.xalloc': 2, 'vmem.import': 3 };
type VmemLabel = 'vmem.xalloc' | 'vmem.xfree' | 'vmem.qcache' | 'vmem.import';

/** Enters a vmem path label; the outermost call completes the operation on the deepest one. */
function opEnter(k: Kernel, cpu: Cpu, label: VmemLabel): void {
  const s = st(k);
  const d = s.depth[cpu.id] ?? 0;
  const id = k.label[label];
  if (d === 0 || RANK[label]! > RANK[k.machine.labels.names[s.opLabel[cpu.id]!]!]!) s.opLabel[cpu.id] = id;
  s.depth[cpu.id] = d + 1;
  cpu.enter(id);
}

function opLeave(k: Kernel, cpu: Cpu): void {
  const s = st(k);
  const d = s.depth[cpu.id]! - 1;
  s.depth[cpu.id] = d;
  if (d === 0) cpu.completeOp(s.opLabel[cpu.id]!);
  cpu.leave();
}

// --- Boundary tags ---------------------------------------------------------------------------

/** bt_fill: makes sure the arena caches BT_MAXALLOC free tags (the lock held; may drop it). */
function* bt_fill(k: Kernel, cpu: Cpu, vm: number, flags: number): Task<number> {
  const zone = st(k).vmem_bt_zone!;
  flags &= BT_FLAGS;
  // Only kmem_arena, where the tags' own pages come from, may dip into the reserve (0 when
  // the kernel has no arenas: then no arena may).
  if (vm === 0 || vm !== k.kmem_arena) flags &= ~M_USE_RESERVE;
  while (cpu.load32(vm + vmem.vm_nfreetags) < BT_MAXALLOC) {
    let bt = yield* uma_zalloc(k, cpu, zone, (flags & M_USE_RESERVE) | M_NOWAIT | M_NOVM);
    if (bt === 0) {
      yield* VMEM_UNLOCK(k, cpu, vm);
      bt = yield* uma_zalloc(k, cpu, zone, flags);
      yield* VMEM_LOCK(k, cpu, vm);
      if (bt === 0) break;
    }
    LIST_INSERT_HEAD(cpu, vm + vmem.vm_freetags, bt, vmem_btag.bt_u_next);
    cpu.store32(vm + vmem.vm_nfreetags, cpu.load32(vm + vmem.vm_nfreetags) + 1);
  }
  cpu.work(2);
  return cpu.load32(vm + vmem.vm_nfreetags) < BT_MAXALLOC ? ENOMEM : 0;
}

function bt_alloc(cpu: Cpu, vm: number): number {
  const bt = cpu.loadPtr(vm + vmem.vm_freetags);
  MPASS(cpu, bt !== 0, 'bt != NULL', 309);
  LIST_REMOVE(cpu, bt, vmem_btag.bt_u_next);
  cpu.store32(vm + vmem.vm_nfreetags, cpu.load32(vm + vmem.vm_nfreetags) - 1);
  return bt;
}

/** bt_freetrim: gives tags beyond freelimit back to the zone; returns with the lock dropped. */
function* bt_freetrim(k: Kernel, cpu: Cpu, vm: number, freelimit: number): Task {
  const out: number[] = [];
  while (cpu.load32(vm + vmem.vm_nfreetags) > freelimit) {
    const bt = cpu.loadPtr(vm + vmem.vm_freetags);
    LIST_REMOVE(cpu, bt, vmem_btag.bt_u_next);
    cpu.store32(vm + vmem.vm_nfreetags, cpu.load32(vm + vmem.vm_nfreetags) - 1);
    // Upstream chains them on a local LIST through bt_freelist; the order is the same.
    out.unshift(bt);
  }
  yield* VMEM_UNLOCK(k, cpu, vm);
  for (const bt of out) yield* uma_zfree(k, cpu, st(k).vmem_bt_zone!, bt);
}

function bt_free(cpu: Cpu, vm: number, bt: number): void {
  MPASS(cpu, cpu.loadPtr(vm + vmem.vm_freetags) !== bt, 'LIST_FIRST(&vm->vm_freetags) != bt', 346);
  LIST_INSERT_HEAD(cpu, vm + vmem.vm_freetags, bt, vmem_btag.bt_u_next);
  cpu.store32(vm + vmem.vm_nfreetags, cpu.load32(vm + vmem.vm_nfreetags) + 1);
}

function quantumShift(cpu: Cpu, vm: number): bigint {
  return BigInt(cpu.load32(vm + vmem.vm_quantum_shift));
}

function bt_freehead_tofree(cpu: Cpu, vm: number, size: bigint): number {
  const qsize = size >> quantumShift(cpu, vm);
  const idx = SIZE2ORDER(qsize);
  MPASS(cpu, size !== 0n && qsize !== 0n, 'size != 0 && qsize != 0', 370);
  MPASS(cpu, (size & ld64(cpu, vm + vmem.vm_quantum_mask)) === 0n, '(size & vm->vm_quantum_mask) == 0', 371);
  MPASS(cpu, idx >= 0, 'idx >= 0', 372);
  MPASS(cpu, idx < VMEM_MAXORDER, 'idx < VMEM_MAXORDER', 373);
  cpu.work(6);
  return vm + vmem.vm_freelist + idx * 8;
}

function bt_freehead_toalloc(cpu: Cpu, vm: number, size: bigint, strat: number): number {
  const qsize = size >> quantumShift(cpu, vm);
  let idx = SIZE2ORDER(qsize);
  MPASS(cpu, size !== 0n && qsize !== 0n, 'size != 0 && qsize != 0', 392);
  MPASS(cpu, (size & ld64(cpu, vm + vmem.vm_quantum_mask)) === 0n, '(size & vm->vm_quantum_mask) == 0', 393);
  if (strat === M_FIRSTFIT && ORDER2SIZE(idx) !== qsize) idx++;
  MPASS(cpu, idx >= 0, 'idx >= 0', 399);
  MPASS(cpu, idx < VMEM_MAXORDER, 'idx < VMEM_MAXORDER', 400);
  cpu.work(8);
  return vm + vmem.vm_freelist + idx * 8;
}

function bt_hashhead(cpu: Cpu, vm: number, addr: bigint): number {
  const hash = hash32_buf64(addr, 0);
  // hash32_buf: four instructions a byte (load, shift, add, add) over eight bytes.
  cpu.work(32);
  const size = ld64(cpu, vm + vmem.vm_hashsize);
  return cpu.loadPtr(vm + vmem.vm_hashlist) + Number(BigInt(hash) % size) * 8;
}

function bt_lookupbusy(cpu: Cpu, vm: number, addr: bigint): number {
  const list = bt_hashhead(cpu, vm, addr);
  for (let bt = cpu.loadPtr(list); bt !== 0; bt = cpu.loadPtr(bt + vmem_btag.bt_u_next)) {
    cpu.work(2);
    if (btStart(cpu, bt) === addr) return bt;
  }
  return 0;
}

function bt_rembusy(cpu: Cpu, vm: number, bt: number): void {
  MPASS(cpu, cpu.load32(vm + vmem.vm_nbusytag) > 0, 'vm->vm_nbusytag > 0', 441);
  st64(cpu, vm + vmem.vm_inuse, ld64(cpu, vm + vmem.vm_inuse) - btSize(cpu, bt));
  cpu.store32(vm + vmem.vm_nbusytag, cpu.load32(vm + vmem.vm_nbusytag) - 1);
  LIST_REMOVE(cpu, bt, vmem_btag.bt_u_next);
}

function bt_insbusy(cpu: Cpu, vm: number, bt: number): void {
  MPASS(cpu, btType(cpu, bt) === BT_TYPE_BUSY, 'bt->bt_type == BT_TYPE_BUSY', 453);
  const list = bt_hashhead(cpu, vm, btStart(cpu, bt));
  LIST_INSERT_HEAD(cpu, list, bt, vmem_btag.bt_u_next);
  cpu.store32(vm + vmem.vm_nbusytag, cpu.load32(vm + vmem.vm_nbusytag) + 1);
  st64(cpu, vm + vmem.vm_inuse, ld64(cpu, vm + vmem.vm_inuse) + btSize(cpu, bt));
}

function bt_remseg(cpu: Cpu, vm: number, bt: number): void {
  MPASS(cpu, btType(cpu, bt) !== BT_TYPE_CURSOR, 'bt->bt_type != BT_TYPE_CURSOR', 467);
  TAILQ_REMOVE(cpu, vm, bt);
  bt_free(cpu, vm, bt);
}

function bt_insseg(cpu: Cpu, vm: number, bt: number, prev: number): void {
  TAILQ_INSERT_AFTER(cpu, vm, prev, bt);
}

function bt_insseg_tail(cpu: Cpu, vm: number, bt: number): void {
  TAILQ_INSERT_TAIL(cpu, vm, bt);
}

function bt_remfree(cpu: Cpu, bt: number): void {
  MPASS(cpu, btType(cpu, bt) === BT_TYPE_FREE, 'bt->bt_type == BT_TYPE_FREE', 489);
  LIST_REMOVE(cpu, bt, vmem_btag.bt_u_next);
}

function bt_insfree(cpu: Cpu, vm: number, bt: number): void {
  const list = bt_freehead_tofree(cpu, vm, btSize(cpu, bt));
  LIST_INSERT_HEAD(cpu, list, bt, vmem_btag.bt_u_next);
}

function setTag(cpu: Cpu, bt: number, type: number, start: bigint, size: bigint): void {
  cpu.store32(bt + vmem_btag.bt_type, type);
  st64(cpu, bt + vmem_btag.bt_start, start);
  st64(cpu, bt + vmem_btag.bt_size, size);
}

// --- Quantum caches ----------------------------------------------------------------------------

function* qc_import(k: Kernel, cpu: Cpu, qc: number, store: number, cnt: number, flags: number): Task<number> {
  if ((flags & M_WAITOK) !== 0) panic(cpu, 'blocking allocation');
  const vm = cpu.loadPtr(qc + qcache.qc_vmem);
  const size = ld64(cpu, qc + qcache.qc_size);
  let i = 0;
  for (; i < cnt; i++) {
    const r = yield* vmem_xalloc(k, cpu, vm, size, 0n, 0n, 0n, VMEM_ADDR_QCACHE_MIN, VMEM_ADDR_MAX, flags);
    if (r.error !== 0) break;
    const item = addrToItem(r.addr);
    if (item === 0) {
      yield* vmem_xfree(k, cpu, vm, r.addr, size);
      break;
    }
    cpu.storePtr(store + i * 8, item);
  }
  return i;
}

function* qc_release(k: Kernel, cpu: Cpu, qc: number, store: number, cnt: number): Task {
  const vm = cpu.loadPtr(qc + qcache.qc_vmem);
  const size = ld64(cpu, qc + qcache.qc_size);
  for (let i = 0; i < cnt; i++) yield* vmem_xfree(k, cpu, vm, itemToAddr(cpu.loadPtr(store + i * 8)), size);
}

function* qc_init(k: Kernel, cpu: Cpu, vm: number, qcache_max: bigint): Task {
  const shift = quantumShift(cpu, vm);
  MPASS(cpu, (qcache_max & ld64(cpu, vm + vmem.vm_quantum_mask)) === 0n, '(qcache_max & vm->vm_quantum_mask) == 0', 552);
  const q = qcache_max >> shift;
  const idxMax = Number(q < BigInt(VMEM_QCACHE_IDX_MAX) ? q : BigInt(VMEM_QCACHE_IDX_MAX));
  st64(cpu, vm + vmem.vm_qcache_max, BigInt(idxMax) << shift);
  const name = readString(cpu, vm + vmem.vm_name, VMEM_NAME_MAX + 1);
  for (let i = 0; i < idxMax; i++) {
    const qc = vm + vmem.vm_qcache + i * qcache.sizeof;
    const size = BigInt(i + 1) << shift;
    const qcName = `${name}-${size}`.slice(0, QC_NAME_MAX - 1);
    writeString(cpu, qc + qcache.qc_name, qcName, QC_NAME_MAX);
    cpu.storePtr(qc + qcache.qc_vmem, vm);
    st64(cpu, qc + qcache.qc_size, size);
    const z = yield* uma_zcache_create(
      k, cpu, qcName, Number(size), undefined, undefined, undefined, undefined,
      qcImportFn(k),
      qcReleaseFn(k),
      qc, 0,
    );
    cpu.storePtr(qc + qcache.qc_cache, z.z);
    st(k).qcZones.set(qc, z);
    MPASS(cpu, z.z !== 0, 'qc->qc_cache', 566);
  }
}

function qcZone(k: Kernel, cpu: Cpu, qc: number): UmaZone {
  const z = st(k).qcZones.get(qc);
  if (z === undefined || z.z !== cpu.loadPtr(qc + qcache.qc_cache)) panic(cpu, `vmem: no quantum cache at 0x${qc.toString(16)}`);
  return z;
}

function qcIdxMax(cpu: Cpu, vm: number): number {
  return Number(ld64(cpu, vm + vmem.vm_qcache_max) >> quantumShift(cpu, vm));
}

function* qc_destroy(k: Kernel, cpu: Cpu, vm: number): Task {
  const n = qcIdxMax(cpu, vm);
  for (let i = 0; i < n; i++) {
    const qc = vm + vmem.vm_qcache + i * qcache.sizeof;
    yield* uma_zdestroy(k, cpu, qcZone(k, cpu, qc));
    st(k).qcZones.delete(qc);
  }
}

function* qc_drain(k: Kernel, cpu: Cpu, vm: number): Task {
  const n = qcIdxMax(cpu, vm);
  for (let i = 0; i < n; i++) yield* zone_drain(k, cpu, qcZone(k, cpu, vm + vmem.vm_qcache + i * qcache.sizeof));
}

// --- Startup, rehash, periodic -----------------------------------------------------------------

/** vmem_startup: the "vmem" and "vmem btag" zones (UMA must be up) and malloc type "vmem". */
export function* vmem_startup(k: Kernel, cpu: Cpu): Task {
  const s = st(k);
  if (s.vmem_bt_zone !== undefined) panic(cpu, 'vmem_startup: called twice');
  s.M_VMEM = yield* malloc_init(k, cpu, 'vmem');
  s.globals = yield* malloc(k, cpu, vmem_globals.sizeof, s.M_VMEM, M_WAITOK);
  cpu.store32(s.globals + vmem_globals.vmem_list_lock, 0);
  cpu.store32(s.globals + vmem_globals.vmem_list_lock + 4, 0);
  cpu.storePtr(s.globals + vmem_globals.vmem_list, 0);
  s.vmem_zone = yield* uma_zcreate(k, cpu, 'vmem', vmem.sizeof, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, UMA_ZONE_VM);
  s.vmem_bt_zone = yield* uma_zcreate(
    k, cpu, 'vmem btag', vmem_btag.sizeof, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, UMA_ZONE_VM | UMA_ZONE_NOFREE,
  );
  if (k.kmem_arena !== 0) {
    cpu.store32(k.vmem_bt_lock, 0);
    yield* uma_prealloc(k, cpu, s.vmem_bt_zone, BT_MAXALLOC);
    yield* uma_zone_reserve(k, cpu, s.vmem_bt_zone, Math.floor((BT_MAXALLOC * (k.ncpus + 1)) / 2));
    yield* uma_zone_set_allocf(k, cpu, s.vmem_bt_zone, btAllocFn(k));
  }
}

function btAllocFn(k: Kernel): UmaAllocf {
  return (c, _zone, bytes, wait) => vmem_bt_alloc(k, c, bytes, wait);
}

function qcImportFn(k: Kernel): UmaImport {
  return (c, arg, store, count, fl) => qc_import(k, c, arg, store, count, fl);
}

function qcReleaseFn(k: Kernel): UmaRelease {
  return (c, arg, store, count) => qc_release(k, c, arg, store, count);
}

/** The closures over `k` vmem puts in UMA's function table, and its child arenas' import pair (machine checkpoints). */
export function vmemRestoreFunctions(k: Kernel): ((...args: never[]) => unknown)[] {
  const pair = importPairOf(k);
  return [btAllocFn(k), qcImportFn(k), qcReleaseFn(k), pair.importfn, pair.releasefn];
}

/**
 * vmem_bt_alloc: the btag zone's slabs from kmem_arena (address space and pages in one step
 * under vmem_bt_lock, both from their reserves); NULL when either runs out.
 */
function* vmem_bt_alloc(k: Kernel, cpu: Cpu, bytes: number, wait: number): Task<{ mem: number; pflag: number }> {
  yield* spin_lock(k, cpu, k.vmem_bt_lock);
  const r = yield* vmem_xalloc(k, cpu, k.kmem_arena, BigInt(bytes), 0n, 0n, 0n, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_NOWAIT | M_NOVM | M_USE_RESERVE | M_BESTFIT);
  if (r.error === 0) {
    const addr = kvaOf(r.addr);
    if ((yield* kmem_back(k, cpu, k.kmem_object, addr, bytes, M_NOWAIT | M_USE_RESERVE)) === 0) {
      yield* spin_unlock(k, cpu, k.vmem_bt_lock);
      return { mem: addr, pflag: UMA_SLAB_KMEM };
    }
    yield* vmem_xfree(k, cpu, k.kmem_arena, r.addr, BigInt(bytes));
    yield* spin_unlock(k, cpu, k.vmem_bt_lock);
    // Out of memory, not address space.
    if ((wait & M_WAITOK) !== 0) yield* vm_wait(k, cpu);
    return { mem: 0, pflag: UMA_SLAB_KMEM };
  }
  yield* spin_unlock(k, cpu, k.vmem_bt_lock);
  return { mem: 0, pflag: UMA_SLAB_KMEM };
}

function started(k: Kernel, cpu: Cpu): VmemState {
  const s = st(k);
  if (s.vmem_bt_zone === undefined) panic(cpu, 'vmem: vmem_startup has not run');
  return s;
}

/** vmem_rehash: a new busy-tag hash of newhashsize lists (malloc'ed, M_NOWAIT). */
export function* vmem_rehash(k: Kernel, cpu: Cpu, vm: number, newhashsize: number): Task<number> {
  const s = started(k, cpu);
  MPASS(cpu, newhashsize > 0, 'newhashsize > 0', 710);
  const newhashlist = yield* malloc(k, cpu, 8 * newhashsize, s.M_VMEM!, M_NOWAIT);
  if (newhashlist === 0) return ENOMEM;
  for (let i = 0; i < newhashsize; i++) cpu.storePtr(newhashlist + 8 * i, 0);
  yield* VMEM_LOCK(k, cpu, vm);
  const oldhashlist = cpu.loadPtr(vm + vmem.vm_hashlist);
  const oldhashsize = Number(ld64(cpu, vm + vmem.vm_hashsize));
  cpu.storePtr(vm + vmem.vm_hashlist, newhashlist);
  st64(cpu, vm + vmem.vm_hashsize, BigInt(newhashsize));
  if (oldhashlist === 0) {
    yield* VMEM_UNLOCK(k, cpu, vm);
    return 0;
  }
  for (let i = 0; i < oldhashsize; i++) {
    for (let bt = cpu.loadPtr(oldhashlist + 8 * i); bt !== 0; bt = cpu.loadPtr(oldhashlist + 8 * i)) {
      bt_rembusy(cpu, vm, bt);
      bt_insbusy(cpu, vm, bt);
    }
  }
  yield* VMEM_UNLOCK(k, cpu, vm);
  if (oldhashlist !== vm + vmem.vm_hash0) yield* free(k, cpu, oldhashlist, s.M_VMEM!);
  return 0;
}

/** vmem_periodic: every arena checked (vmem_check), its hash resized to its busy tags, waiters woken. */
export function* vmem_periodic(k: Kernel, cpu: Cpu, check = true): Task {
  const s = started(k, cpu);
  const lk = s.globals + vmem_globals.vmem_list_lock;
  yield* spin_lock(k, cpu, lk);
  for (let vm = cpu.loadPtr(s.globals + vmem_globals.vmem_list); vm !== 0; vm = cpu.loadPtr(vm + vmem.vm_alllist_next)) {
    if (check) {
      yield* VMEM_LOCK(k, cpu, vm);
      vmem_check(k, cpu, vm);
      yield* VMEM_UNLOCK(k, cpu, vm);
    }
    let desired = 2 ** flsl(BigInt(cpu.load32(vm + vmem.vm_nbusytag)));
    desired = Math.min(Math.max(desired, VMEM_HASHSIZE_MIN), VMEM_HASHSIZE_MAX);
    const current = Number(ld64(cpu, vm + vmem.vm_hashsize));
    if (desired >= current * 2 || desired * 4 <= current) yield* vmem_rehash(k, cpu, vm, desired);
    yield* VMEM_CONDVAR_BROADCAST(k, cpu, vm);
  }
  yield* spin_unlock(k, cpu, lk);
}

// --- Internal functions ------------------------------------------------------------------------

function vmem_add1(cpu: Cpu, vm: number, addr: bigint, size: bigint, type: number): void {
  MPASS(cpu, type === BT_TYPE_SPAN || type === BT_TYPE_SPAN_STATIC, 'type == BT_TYPE_SPAN || type == BT_TYPE_SPAN_STATIC', 807);
  MPASS(cpu, (size & ld64(cpu, vm + vmem.vm_quantum_mask)) === 0n, '(size & vm->vm_quantum_mask) == 0', 808);
  const btspan = bt_alloc(cpu, vm);
  setTag(cpu, btspan, type, addr, size);
  bt_insseg_tail(cpu, vm, btspan);
  const btfree = bt_alloc(cpu, vm);
  setTag(cpu, btfree, BT_TYPE_FREE, addr, size);
  bt_insseg(cpu, vm, btfree, btspan);
  bt_insfree(cpu, vm, btfree);
  st64(cpu, vm + vmem.vm_size, ld64(cpu, vm + vmem.vm_size) + size);
}

function* vmem_destroy1(k: Kernel, cpu: Cpu, vm: number): Task {
  const s = started(k, cpu);
  yield* qc_destroy(k, cpu, vm);
  yield* VMEM_LOCK(k, cpu, vm);
  MPASS(cpu, cpu.load32(vm + vmem.vm_nbusytag) === 0, 'vm->vm_nbusytag == 0', 840);
  TAILQ_REMOVE(cpu, vm, vm + vmem.vm_cursor);
  for (let bt = TAILQ_FIRST(cpu, vm); bt !== 0; bt = TAILQ_FIRST(cpu, vm)) bt_remseg(cpu, vm, bt);
  const hl = cpu.loadPtr(vm + vmem.vm_hashlist);
  if (hl !== 0 && hl !== vm + vmem.vm_hash0) yield* free(k, cpu, hl, s.M_VMEM!);
  yield* bt_freetrim(k, cpu, vm, 0);
  yield* uma_zfree(k, cpu, s.vmem_zone!, vm);
}

function* vmem_import(k: Kernel, cpu: Cpu, vm: number, size: bigint, align: bigint, flags: number): Task<number> {
  const importfn = cpu.loadPtr(vm + vmem.vm_importfn);
  if (importfn === 0) return EINVAL;
  cpu.enter(k.label['vmem.import']);
  const s = st(k);
  if ((s.depth[cpu.id] ?? 0) > 0) s.opLabel[cpu.id] = k.label['vmem.import'];
  const mask = ld64(cpu, vm + vmem.vm_quantum_mask);
  if (align !== mask + 1n) size = align * 2n + size;
  const iq = ld64(cpu, vm + vmem.vm_import_quantum);
  size = ((size + iq - 1n) / iq) * iq;
  const limit = ld64(cpu, vm + vmem.vm_limit);
  if (limit !== 0n && limit < ld64(cpu, vm + vmem.vm_size) + size) {
    cpu.leave();
    return ENOMEM;
  }
  MPASS(cpu, cpu.load32(vm + vmem.vm_nfreetags) >= BT_MAXALLOC, 'vm->vm_nfreetags >= BT_MAXALLOC', 879);
  cpu.store32(vm + vmem.vm_nfreetags, cpu.load32(vm + vmem.vm_nfreetags) - BT_MAXALLOC);
  yield* VMEM_UNLOCK(k, cpu, vm);
  const r = yield* fnAt<VmemImport>(k, cpu, importfn)(cpu, cpu.loadPtr(vm + vmem.vm_arg), size & U64, flags);
  yield* VMEM_LOCK(k, cpu, vm);
  cpu.store32(vm + vmem.vm_nfreetags, cpu.load32(vm + vmem.vm_nfreetags) + BT_MAXALLOC);
  if (r.error !== 0) {
    cpu.leave();
    return ENOMEM;
  }
  vmem_add1(cpu, vm, r.addr, size & U64, BT_TYPE_SPAN);
  cpu.leave();
  return 0;
}

/** vmem_fit: the address in bt meeting the restrictions, or undefined (ENOMEM). */
function vmem_fit(
  cpu: Cpu, bt: number, size: bigint, align: bigint, phase: bigint, nocross: bigint, minaddr: bigint, maxaddr: bigint,
): bigint | undefined {
  const btstart = btStart(cpu, bt);
  const btend = BT_END(cpu, bt);
  MPASS(cpu, size > 0n, 'size > 0', 907);
  MPASS(cpu, btSize(cpu, bt) >= size, 'bt->bt_size >= size', 908);
  cpu.work(12);
  let start = btstart < minaddr ? minaddr : btstart;
  const end = btend > maxaddr ? maxaddr : btend;
  if (start > end) return undefined;
  start = (VMEM_ALIGNUP((start - phase) & U64, align) + phase) & U64;
  if (start < btstart) start = (start + align) & U64;
  if (VMEM_CROSS_P(start, (start + size - 1n) & U64, nocross)) {
    MPASS(cpu, align < nocross, 'align < nocross', 929);
    start = (VMEM_ALIGNUP((start - phase) & U64, nocross) + phase) & U64;
  }
  if (start <= end && end - start >= size - 1n) {
    MPASS(cpu, (start & (align - 1n)) === phase, '(start & (align - 1)) == phase', 933);
    MPASS(cpu, !VMEM_CROSS_P(start, (start + size - 1n) & U64, nocross), '!VMEM_CROSS_P(start, start + size - 1, nocross)', 934);
    MPASS(cpu, minaddr <= start, 'minaddr <= start', 935);
    MPASS(cpu, maxaddr === 0n || ((start + size - 1n) & U64) <= maxaddr, 'maxaddr == 0 || start + size - 1 <= maxaddr', 936);
    MPASS(cpu, btstart <= start, 'bt->bt_start <= start', 937);
    MPASS(cpu, btend - start >= size - 1n, 'BT_END(bt) - start >= size - 1', 938);
    return start;
  }
  return undefined;
}

/** vmem_clip: the free tag bt trimmed to [start, start + size), which becomes busy. */
function vmem_clip(cpu: Cpu, vm: number, bt: number, start: bigint, size: bigint): void {
  MPASS(cpu, btType(cpu, bt) === BT_TYPE_FREE, 'bt->bt_type == BT_TYPE_FREE', 956);
  MPASS(cpu, btSize(cpu, bt) >= size, 'bt->bt_size >= size', 957);
  bt_remfree(cpu, bt);
  const s0 = btStart(cpu, bt);
  if (s0 !== start) {
    const btprev = bt_alloc(cpu, vm);
    const prevSize = start - s0;
    setTag(cpu, btprev, BT_TYPE_FREE, s0, prevSize);
    st64(cpu, bt + vmem_btag.bt_start, start);
    st64(cpu, bt + vmem_btag.bt_size, btSize(cpu, bt) - prevSize);
    bt_insfree(cpu, vm, btprev);
    bt_insseg(cpu, vm, btprev, TAILQ_PREV(cpu, bt));
  }
  MPASS(cpu, btStart(cpu, bt) === start, 'bt->bt_start == start', 970);
  const bsize = btSize(cpu, bt);
  if (bsize !== size && bsize - size > ld64(cpu, vm + vmem.vm_quantum_mask)) {
    const btnew = bt_alloc(cpu, vm);
    setTag(cpu, btnew, BT_TYPE_BUSY, start, size);
    st64(cpu, bt + vmem_btag.bt_start, start + size);
    st64(cpu, bt + vmem_btag.bt_size, bsize - size);
    bt_insfree(cpu, vm, bt);
    bt_insseg(cpu, vm, btnew, TAILQ_PREV(cpu, bt));
    bt_insbusy(cpu, vm, btnew);
  } else {
    cpu.store32(bt + vmem_btag.bt_type, BT_TYPE_BUSY);
    bt_insbusy(cpu, vm, bt);
  }
}

/**
 * What vmem_xalloc does when nothing fits: import, then drain the quantum caches and reclaim;
 * true to try again (later upstream's vmem_try_fetch, the seed's loop tail). The lock is held.
 */
function* vmem_try_fetch(k: Kernel, cpu: Cpu, vm: number, size: bigint, align: bigint, flags: number): Task<boolean> {
  if ((yield* vmem_import(k, cpu, vm, size, align, flags)) === 0) return true;
  const reclaim = cpu.loadPtr(vm + vmem.vm_reclaimfn);
  if (ld64(cpu, vm + vmem.vm_qcache_max) !== 0n || reclaim !== 0) {
    const avail = ld64(cpu, vm + vmem.vm_size) - ld64(cpu, vm + vmem.vm_inuse);
    yield* VMEM_UNLOCK(k, cpu, vm);
    if (ld64(cpu, vm + vmem.vm_qcache_max) !== 0n) yield* qc_drain(k, cpu, vm);
    if (reclaim !== 0) yield* fnAt<VmemReclaim>(k, cpu, reclaim)(cpu, vm, flags);
    yield* VMEM_LOCK(k, cpu, vm);
    if (ld64(cpu, vm + vmem.vm_size) - ld64(cpu, vm + vmem.vm_inuse) > avail) return true;
  }
  if ((flags & M_NOWAIT) !== 0) return false;
  yield* VMEM_CONDVAR_WAIT(k, cpu, vm);
  return true;
}

/**
 * The release test of vmem_xfree (later upstream's vmem_try_release): a free tag that is a
 * whole imported span goes back through the release function. Drops the lock when it does.
 */
function* vmem_try_release(k: Kernel, cpu: Cpu, vm: number, bt: number, remfree: boolean): Task<boolean> {
  const releasefn = cpu.loadPtr(vm + vmem.vm_releasefn);
  if (releasefn === 0) return false;
  const prev = TAILQ_PREV(cpu, bt);
  MPASS(cpu, prev !== 0, 't != NULL', 1315);
  const ptype = btType(cpu, prev);
  MPASS(cpu, ptype !== BT_TYPE_FREE, 'BT_ISSPAN_P(t) || t->bt_type == BT_TYPE_BUSY', 1316);
  if (ptype === BT_TYPE_SPAN && btSize(cpu, prev) === btSize(cpu, bt)) {
    const spanaddr = btStart(cpu, prev);
    const spansize = btSize(cpu, prev);
    MPASS(cpu, spanaddr === btStart(cpu, bt), 't->bt_start == bt->bt_start', 1322);
    if (remfree) bt_remfree(cpu, bt);
    bt_remseg(cpu, vm, bt);
    bt_remseg(cpu, vm, prev);
    st64(cpu, vm + vmem.vm_size, ld64(cpu, vm + vmem.vm_size) - spansize);
    yield* VMEM_CONDVAR_BROADCAST(k, cpu, vm);
    yield* bt_freetrim(k, cpu, vm, BT_MAXFREE);
    yield* fnAt<VmemRelease>(k, cpu, releasefn)(cpu, cpu.loadPtr(vm + vmem.vm_arg), spanaddr, spansize);
    return true;
  }
  return false;
}

/** vmem_xalloc_nextfit (later upstream): a walk of the segment list from the cursor, which then moves past the allocation. */
function* vmem_xalloc_nextfit(
  k: Kernel, cpu: Cpu, vm: number, size: bigint, align: bigint, phase: bigint, nocross: bigint, flags: number,
): Task<{ error: number; addr: bigint }> {
  let error = ENOMEM;
  let addr = 0n;
  yield* VMEM_LOCK(k, cpu, vm);
  if (cpu.load32(vm + vmem.vm_nfreetags) < BT_MAXALLOC && (yield* bt_fill(k, cpu, vm, flags)) !== 0) {
    yield* VMEM_UNLOCK(k, cpu, vm);
    return { error, addr };
  }
  const cursor = vm + vmem.vm_cursor;
  for (;;) {
    let bt = TAILQ_NEXT(cpu, cursor);
    let wrapped = false;
    for (;;) {
      if (bt === 0) {
        bt = TAILQ_FIRST(cpu, vm);
        // Upstream does not test this tag against the cursor and walks on forever.
        if (bt === cursor) break;
        wrapped = true;
      } else if (bt === cursor) break;
      cpu.work(3);
      if (btType(cpu, bt) === BT_TYPE_FREE && btSize(cpu, bt) >= size) {
        const at = vmem_fit(cpu, bt, size, align, phase, nocross, VMEM_ADDR_MIN, VMEM_ADDR_MAX);
        if (at !== undefined) {
          addr = at;
          error = 0;
          vmem_clip(cpu, vm, bt, addr, size);
          break;
        }
      }
      bt = TAILQ_NEXT(cpu, bt);
      if (wrapped && bt === cursor) break;
    }
    const next = TAILQ_NEXT(cpu, cursor);
    const prev = next !== 0 ? TAILQ_PREV(cpu, cursor) : 0;
    if (next !== 0 && prev !== 0 && btType(cpu, next) === BT_TYPE_FREE && btType(cpu, prev) === BT_TYPE_FREE &&
      btStart(cpu, prev) + btSize(cpu, prev) === btStart(cpu, next)) {
      st64(cpu, prev + vmem_btag.bt_size, btSize(cpu, prev) + btSize(cpu, next));
      bt_remfree(cpu, next);
      bt_remseg(cpu, vm, next);
      const at = error === ENOMEM && btSize(cpu, prev) >= size
        ? vmem_fit(cpu, prev, size, align, phase, nocross, VMEM_ADDR_MIN, VMEM_ADDR_MAX) : undefined;
      if (at !== undefined) {
        addr = at;
        error = 0;
        vmem_clip(cpu, vm, prev, addr, size);
        bt = prev;
      } else if (yield* vmem_try_release(k, cpu, vm, prev, true)) {
        // The release dropped the lock; upstream goes on as if it held it.
        yield* VMEM_LOCK(k, cpu, vm);
      }
    }
    if (error === 0) {
      TAILQ_REMOVE(cpu, vm, cursor);
      while (bt !== 0 && btStart(cpu, bt) < addr + size) bt = TAILQ_NEXT(cpu, bt);
      if (bt !== 0) TAILQ_INSERT_BEFORE(cpu, bt, cursor);
      else TAILQ_INSERT_HEAD(cpu, vm, cursor);
    }
    if (error === ENOMEM && (yield* vmem_try_fetch(k, cpu, vm, size, align, flags))) continue;
    break;
  }
  yield* VMEM_UNLOCK(k, cpu, vm);
  return { error, addr };
}

// --- The API -----------------------------------------------------------------------------------

/** vmem_set_import: where the arena's spans come from when it runs short. */
export function* vmem_set_import(
  k: Kernel, cpu: Cpu, vm: number, importfn: VmemImport | undefined, releasefn: VmemRelease | undefined, arg: number, import_quantum: bigint,
): Task {
  yield* VMEM_LOCK(k, cpu, vm);
  cpu.storePtr(vm + vmem.vm_importfn, vmemFn(k, importfn));
  cpu.storePtr(vm + vmem.vm_releasefn, vmemFn(k, releasefn));
  cpu.storePtr(vm + vmem.vm_arg, arg);
  st64(cpu, vm + vmem.vm_import_quantum, import_quantum);
  yield* VMEM_UNLOCK(k, cpu, vm);
}

export function* vmem_set_limit(k: Kernel, cpu: Cpu, vm: number, limit: bigint): Task {
  yield* VMEM_LOCK(k, cpu, vm);
  st64(cpu, vm + vmem.vm_limit, limit);
  yield* VMEM_UNLOCK(k, cpu, vm);
}

export function* vmem_set_reclaim(k: Kernel, cpu: Cpu, vm: number, reclaimfn: VmemReclaim | undefined): Task {
  yield* VMEM_LOCK(k, cpu, vm);
  cpu.storePtr(vm + vmem.vm_reclaimfn, vmemFn(k, reclaimfn));
  yield* VMEM_UNLOCK(k, cpu, vm);
}

/** vmem_init: an arena in the storage at vm; 0 when its initial span cannot be added. */
export function* vmem_init(
  k: Kernel, cpu: Cpu, vm: number, name: string, base: bigint, size: bigint, quantum: bigint, qcache_max: bigint, flags: number,
): Task<number> {
  const s = started(k, cpu);
  MPASS(cpu, quantum > 0n, 'quantum > 0', 1033);
  MPASS(cpu, (quantum & (quantum - 1n)) === 0n, '(quantum & (quantum - 1)) == 0', 1034);
  cpu.storeFill(vm, vmem.sizeof, 0);
  cpu.store32(vm + vmem.vm_nfreetags, 0);
  cpu.storePtr(vm + vmem.vm_freetags, 0);
  writeString(cpu, vm + vmem.vm_name, name, VMEM_NAME_MAX + 1);
  st64(cpu, vm + vmem.vm_quantum_mask, quantum - 1n);
  cpu.store32(vm + vmem.vm_quantum_shift, flsl(quantum) - 1);
  cpu.store32(vm + vmem.vm_nbusytag, 0);
  st64(cpu, vm + vmem.vm_size, 0n);
  st64(cpu, vm + vmem.vm_limit, 0n);
  st64(cpu, vm + vmem.vm_inuse, 0n);
  yield* qc_init(k, cpu, vm, qcache_max);
  cpu.storePtr(vm + vmem.vm_seglist_first, 0);
  cpu.storePtr(vm + vmem.vm_seglist_last, SEGHEAD(vm));
  const cursor = vm + vmem.vm_cursor;
  setTag(cpu, cursor, BT_TYPE_CURSOR, 0n, 0n);
  TAILQ_INSERT_TAIL(cpu, vm, cursor);
  for (let i = 0; i < VMEM_MAXORDER; i++) cpu.storePtr(vm + vmem.vm_freelist + 8 * i, 0);
  for (let i = 0; i < VMEM_HASHSIZE_MIN; i++) cpu.storePtr(vm + vmem.vm_hash0 + 8 * i, 0);
  st64(cpu, vm + vmem.vm_hashsize, BigInt(VMEM_HASHSIZE_MIN));
  cpu.storePtr(vm + vmem.vm_hashlist, vm + vmem.vm_hash0);
  if (size !== 0n && (yield* vmem_add(k, cpu, vm, base, size, flags)) !== 0) {
    yield* vmem_destroy1(k, cpu, vm);
    return 0;
  }
  const lk = s.globals + vmem_globals.vmem_list_lock;
  yield* spin_lock(k, cpu, lk);
  LIST_INSERT_HEAD(cpu, s.globals + vmem_globals.vmem_list, vm, vmem.vm_alllist_next);
  yield* spin_unlock(k, cpu, lk);
  return vm;
}

/** vmem_create: an arena from the "vmem" zone; 0 on failure. */
export function* vmem_create(
  k: Kernel, cpu: Cpu, name: string, base: bigint, size: bigint, quantum: bigint, qcache_max: bigint, flags: number,
): Task<number> {
  const s = started(k, cpu);
  const vm = yield* uma_zalloc(k, cpu, s.vmem_zone!, flags & (M_WAITOK | M_NOWAIT));
  if (vm === 0) return 0;
  return yield* vmem_init(k, cpu, vm, name, base, size, quantum, qcache_max, flags);
}

export function* vmem_destroy(k: Kernel, cpu: Cpu, vm: number): Task {
  const s = started(k, cpu);
  const lk = s.globals + vmem_globals.vmem_list_lock;
  yield* spin_lock(k, cpu, lk);
  LIST_REMOVE(cpu, vm, vmem.vm_alllist_next);
  yield* spin_unlock(k, cpu, lk);
  yield* vmem_destroy1(k, cpu, vm);
}

export function vmem_roundup_size(cpu: Cpu, vm: number, size: bigint): bigint {
  const mask = ld64(cpu, vm + vmem.vm_quantum_mask);
  return (size + mask) & (U64 ^ mask);
}

/** vmem_alloc: from the quantum cache when size <= vm_qcache_max, else vmem_xalloc. */
export function* vmem_alloc(k: Kernel, cpu: Cpu, vm: number, size: bigint, flags: number): Task<{ error: number; addr: bigint }> {
  const strat = flags & VMEM_FITMASK;
  flags &= VMEM_FLAGS;
  MPASS(cpu, size > 0n, 'size > 0', 1120);
  MPASS(cpu, strat === M_BESTFIT || strat === M_FIRSTFIT || strat === M_NEXTFIT, 'strat == M_BESTFIT || strat == M_FIRSTFIT', 1121);
  if (size <= ld64(cpu, vm + vmem.vm_qcache_max)) {
    opEnter(k, cpu, 'vmem.qcache');
    const qc = vm + vmem.vm_qcache + Number((size - 1n) >> quantumShift(cpu, vm)) * qcache.sizeof;
    const item = yield* uma_zalloc(k, cpu, qcZone(k, cpu, qc), (flags & ~M_WAITOK) | M_NOWAIT);
    if (item !== 0) {
      opLeave(k, cpu);
      return { error: 0, addr: itemToAddr(item) };
    }
    const r = yield* vmem_xalloc(k, cpu, vm, size, 0n, 0n, 0n, VMEM_ADDR_MIN, VMEM_ADDR_MAX, flags);
    opLeave(k, cpu);
    return r;
  }
  return yield* vmem_xalloc(k, cpu, vm, size, 0n, 0n, 0n, VMEM_ADDR_MIN, VMEM_ADDR_MAX, flags);
}

/** vmem_xalloc: a segment of size0 (rounded to the quantum) meeting the restrictions. */
export function* vmem_xalloc(
  k: Kernel, cpu: Cpu, vm: number, size0: bigint, align: bigint, phase: bigint, nocross: bigint, minaddr: bigint, maxaddr: bigint,
  flags: number,
): Task<{ error: number; addr: bigint }> {
  opEnter(k, cpu, 'vmem.xalloc');
  const size = vmem_roundup_size(cpu, vm, size0);
  flags &= VMEM_FLAGS;
  let strat = flags & VMEM_FITMASK;
  const mask = ld64(cpu, vm + vmem.vm_quantum_mask);
  cpu.work(20);
  MPASS(cpu, size0 > 0n, 'size0 > 0', 1159);
  MPASS(cpu, size > 0n, 'size > 0', 1160);
  MPASS(cpu, strat === M_BESTFIT || strat === M_FIRSTFIT || strat === M_NEXTFIT, 'strat == M_BESTFIT || strat == M_FIRSTFIT', 1161);
  MPASS(cpu, (flags & (M_NOWAIT | M_WAITOK)) !== (M_NOWAIT | M_WAITOK), '(flags & (M_NOWAIT|M_WAITOK)) != (M_NOWAIT|M_WAITOK)', 1162);
  MPASS(cpu, (align & mask) === 0n, '(align & vm->vm_quantum_mask) == 0', 1165);
  MPASS(cpu, (align & (align - 1n)) === 0n, '(align & (align - 1)) == 0', 1166);
  MPASS(cpu, (phase & mask) === 0n, '(phase & vm->vm_quantum_mask) == 0', 1167);
  MPASS(cpu, (nocross & mask) === 0n, '(nocross & vm->vm_quantum_mask) == 0', 1168);
  MPASS(cpu, (nocross & (nocross - 1n)) === 0n, '(nocross & (nocross - 1)) == 0', 1169);
  MPASS(cpu, (align === 0n && phase === 0n) || phase < align, '(align == 0 && phase == 0) || phase < align', 1170);
  MPASS(cpu, nocross === 0n || nocross >= size, 'nocross == 0 || nocross >= size', 1171);
  MPASS(cpu, minaddr <= maxaddr, 'minaddr <= maxaddr', 1172);
  MPASS(cpu, !VMEM_CROSS_P(phase, (phase + size - 1n) & U64, nocross), '!VMEM_CROSS_P(phase, phase + size - 1, nocross)', 1173);
  if (strat === M_NEXTFIT) {
    MPASS(cpu, minaddr === VMEM_ADDR_MIN && maxaddr === VMEM_ADDR_MAX, 'minaddr == VMEM_ADDR_MIN && maxaddr == VMEM_ADDR_MAX', 1174);
  }
  if (align === 0n) align = mask + 1n;
  if (strat === M_NEXTFIT) {
    const r = yield* vmem_xalloc_nextfit(k, cpu, vm, size, align, phase, nocross, flags);
    opLeave(k, cpu);
    return r;
  }
  const end = vm + vmem.vm_freelist + VMEM_MAXORDER * 8;
  let first = bt_freehead_toalloc(cpu, vm, size, strat);
  let error = 0;
  let addr = 0n;
  yield* VMEM_LOCK(k, cpu, vm);
  search: for (;;) {
    if (cpu.load32(vm + vmem.vm_nfreetags) < BT_MAXALLOC && (yield* bt_fill(k, cpu, vm, flags)) !== 0) {
      error = ENOMEM;
      break;
    }
    for (let list = first; list < end; list += 8) {
      for (let bt = cpu.loadPtr(list); bt !== 0; bt = cpu.loadPtr(bt + vmem_btag.bt_u_next)) {
        cpu.work(3);
        if (btSize(cpu, bt) >= size) {
          const at = vmem_fit(cpu, bt, size, align, phase, nocross, minaddr, maxaddr);
          if (at !== undefined) {
            addr = at;
            vmem_clip(cpu, vm, bt, at, size);
            break search;
          }
        }
        if (strat === M_FIRSTFIT) break;
      }
    }
    if (strat === M_FIRSTFIT) {
      strat = M_BESTFIT;
      first = bt_freehead_toalloc(cpu, vm, size, strat);
      continue;
    }
    if (!(yield* vmem_try_fetch(k, cpu, vm, size, align, flags))) {
      error = ENOMEM;
      break;
    }
  }
  yield* VMEM_UNLOCK(k, cpu, vm);
  if (error !== 0 && (flags & M_NOWAIT) === 0) panic(cpu, 'failed to allocate waiting allocation\n');
  opLeave(k, cpu);
  return { error, addr };
}

/** vmem_free: to the quantum cache when size <= vm_qcache_max, else vmem_xfree. */
export function* vmem_free(k: Kernel, cpu: Cpu, vm: number, addr: bigint, size: bigint): Task {
  MPASS(cpu, size > 0n, 'size > 0', 1269);
  if (size <= ld64(cpu, vm + vmem.vm_qcache_max) && addr >= VMEM_ADDR_QCACHE_MIN) {
    opEnter(k, cpu, 'vmem.qcache');
    const qc = vm + vmem.vm_qcache + Number((size - 1n) >> quantumShift(cpu, vm)) * qcache.sizeof;
    const item = addrToItem(addr);
    if (item === 0) panic(cpu, `vmem_free: 0x${addr.toString(16)} cannot be a quantum-cache item`);
    yield* uma_zfree(k, cpu, qcZone(k, cpu, qc), item);
    opLeave(k, cpu);
  } else {
    yield* vmem_xfree(k, cpu, vm, addr, size);
  }
}

/** vmem_xfree: the busy segment at addr freed and coalesced with its free neighbours. */
export function* vmem_xfree(k: Kernel, cpu: Cpu, vm: number, addr: bigint, size: bigint): Task {
  opEnter(k, cpu, 'vmem.xfree');
  MPASS(cpu, size > 0n, 'size > 0', 1285);
  yield* VMEM_LOCK(k, cpu, vm);
  const bt = bt_lookupbusy(cpu, vm, addr);
  MPASS(cpu, bt !== 0, 'bt != NULL', 1289);
  MPASS(cpu, btStart(cpu, bt) === addr, 'bt->bt_start == addr', 1290);
  const rs = vmem_roundup_size(cpu, vm, size);
  const bsize = btSize(cpu, bt);
  MPASS(cpu, bsize === rs || ((bsize - rs) & U64) <= ld64(cpu, vm + vmem.vm_quantum_mask),
    'bt->bt_size == vmem_roundup_size(vm, size) || bt->bt_size - vmem_roundup_size(vm, size) <= vm->vm_quantum_mask', 1291);
  MPASS(cpu, btType(cpu, bt) === BT_TYPE_BUSY, 'bt->bt_type == BT_TYPE_BUSY', 1293);
  bt_rembusy(cpu, vm, bt);
  cpu.store32(bt + vmem_btag.bt_type, BT_TYPE_FREE);
  let t = TAILQ_NEXT(cpu, bt);
  if (t !== 0 && btType(cpu, t) === BT_TYPE_FREE) {
    MPASS(cpu, BT_END(cpu, bt) < btStart(cpu, t), 'BT_END(bt) < t->bt_start', 1300);
    st64(cpu, bt + vmem_btag.bt_size, btSize(cpu, bt) + btSize(cpu, t));
    bt_remfree(cpu, t);
    bt_remseg(cpu, vm, t);
  }
  t = TAILQ_PREV(cpu, bt);
  if (t !== 0 && btType(cpu, t) === BT_TYPE_FREE) {
    MPASS(cpu, BT_END(cpu, t) < btStart(cpu, bt), 'BT_END(t) < bt->bt_start', 1307);
    st64(cpu, bt + vmem_btag.bt_size, btSize(cpu, bt) + btSize(cpu, t));
    st64(cpu, bt + vmem_btag.bt_start, btStart(cpu, t));
    bt_remfree(cpu, t);
    bt_remseg(cpu, vm, t);
  }
  if (!(yield* vmem_try_release(k, cpu, vm, bt, false))) {
    bt_insfree(cpu, vm, bt);
    yield* VMEM_CONDVAR_BROADCAST(k, cpu, vm);
    yield* bt_freetrim(k, cpu, vm, BT_MAXFREE);
  }
  opLeave(k, cpu);
}

/** vmem_add: a static span [addr, addr + size). */
export function* vmem_add(k: Kernel, cpu: Cpu, vm: number, addr: bigint, size: bigint, flags: number): Task<number> {
  flags &= VMEM_FLAGS;
  let error = 0;
  yield* VMEM_LOCK(k, cpu, vm);
  if (cpu.load32(vm + vmem.vm_nfreetags) >= BT_MAXALLOC || (yield* bt_fill(k, cpu, vm, flags)) === 0) {
    vmem_add1(cpu, vm, addr, size, BT_TYPE_SPAN_STATIC);
  } else {
    error = ENOMEM;
  }
  yield* VMEM_UNLOCK(k, cpu, vm);
  return error;
}

/** vmem_size: VMEM_ALLOC, VMEM_FREE, both, or VMEM_MAXFREE (the largest free list's size class). */
export function* vmem_size(k: Kernel, cpu: Cpu, vm: number, typemask: number): Task<bigint> {
  switch (typemask) {
    case VMEM_ALLOC:
      return ld64(cpu, vm + vmem.vm_inuse);
    case VMEM_FREE:
      return ld64(cpu, vm + vmem.vm_size) - ld64(cpu, vm + vmem.vm_inuse);
    case VMEM_FREE | VMEM_ALLOC:
      return ld64(cpu, vm + vmem.vm_size);
    case VMEM_MAXFREE: {
      yield* VMEM_LOCK(k, cpu, vm);
      for (let i = VMEM_MAXORDER - 1; i >= 0; i--) {
        if (cpu.loadPtr(vm + vmem.vm_freelist + 8 * i) === 0) continue;
        yield* VMEM_UNLOCK(k, cpu, vm);
        return ORDER2SIZE(i) << quantumShift(cpu, vm);
      }
      yield* VMEM_UNLOCK(k, cpu, vm);
      return 0n;
    }
    default:
      return panic(cpu, 'vmem_size');
  }
}

/** vmem_xalloc/vmem_xfree as an import/release pair: a child arena on a parent (arg). */
export function vmemImportXalloc(k: Kernel): { importfn: VmemImport; releasefn: VmemRelease } {
  let pair = importPairs.get(k);
  if (pair === undefined) {
    pair = importPairOf(k);
    importPairs.set(k, pair);
  }
  return pair;
}

function importPairOf(k: Kernel): { importfn: VmemImport; releasefn: VmemRelease } {
  return {
    importfn: (cpu, arg, size, flags) => vmem_xalloc(k, cpu, arg, size, 0n, 0n, 0n, VMEM_ADDR_MIN, VMEM_ADDR_MAX, flags),
    releasefn: (cpu, arg, addr, size) => vmem_xfree(k, cpu, arg, addr, size),
  };
}

/** Whether vmem_startup has run on this kernel (boot may run it one day; callers start it once). */
export function vmem_started(k: Kernel): boolean {
  return states.get(k)?.vmem_bt_zone !== undefined;
}

/**
 * kmemu's child arena: vmem_set_import of `child` on `parent` through vmem_xalloc/vmem_xfree
 * (vmemImportXalloc), importing `import_quantum` at least (default: the child's quantum).
 */
export function* vmemImportFrom(k: Kernel, cpu: Cpu, child: number, parent: number, import_quantum?: bigint): Task {
  const { importfn, releasefn } = vmemImportXalloc(k);
  const q = import_quantum ?? 1n << BigInt(cpu.load32(child + vmem.vm_quantum_shift));
  yield* vmem_set_import(k, cpu, child, importfn, releasefn, parent, q);
}

// --- Debugging ---------------------------------------------------------------------------------

function bt_type_string(type: number): string {
  switch (type) {
    case BT_TYPE_BUSY:
      return 'busy';
    case BT_TYPE_FREE:
      return 'free';
    case BT_TYPE_SPAN:
      return 'span';
    case BT_TYPE_SPAN_STATIC:
      return 'static span';
    case BT_TYPE_CURSOR:
      return 'cursor';
    default:
      return 'BOGUS';
  }
}

const ptrString = (p: number): string => `0x${(p >= 2 ** 47 ? BigInt(p) | (U64 ^ ((1n << 48n) - 1n)) : BigInt(p)).toString(16)}`;

function bt_dump(cpu: Cpu, bt: number): string {
  const type = btType(cpu, bt);
  return `\t${ptrString(bt)}: ${btStart(cpu, bt).toString(16)} ${btSize(cpu, bt).toString(16)}, ${type}(${bt_type_string(type)})\n`;
}

/** vmem_dump: the segment list, then each non-empty free list, as DDB prints them. */
export function vmem_dump(cpu: Cpu, vm: number): string {
  let out = `vmem ${ptrString(vm)} '${readString(cpu, vm + vmem.vm_name, VMEM_NAME_MAX + 1)}'\n`;
  for (let bt = TAILQ_FIRST(cpu, vm); bt !== 0; bt = TAILQ_NEXT(cpu, bt)) out += bt_dump(cpu, bt);
  for (let i = 0; i < VMEM_MAXORDER; i++) {
    const first = cpu.loadPtr(vm + vmem.vm_freelist + 8 * i);
    if (first === 0) continue;
    out += `freelist[${i}]\n`;
    for (let bt = first; bt !== 0; bt = cpu.loadPtr(bt + vmem_btag.bt_u_next)) out += bt_dump(cpu, bt);
  }
  return out;
}

export const vmem_print = vmem_dump;

/** vmem_whatis: which arena's segment holds addr, one line per arena that has it. */
export function vmem_whatis(k: Kernel, cpu: Cpu, addr: bigint): string {
  const s = started(k, cpu);
  let out = '';
  for (let vm = cpu.loadPtr(s.globals + vmem_globals.vmem_list); vm !== 0; vm = cpu.loadPtr(vm + vmem.vm_alllist_next)) {
    for (let bt = TAILQ_FIRST(cpu, vm); bt !== 0; bt = TAILQ_NEXT(cpu, bt)) {
      const type = btType(cpu, bt);
      if (BT_ISSPAN_P(type) || type === BT_TYPE_CURSOR) continue;
      const start = btStart(cpu, bt);
      if (start <= addr && addr <= BT_END(cpu, bt)) {
        const name = readString(cpu, vm + vmem.vm_name, VMEM_NAME_MAX + 1);
        out += `${hex(addr)} is ${hex(start)}+${addr - start} in VMEM '${name}' (${type === BT_TYPE_BUSY ? 'allocated' : 'free'})\n`;
        break;
      }
    }
  }
  return out;
}

/** vmem_check_sanity: no tag ends before it starts, no two spans or two segments overlap. */
export function vmem_check_sanity(k: Kernel, cpu: Cpu, vm: number): boolean {
  const con = st(k).console;
  for (let bt = TAILQ_FIRST(cpu, vm); bt !== 0; bt = TAILQ_NEXT(cpu, bt)) {
    if (btStart(cpu, bt) > BT_END(cpu, bt)) {
      con.push('corrupted tag', bt_dump(cpu, bt).trimEnd());
      return false;
    }
  }
  for (let bt = TAILQ_FIRST(cpu, vm); bt !== 0; bt = TAILQ_NEXT(cpu, bt)) {
    const type = btType(cpu, bt);
    if (type === BT_TYPE_CURSOR) {
      if (btStart(cpu, bt) !== 0n || btSize(cpu, bt) !== 0n) {
        con.push('corrupted cursor');
        return false;
      }
      continue;
    }
    for (let bt2 = TAILQ_FIRST(cpu, vm); bt2 !== 0; bt2 = TAILQ_NEXT(cpu, bt2)) {
      if (bt === bt2) continue;
      const type2 = btType(cpu, bt2);
      if (type2 === BT_TYPE_CURSOR || BT_ISSPAN_P(type) !== BT_ISSPAN_P(type2)) continue;
      if (btStart(cpu, bt) <= BT_END(cpu, bt2) && btStart(cpu, bt2) <= BT_END(cpu, bt)) {
        con.push('overwrapped tags', bt_dump(cpu, bt).trimEnd(), bt_dump(cpu, bt2).trimEnd());
        return false;
      }
    }
  }
  return true;
}

/** vmem_check (DIAGNOSTIC): panics "insanity vmem %p" when vmem_check_sanity fails. */
export function vmem_check(k: Kernel, cpu: Cpu, vm: number): void {
  if (!vmem_check_sanity(k, cpu, vm)) panic(cpu, `insanity vmem ${ptrString(vm)}`);
}

// --- Views (functional reads for the CLI and tests; they charge cycles like any code) ----------

export interface VmemSeg {
  start: bigint;
  size: bigint;
  type: number;
}

/** The segment list in list order, without the nextfit cursor. */
export function vmemSegments(cpu: Cpu, vm: number): VmemSeg[] {
  const out: VmemSeg[] = [];
  for (let bt = TAILQ_FIRST(cpu, vm); bt !== 0; bt = TAILQ_NEXT(cpu, bt)) {
    const type = btType(cpu, bt);
    if (type !== BT_TYPE_CURSOR) out.push({ start: btStart(cpu, bt), size: btSize(cpu, bt), type });
  }
  return out;
}

/** A u64 field of struct vmem (vm_hashsize, vm_qcache_max, ...). */
export function vmemField(cpu: Cpu, vm: number, field: 'vm_hashsize' | 'vm_qcache_max' | 'vm_inuse' | 'vm_size' | 'vm_limit'): bigint {
  return ld64(cpu, vm + vmem[field]);
}

/** A u32 field of struct vmem. */
export function vmemCount(cpu: Cpu, vm: number, field: 'vm_nbusytag' | 'vm_nfreetags' | 'vm_quantum_shift'): number {
  return cpu.load32(vm + vmem[field]);
}
