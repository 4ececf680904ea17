// The zone allocator.
//
// Models DragonFly BSD sys/vm/vm_zone.c with per-CPU free lists (zitems_pcpu/zfreecnt_pcpu)
// and the zone spinlock (../shared/seeds/dragonfly-vm_zone.c.txt; kernel/UPSTREAM.md §9),
// INVARIANTS on: zalloc, zfree, zget, zinitna, zinit, zbootinit, zdestroy, the ZONE_* flags,
// zone_burst, the sysctls. Free items link through their first longword and carry
// ZENTRY_FREE in their second; nothing else of an item changes (zones are type-stable).
//
// What kmemu adds, per zone (the zone handle says; kernel code on the hot path never reads it
// from memory):
// - `aligned`: the per-CPU state as one cache-line-aligned struct vm_zpcpu { zitems;
//   zfreecnt; } per CPU, as DragonFly later did, instead of upstream's two arrays in the header
//   (where CPUs 0–6's list heads share a line with the zone spinlock, and 16 CPUs' counts
//   share one line).
// - `pcpu: false`: no per-CPU lists; every zalloc and zfree takes the locked path (the
//   baseline `kmemu compare` measures the per-CPU path against).
// Instruction cost: the measured paths charge cpu.work(n) and cpu.branch() at the places the
// C does. n is the instructions gcc 13 -O2 emits for that stretch of a C port of this code
// (zalloc, zfree, the locked-only pair; the call instruction counted with the callee) less the
// accesses the stretch makes here; a branch() is a taken branch of that code (a call, a
// return, a jump gcc lays out as taken). Per-CPU zalloc: 31 instructions, 16 accesses; per-CPU
// zfree: 25 and 15; locked zalloc: 15 and 11 besides spin_lock/spin_unlock; locked zfree: 9
// and 7 besides them.
// Deviations: zinit's zone header comes from kmem_alloc3 (there is no malloc(9) under the
// zone allocator here); zkmvec grows the same way; the zone's name is kept in its header.

import { type Cpu, type Task } from '../../emu/index.js';
import {
  array, crit_enter, crit_exit, embed, type Kernel, lwkt_gettoken, lwkt_reltoken, panic, spin_lock,
  spin_unlock, spinlock, struct, vm_page,
} from '../kern/index.js';
import {
  bzero, KM_KRESERVE, PAGE_SIZE, pmap_kenter, pmap_qremove, round_page, SMP_MAXCPU, VM_ALLOC_INTERRUPT,
  VM_ALLOC_NORMAL, VM_ALLOC_RETRY, VM_ALLOC_SYSTEM, VM_PAGE_BITS_ALL,
} from '../amd64/index.js';

/** sizeof(struct vm_zone) in its upstream layout (checked below). */
const VM_ZONE_SIZEOF = 920;
import { kmem_alloc3, kmem_alloc_pageable, kmem_free } from './vm_kern.js';
import { vm_map_entry_reserve } from './vm_map.js';
import { OBJT_DEFAULT, _vm_object_allocate, vm_object_deallocate } from './vm_object.js';
import { vm_page_alloc, vm_page_busy, vm_page_free, vm_page_lookup, vm_page_unwire, vm_page_wakeup, vm_page_wire } from './vm_page.js';

export const ZONE_INTERRUPT = 0x0001;
export const ZONE_PANICFAIL = 0x0002;
export const ZONE_SPECIAL = 0x0004;
export const ZONE_BOOT = 0x0010;
export const ZONE_USE_RESERVE = 0x0020;
export const ZONE_DESTROYABLE = 0x0040;
/** Free items carry this in their second longword. */
export const ZENTRY_FREE = 0x12342378;
export const ZONE_ROUNDING = 32;
const ZONE_ERROR_INVALID = 0;
const ZONE_ERROR_NOTFREE = 1;
const ZONE_ERROR_ALREADYFREE = 2;
const ZNAME_MAX = 32;

const zoneTail = [
  ['zitems', 'ptr'],
  ['zfreecnt', 'u32'],
  ['zfreemin', 'u32'],
  ['znalloc', 'u32'],
  ['zkva', 'ptr'],
  ['zpagecount', 'u32'],
  ['zpagemax', 'u32'],
  ['zmax', 'u32'],
  ['ztotal', 'u32'],
  ['zsize', 'u32'],
  ['zalloc', 'u32'],
  ['zflags', 'u32'],
  ['zallocflag', 'u32'],
  ['zobj', 'ptr'],
  ['zname', 'ptr'],
  ['zlink_next', 'ptr'], // LIST_ENTRY zlink
  ['zlink_prev', 'ptr'],
  ['zkmvec', 'ptr'],
  ['zkmcur', 'u32'],
  ['zkmmax', 'u32'],
  ['zname_buf', array('u8', ZNAME_MAX)],
] as const;

/** struct vm_zone as upstream lays it out: the per-CPU arrays right after the spinlock. */
export const vm_zone = struct('vm_zone', [
  ['zlock', embed(spinlock)],
  ['zitems_pcpu', array('ptr', SMP_MAXCPU)],
  ['zfreecnt_pcpu', array('u32', SMP_MAXCPU)],
  ...zoneTail,
]);

/** struct vm_zpcpu: one CPU's list, alone in its cache line. */
export const vm_zpcpu = struct('vm_zpcpu', [['zitems', 'ptr'], ['zfreecnt', 'u32']], 64);

/** struct vm_zone with cache-line-aligned per-CPU state. */
export const vm_zone_zpcpu = struct('vm_zone (vm_zpcpu)', [
  ['zlock', embed(spinlock)],
  ['zpcpu', array(embed(vm_zpcpu), SMP_MAXCPU)],
  ...zoneTail,
]);

if (vm_zone.sizeof !== VM_ZONE_SIZEOF) throw new Error(`VM_ZONE_SIZEOF is ${VM_ZONE_SIZEOF}, struct vm_zone is ${vm_zone.sizeof}`);

type TailField = (typeof zoneTail)[number][0] | 'zlock';

/** A zone: its header's address, and how kmemu runs it (see the file header). */
export interface VmZone {
  readonly z: number;
  readonly aligned: boolean;
  readonly pcpu: boolean;
}

export interface ZoneOptions {
  /** Per-CPU state in cache-line-aligned vm_zpcpu slots (default: upstream's arrays). */
  aligned?: boolean;
  /** Per-CPU free lists on (default) or off. */
  pcpu?: boolean;
}

function f(h: VmZone, field: TailField): number {
  return h.z + (h.aligned ? vm_zone_zpcpu : vm_zone)[field];
}

function pcpuItems(h: VmZone, cpu: number): number {
  return h.aligned ? h.z + vm_zone_zpcpu.zpcpu + cpu * vm_zpcpu.sizeof + vm_zpcpu.zitems : h.z + vm_zone.zitems_pcpu + cpu * 8;
}

function pcpuCount(h: VmZone, cpu: number): number {
  return h.aligned ? h.z + vm_zone_zpcpu.zpcpu + cpu * vm_zpcpu.sizeof + vm_zpcpu.zfreecnt : h.z + vm_zone.zfreecnt_pcpu + cpu * 4;
}

function zerror(cpu: Cpu, error: number): never {
  const msg =
    error === ZONE_ERROR_INVALID ? 'zone: invalid zone' : error === ZONE_ERROR_NOTFREE ? 'zone: entry not free' : error === ZONE_ERROR_ALREADYFREE ? 'zone: freeing free entry' : 'zone: invalid error';
  panic(cpu, msg);
}

function add32(cpu: Cpu, va: number, delta: number): void {
  cpu.store32(va, cpu.load32(va) + delta);
}

function zoneName(cpu: Cpu, h: VmZone): string {
  const at = cpu.loadPtr(f(h, 'zname'));
  let s = '';
  for (let i = 0; i < ZNAME_MAX; i++) {
    const c = cpu.load8(at + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * zalloc: an item of the zone. The per-CPU list first; else, under the zone spinlock, a burst
 * of up to zone_burst items moves to the per-CPU list (keeping zfreemin back) and the
 * per-CPU pop is retried; else zget makes more. With per-CPU lists off, the item comes
 * straight off the zone list under the spinlock.
 */
export function* zalloc(k: Kernel, cpu: Cpu, h: VmZone | undefined): Task<number> {
  if (h === undefined || h.z === 0) zerror(cpu, ZONE_ERROR_INVALID);
  const L = k.label;
  for (;;) {
    if (h.pcpu) {
      cpu.enter(L['zone.alloc.pcpu']);
      const cnt = pcpuCount(h, cpu.id);
      const avail = cpu.load32(cnt);
      cpu.work(9); // call, prologue, mycpu, z == NULL, gd_cpuid, test and branch
      if (avail > 0) {
        crit_enter(k, cpu);
        const n = cpu.load32(cnt);
        cpu.work(3); // gd_cpuid, index, test
        cpu.branch(); // jg to the pop, laid out out of line
        if (n > 0) {
          const items = pcpuItems(h, cpu.id);
          const item = cpu.loadPtr(items);
          if (item === 0) panic(cpu, 'zitems_pcpu unexpectedly NULL');
          if (cpu.load64(item + 8) !== ZENTRY_FREE) zerror(cpu, ZONE_ERROR_NOTFREE);
          cpu.store64(item + 8, 0);
          cpu.storePtr(items, cpu.loadPtr(item));
          cpu.store32(cnt, n - 1);
          add32(cpu, f(h, 'znalloc'), 1);
          crit_exit(k, cpu);
          cpu.work(3); // the NOTFREE check's branch, the decrement, the return value
          cpu.branch(); // ret
          cpu.completeOp(L['zone.alloc.pcpu']);
          cpu.leave();
          return item;
        }
        crit_exit(k, cpu);
      }
      cpu.leave();
    }
    cpu.enter(L['zone.alloc.locked']);
    if (!h.pcpu) cpu.work(1); // call
    yield* spin_lock(k, cpu, f(h, 'zlock'));
    if (cpu.load32(f(h, 'zfreecnt')) > cpu.load32(f(h, 'zfreemin'))) {
      if (!h.pcpu) {
        cpu.work(1); // jle
        const item = popLocked(cpu, h, true);
        add32(cpu, f(h, 'znalloc'), 1);
        cpu.work(2); // the NOTFREE check's branch, the decrement
        yield* spin_unlock(k, cpu, f(h, 'zlock'));
        cpu.work(1); // return value
        cpu.branch(); // ret
        cpu.completeOp(L['zone.alloc.locked']);
        cpu.leave();
        return item;
      }
      const items = pcpuItems(h, cpu.id);
      const cnt = pcpuCount(h, cpu.id);
      let n = cpu.load32(k.zone_burst);
      do {
        const item = popLocked(cpu, h, false);
        cpu.storePtr(item, cpu.loadPtr(items));
        cpu.storePtr(items, item);
        add32(cpu, cnt, 1);
      } while (--n > 0 && cpu.load32(f(h, 'zfreecnt')) > cpu.load32(f(h, 'zfreemin')));
      yield* spin_unlock(k, cpu, f(h, 'zlock'));
      cpu.leave();
      continue;
    }
    yield* spin_unlock(k, cpu, f(h, 'zlock'));
    cpu.enter(L['zone.alloc.zget']);
    const item = yield* zget(k, cpu, h);
    if (item === 0 && (cpu.load32(f(h, 'zflags')) & ZONE_PANICFAIL) !== 0) panic(cpu, `zalloc(${zoneName(cpu, h)}) failed`);
    cpu.completeOp(L['zone.alloc.zget']);
    cpu.leave();
    cpu.leave();
    return item;
  }
}

/**
 * Pops the zone list's head (the spinlock held), checking it is marked free; an item handed
 * out (rather than moved to a per-CPU list) loses the mark.
 */
function popLocked(cpu: Cpu, h: VmZone, handOut: boolean): number {
  const item = cpu.loadPtr(f(h, 'zitems'));
  if (item === 0) panic(cpu, 'zitems unexpectedly NULL');
  if (cpu.load64(item + 8) !== ZENTRY_FREE) zerror(cpu, ZONE_ERROR_NOTFREE);
  cpu.storePtr(f(h, 'zitems'), cpu.loadPtr(item));
  add32(cpu, f(h, 'zfreecnt'), -1);
  if (handOut) cpu.store64(item + 8, 0);
  return item;
}

/**
 * zfree: returns an item to the per-CPU list while it holds fewer than zmax / ncpus / 16
 * (at least 64) items, else to the zone list under the spinlock.
 */
export function* zfree(k: Kernel, cpu: Cpu, h: VmZone, item: number): Task {
  const L = k.label;
  // The limit check is the per-CPU path's (on the locked-only baseline, the locked path's).
  cpu.enter(h.pcpu ? L['zone.free.pcpu'] : L['zone.free.locked']);
  if (h.pcpu) {
    let zmax = cpu.load32(f(h, 'zmax'));
    cpu.work(6); // call, argument moves, mycpu, the zmax test and branch
    if (zmax !== 0) {
      zmax = Math.floor(Math.floor(zmax / cpu.load32(k.ncpus_va)) / 16);
      cpu.work(8); // cltd, idivl, the rounding shift, the clamp
    } else {
      cpu.branch(); // je past the division
    }
    if (zmax < 64) zmax = 64;
    const cnt = pcpuCount(h, cpu.id);
    if (cpu.load32(cnt) < zmax) {
      cpu.work(3); // gd_cpuid, compare, branch (the increment of crit_enter is counted there)
      crit_enter(k, cpu);
      const items = pcpuItems(h, cpu.id);
      cpu.storePtr(item, cpu.loadPtr(items));
      if (cpu.load64(item + 8) === ZENTRY_FREE) zerror(cpu, ZONE_ERROR_ALREADYFREE);
      cpu.store64(item + 8, ZENTRY_FREE);
      cpu.storePtr(items, item);
      cpu.store32(cnt, cpu.load32(cnt) + 1);
      crit_exit(k, cpu);
      cpu.work(1); // the ALREADYFREE check's branch
      cpu.branch(); // ret
      cpu.completeOp(L['zone.free.pcpu']);
      cpu.leave();
      return;
    }
    cpu.enter(L['zone.free.locked']);
  } else {
    cpu.work(1); // call
  }
  yield* spin_lock(k, cpu, f(h, 'zlock'));
  cpu.storePtr(item, cpu.loadPtr(f(h, 'zitems')));
  if (cpu.load64(item + 8) === ZENTRY_FREE) zerror(cpu, ZONE_ERROR_ALREADYFREE);
  cpu.store64(item + 8, ZENTRY_FREE);
  cpu.storePtr(f(h, 'zitems'), item);
  add32(cpu, f(h, 'zfreecnt'), 1);
  cpu.work(1); // the ALREADYFREE check's branch
  yield* spin_unlock(k, cpu, f(h, 'zlock'));
  cpu.branch(); // ret
  cpu.completeOp(L['zone.free.locked']);
  if (h.pcpu) cpu.leave();
  cpu.leave();
}

/**
 * zget: more items for the zone. Interrupt zones fill their reserved KVA with new pages
 * (vm_page_alloc, pmap_kenter); the special (map-entry) zone uses kmem_alloc3 with the hidden
 * entry reserve; others kmem_alloc3. Returns one item and puts the rest on the zone list; 0
 * when nothing could be had.
 */
function* zget(k: Kernel, cpu: Cpu, h: VmZone): Task<number> {
  const flags = cpu.load32(f(h, 'zflags'));
  const zsize = cpu.load32(f(h, 'zsize'));
  let item: number;
  let nitems: number;
  if ((flags & ZONE_INTERRUPT) !== 0) {
    const zobj = cpu.loadPtr(f(h, 'zobj'));
    const savezpc = cpu.load32(f(h, 'zpagecount'));
    let noffset = savezpc * PAGE_SIZE;
    noffset -= noffset % zsize;
    const zalloc = cpu.load32(f(h, 'zalloc'));
    const zpagemax = cpu.load32(f(h, 'zpagemax'));
    const zpagecount = Math.min(savezpc + zalloc, zpagemax);
    cpu.store32(f(h, 'zpagecount'), zpagecount);
    item = cpu.loadPtr(f(h, 'zkva')) + noffset;
    const npages = zpagecount - savezpc;
    nitems = Math.floor((zpagecount * PAGE_SIZE - noffset) / zsize);
    add32(cpu, k.zone_kmem_pages, npages);
    const zallocflag = cpu.load32(f(h, 'zallocflag'));
    for (let i = 0; i < npages; i++) {
      const m = yield* vm_page_alloc(k, cpu, zobj, savezpc + i, zallocflag);
      if (m === 0) panic(cpu, 'zget: KKASSERT(m != NULL) failed');
      cpu.store8(m + vm_page.valid, VM_PAGE_BITS_ALL);
      vm_page_wire(k, cpu, m);
      yield* vm_page_wakeup(k, cpu, m);
      const zkva = cpu.loadPtr(f(h, 'zkva')) + (savezpc + i) * PAGE_SIZE;
      yield* pmap_kenter(k, cpu, zkva, cpu.load64(m + vm_page.phys_addr));
      bzero(cpu, zkva, PAGE_SIZE);
    }
    if (npages === 0) nitems = 0;
  } else {
    const nbytes = cpu.load32(f(h, 'zalloc')) * PAGE_SIZE;
    item = yield* kmem_alloc3(k, cpu, k.kernel_map, nbytes, (flags & ZONE_SPECIAL) !== 0 ? KM_KRESERVE : 0);
    nitems = 0;
    if (item !== 0) {
      add32(cpu, k.zone_kern_pages, nbytes / PAGE_SIZE);
      bzero(cpu, item, nbytes);
      nitems = Math.floor(nbytes / zsize);
      if ((flags & ZONE_DESTROYABLE) !== 0) yield* zkmvecAppend(k, cpu, h, item);
    }
  }
  yield* spin_lock(k, cpu, f(h, 'zlock'));
  add32(cpu, f(h, 'ztotal'), nitems);
  if (nitems !== 0) {
    // Chain all but the last onto the zone list; the last is returned.
    for (let i = 0; i < nitems - 1; i++) {
      cpu.storePtr(item, cpu.loadPtr(f(h, 'zitems')));
      cpu.store64(item + 8, ZENTRY_FREE);
      cpu.storePtr(f(h, 'zitems'), item);
      item += zsize;
    }
    add32(cpu, f(h, 'zfreecnt'), nitems - 1);
    add32(cpu, f(h, 'znalloc'), 1);
  } else if (cpu.load32(f(h, 'zfreecnt')) > 0) {
    item = popLocked(cpu, h, true);
    add32(cpu, f(h, 'znalloc'), 1);
  } else {
    item = 0;
  }
  yield* spin_unlock(k, cpu, f(h, 'zlock'));
  if ((flags & ZONE_SPECIAL) !== 0) yield* vm_map_entry_reserve(k, cpu, 0);
  return item;
}

/** zkmvec[zkmcur++] = block, doubling the vector (krealloc) when full. */
function* zkmvecAppend(k: Kernel, cpu: Cpu, h: VmZone, block: number): Task {
  const cur = cpu.load32(f(h, 'zkmcur'));
  let max = cpu.load32(f(h, 'zkmmax'));
  let vec = cpu.loadPtr(f(h, 'zkmvec'));
  if (cur === max) {
    const nmax = max === 0 ? 1 : max * 2;
    const nvec = yield* kmem_alloc3(k, cpu, k.kernel_map, round_page(nmax * 8), 0);
    for (let i = 0; i < cur; i++) cpu.storePtr(nvec + i * 8, cpu.loadPtr(vec + i * 8));
    if (vec !== 0) yield* kmem_free(k, cpu, k.kernel_map, vec, round_page(max * 8));
    vec = nvec;
    max = nmax;
    cpu.storePtr(f(h, 'zkmvec'), vec);
    cpu.store32(f(h, 'zkmmax'), max);
  }
  cpu.storePtr(vec + cur * 8, block);
  cpu.store32(f(h, 'zkmcur'), cur + 1);
}

function* zlistInsert(k: Kernel, cpu: Cpu, h: VmZone): Task {
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  const first = cpu.loadPtr(k.zlist);
  cpu.storePtr(f(h, 'zlink_next'), first);
  if (first !== 0) cpu.storePtr(first + (k.zones.get(first)?.aligned ? vm_zone_zpcpu : vm_zone).zlink_prev, f(h, 'zlink_next'));
  cpu.storePtr(k.zlist, h.z);
  cpu.storePtr(f(h, 'zlink_prev'), k.zlist);
  k.zones.set(h.z, h);
  yield* lwkt_reltoken(k, cpu, k.vm_token);
}

function* zlistRemove(k: Kernel, cpu: Cpu, h: VmZone): Task {
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  const next = cpu.loadPtr(f(h, 'zlink_next'));
  const prevLink = cpu.loadPtr(f(h, 'zlink_prev'));
  if (next !== 0) cpu.storePtr(next + (k.zones.get(next)?.aligned ? vm_zone_zpcpu : vm_zone).zlink_prev, prevLink);
  cpu.storePtr(prevLink, next);
  k.zones.delete(h.z);
  yield* lwkt_reltoken(k, cpu, k.vm_token);
}

function setName(cpu: Cpu, h: VmZone, name: string): void {
  const buf = f(h, 'zname_buf');
  const n = Math.min(name.length, ZNAME_MAX - 1);
  for (let i = 0; i < n; i++) cpu.store8(buf + i, name.charCodeAt(i) & 0xff);
  cpu.store8(buf + n, 0);
  cpu.storePtr(f(h, 'zname'), buf);
}

function clearPcpu(cpu: Cpu, h: VmZone): void {
  for (let c = 0; c < SMP_MAXCPU; c++) {
    cpu.storePtr(pcpuItems(h, c), 0);
    cpu.store32(pcpuCount(h, c), 0);
  }
}

/**
 * zinitna: sets up a zone whose header exists (and may have been zbootinit'ed). Interrupt
 * zones reserve their KVA up front and are populated at once. Returns 1, or 0 when the KVA
 * cannot be had.
 */
export function* zinitna(k: Kernel, cpu: Cpu, h: VmZone, obj: number, name: string | undefined, size: number, nentries: number, flags: number, zallocPages: number): Task<number> {
  let zflags = cpu.load32(f(h, 'zflags'));
  if ((zflags & ZONE_DESTROYABLE) !== 0) panic(cpu, "zinitna: can't create destroyable zone");
  // Upstream divides by the item size in zget (a trap for 0); here that would loop forever.
  if ((zflags & ZONE_BOOT) === 0 && size === 0) panic(cpu, `zinitna: zone ${name ?? ''} of 0-byte items`);
  if ((zflags & ZONE_BOOT) === 0) {
    cpu.store32(f(h, 'zsize'), Math.ceil(size / ZONE_ROUNDING) * ZONE_ROUNDING);
    cpu.store64(f(h, 'zlock'), 0);
    cpu.store32(f(h, 'zfreecnt'), 0);
    cpu.store32(f(h, 'ztotal'), 0);
    cpu.store32(f(h, 'zmax'), 0);
    setName(cpu, h, name ?? '');
    cpu.store32(f(h, 'znalloc'), 0);
    cpu.storePtr(f(h, 'zitems'), 0);
    yield* zlistInsert(k, cpu, h);
    clearPcpu(cpu, h);
  }
  cpu.storePtr(f(h, 'zkmvec'), 0);
  cpu.store32(f(h, 'zkmcur'), 0);
  cpu.store32(f(h, 'zkmmax'), 0);
  zflags |= flags;
  cpu.store32(f(h, 'zflags'), zflags);
  const zsize = cpu.load32(f(h, 'zsize'));
  if ((zflags & ZONE_INTERRUPT) !== 0) {
    const totsize = round_page(zsize * nentries);
    cpu.store64(k.zone_kmem_kvaspace, cpu.load64(k.zone_kmem_kvaspace) + totsize);
    const zkva = yield* kmem_alloc_pageable(k, cpu, k.kernel_map, totsize);
    cpu.storePtr(f(h, 'zkva'), zkva);
    if (zkva === 0) {
      yield* zlistRemove(k, cpu, h);
      return 0;
    }
    cpu.store32(f(h, 'zpagemax'), totsize / PAGE_SIZE);
    const zobj = obj !== 0 ? obj : yield* kmem_alloc3(k, cpu, k.kernel_map, PAGE_SIZE, 0);
    _vm_object_allocate(cpu, OBJT_DEFAULT, totsize / PAGE_SIZE, zobj);
    cpu.storePtr(f(h, 'zobj'), zobj);
    cpu.store32(f(h, 'zallocflag'), VM_ALLOC_SYSTEM | VM_ALLOC_INTERRUPT | VM_ALLOC_NORMAL | VM_ALLOC_RETRY);
    cpu.store32(f(h, 'zmax'), cpu.load32(f(h, 'zmax')) + nentries);
  } else {
    cpu.store32(f(h, 'zallocflag'), VM_ALLOC_NORMAL | VM_ALLOC_SYSTEM);
    cpu.store32(f(h, 'zmax'), 0);
  }
  cpu.store32(f(h, 'zfreemin'), zsize > PAGE_SIZE ? 1 : Math.floor(PAGE_SIZE / zsize));
  cpu.store32(f(h, 'zpagecount'), 0);
  cpu.store32(f(h, 'zalloc'), zallocPages !== 0 ? zallocPages : 1);
  if ((zflags & ZONE_INTERRUPT) !== 0) {
    const buf = yield* zget(k, cpu, h);
    yield* zfree(k, cpu, h, buf);
  }
  return 1;
}

/**
 * zinit: a new zone with its header allocated here. ZONE_DESTROYABLE zones keep a vector of
 * their blocks so zdestroy can free them. Returns undefined when the zone cannot be set up.
 */
export function* zinit(k: Kernel, cpu: Cpu, name: string, size: number, nentries: number, flags: number, zallocPages: number, opts: ZoneOptions = {}): Task<VmZone | undefined> {
  const aligned = opts.aligned ?? false;
  const hdrSize = round_page((aligned ? vm_zone_zpcpu : vm_zone).sizeof);
  const z = yield* kmem_alloc3(k, cpu, k.kernel_map, hdrSize, 0);
  if (z === 0) return undefined;
  const h: VmZone = { z, aligned, pcpu: opts.pcpu ?? true };
  cpu.store32(f(h, 'zflags'), 0);
  if ((yield* zinitna(k, cpu, h, 0, name, size, nentries, flags & ~ZONE_DESTROYABLE, zallocPages)) === 0) {
    yield* kmem_free(k, cpu, k.kernel_map, z, hdrSize);
    return undefined;
  }
  if ((flags & ZONE_DESTROYABLE) !== 0) cpu.store32(f(h, 'zflags'), cpu.load32(f(h, 'zflags')) | ZONE_DESTROYABLE);
  return h;
}

/** zbootinit: a zone over `nitems` static items, before the VM can allocate. */
export function* zbootinit(k: Kernel, cpu: Cpu, h: VmZone, name: string, size: number, item: number, nitems: number): Task {
  clearPcpu(cpu, h);
  setName(cpu, h, name);
  cpu.store32(f(h, 'zsize'), size);
  cpu.store32(f(h, 'zpagemax'), 0);
  cpu.storePtr(f(h, 'zobj'), 0);
  cpu.store32(f(h, 'zflags'), ZONE_BOOT);
  cpu.store32(f(h, 'zfreemin'), 0);
  cpu.store32(f(h, 'zallocflag'), 0);
  cpu.store32(f(h, 'zpagecount'), 0);
  cpu.store32(f(h, 'zalloc'), 0);
  cpu.store32(f(h, 'znalloc'), 0);
  cpu.store64(f(h, 'zlock'), 0);
  bzero(cpu, item, nitems * size);
  cpu.storePtr(f(h, 'zitems'), 0);
  for (let i = 0; i < nitems; i++) {
    cpu.storePtr(item, cpu.loadPtr(f(h, 'zitems')));
    cpu.store64(item + 8, ZENTRY_FREE);
    cpu.storePtr(f(h, 'zitems'), item);
    item += size;
  }
  cpu.store32(f(h, 'zfreecnt'), nitems);
  cpu.store32(f(h, 'zmax'), nitems);
  cpu.store32(f(h, 'ztotal'), nitems);
  yield* zlistInsert(k, cpu, h);
}

/** zdestroy: frees everything a destroyable zone owns, and the zone. */
export function* zdestroy(k: Kernel, cpu: Cpu, h: VmZone | undefined): Task {
  if (h === undefined || h.z === 0) panic(cpu, 'zdestroy: null zone');
  const flags = cpu.load32(f(h, 'zflags'));
  if ((flags & ZONE_DESTROYABLE) === 0) panic(cpu, 'zdestroy: undestroyable zone');
  yield* zlistRemove(k, cpu, h);
  if ((flags & ZONE_INTERRUPT) !== 0) {
    const zkva = cpu.loadPtr(f(h, 'zkva'));
    const zpagemax = cpu.load32(f(h, 'zpagemax'));
    const zpagecount = cpu.load32(f(h, 'zpagecount'));
    const zobj = cpu.loadPtr(f(h, 'zobj'));
    yield* pmap_qremove(k, cpu, zkva, zpagemax);
    for (let i = 0; i < zpagecount; i++) {
      const m = vm_page_lookup(k, cpu, zobj, i);
      vm_page_busy(cpu, m);
      vm_page_unwire(k, cpu, m, false);
      yield* vm_page_free(k, cpu, m);
    }
    yield* kmem_free(k, cpu, k.kernel_map, zkva, zpagemax * PAGE_SIZE);
    cpu.store64(k.zone_kmem_kvaspace, cpu.load64(k.zone_kmem_kvaspace) - zpagemax * PAGE_SIZE);
    vm_object_deallocate(cpu, zobj);
    add32(cpu, k.zone_kmem_pages, -zpagecount);
  } else {
    const vec = cpu.loadPtr(f(h, 'zkmvec'));
    const zalloc = cpu.load32(f(h, 'zalloc'));
    const cur = cpu.load32(f(h, 'zkmcur'));
    for (let i = 0; i < cur; i++) {
      yield* kmem_free(k, cpu, k.kernel_map, cpu.loadPtr(vec + i * 8), zalloc * PAGE_SIZE);
      add32(cpu, k.zone_kern_pages, -zalloc);
    }
    if (vec !== 0) yield* kmem_free(k, cpu, k.kernel_map, vec, round_page(cpu.load32(f(h, 'zkmmax')) * 8));
  }
  yield* kmem_free(k, cpu, k.kernel_map, h.z, round_page((h.aligned ? vm_zone_zpcpu : vm_zone).sizeof));
}

/** The map-entry zone's handle (upstream layout, per-CPU lists on). */
export function mapentzone(k: Kernel): VmZone {
  return k.zones.get(k.mapentzone_store) ?? { z: k.mapentzone_store, aligned: false, pcpu: true };
}

// --- sysctl -------------------------------------------------------------------------------

export interface ZoneStats {
  name: string;
  size: number;
  limit: number;
  used: number;
  free: number;
  requests: number;
}

/** Each zone's figures as sysctl_vm_zone computes them, read functionally, in list order. */
export function zoneStats(k: Kernel): ZoneStats[] {
  const out: ZoneStats[] = [];
  for (let z = k.peekPtr(k.zlist); z !== 0; ) {
    const h = k.zones.get(z) ?? { z, aligned: false, pcpu: true };
    const name = k.peekString(k.peekPtr(f(h, 'zname')), ZNAME_MAX);
    let free = k.peek32(f(h, 'zfreecnt'));
    for (let c = 0; c < k.ncpus; c++) free += k.peek32(pcpuCount(h, c));
    out.push({ name, size: k.peek32(f(h, 'zsize')), limit: k.peek32(f(h, 'zmax')), used: k.peek32(f(h, 'ztotal')) - free, free, requests: k.peek32(f(h, 'znalloc')) });
    z = k.peekPtr(f(h, 'zlink_next'));
  }
  return out;
}

const pad = (n: number, width: number) => String(n >>> 0).padStart(width, '0');

/** sysctl vm.zone, byte for byte as sysctl_vm_zone prints it. */
export function sysctl_vm_zone(k: Kernel): string {
  let s = '\nITEM            SIZE     LIMIT    USED    FREE  REQUESTS\n';
  const zones = zoneStats(k);
  zones.forEach((z, i) => {
    const len = Math.min(z.name.length, 13);
    const tmpname = (z.name.slice(0, len) + ':').padEnd(13, ' ');
    s += `${i === 0 ? '\n' : ''}${tmpname} ${pad(z.size, 6)}, ${pad(z.limit, 8)}, ${pad(z.used, 6)}, ${pad(z.free, 6)}, ${pad(z.requests, 8)}${i === zones.length - 1 ? '' : '\n'}`;
  });
  return s;
}
