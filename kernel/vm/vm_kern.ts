// Kernel memory management: the kernel's own virtual memory in kernel_map and its submaps.
//
// Models DragonFly BSD sys/vm/vm_kern.c (../shared/seeds/dragonfly-vm_kern.c.txt,
// kernel/UPSTREAM.md §6), every function: kmem_alloc_pageable, kmem_alloc_nofault,
// kmem_alloc3 (wired, zero-filled, KM_KRESERVE), kmem_free, kmem_suballoc, kmem_alloc_wait,
// kmem_free_wakeup, kmem_init, and the vm.kvm_size / vm.kvm_free sysctls. Return values and
// panics are upstream's: 0 when no space is found, panic("kmem_suballoc") when a submap cannot
// be carved. Deviation: vm_map_wire is given KM_KRESERVE through kmflags, as R1 does.
//
// With vm.kmem_backend=vmem (kern/kern_environment.ts) also FreeBSD 10–11's arena side of
// sys/vm/vm_kern.c and vm_init.c (r254025, 2013, to 11.x): kva_import (kernel_arena's import
// from kernel_map, KVA_QUANTUM at a time), kva_alloc / kva_free, kmem_malloc, kmem_back,
// kmem_unback and kmem_free on kernel_arena and kmem_arena. The cutout of kernel_map that
// kmem_init enters at KERNBASE ([KERNBASE, virtual_start): the kernel image and bootstrap
// tables) is why kernel_arena never holds it: its spans are what vm_map_find found free.
// Deviations:
// - kmem_free keeps both upstream signatures: given kernel_arena or kmem_arena (a struct vmem
//   of this kernel) it is FreeBSD's (kmem_unback, vmem_free), given a map DragonFly's.
// - VM_OBJECT_WLOCK is vm_token, the lock DragonFly's kmem_alloc3 holds over its pages.
// - VMFS_SUPER_SPACE is vm_map_find's alignment to NBPDR (a superpage).
// - Arena addresses are 64-bit (vmem's bigint): a kernel address is sign-extended going in
//   (kva64) and cut back to its 48 bits coming out (kvaOf).

import { type Cpu, type Task } from '../../emu/index.js';
import {
  type Kernel, lwkt_gettoken, lwkt_reltoken, M_BESTFIT, panic, tsleep, vm_map, vm_page, vmem_alloc, vmem_free, wakeup,
} from '../kern/index.js';
import {
  KERN_NO_SPACE, KERN_SUCCESS, KM_KRESERVE, NBPDR, VM_ALLOC_INTERRUPT, VM_ALLOC_SYSTEM, pmap_enter, pmap_remove, pmap_zero_page, KvaEnd, KvaSize, KvaStart, MAP_NOFAULT, MAP_RESERVE_COUNT, PAGE_SIZE, PG_ZERO,
  VM_ALLOC_NORMAL, VM_ALLOC_RETRY, VM_ALLOC_ZERO, VM_MAPTYPE_NORMAL, VM_MAPTYPE_UNSPECIFIED, VM_PAGE_BITS_ALL, VM_PROT_ALL,
  atop, round_page, trunc_page,
} from '../amd64/index.js';
import {
  vm_map_delete, vm_map_entry_krelease, vm_map_entry_kreserve, vm_map_entry_release, vm_map_entry_reserve, vm_map_find,
  vm_map_findspace, vm_map_init, vm_map_insert, vm_map_lock, vm_map_max, vm_map_min, vm_map_remove, vm_map_submap,
  vm_map_unlock, vm_map_wire,
} from './vm_map.js';
import { vm_object_reference } from './vm_object.js';
import {
  vm_page_alloc, vm_page_busy, vm_page_free, vm_page_grab, vm_page_lookup, vm_page_unwire, vm_page_wakeup, vm_page_wire,
  vm_page_zero_fill, vm_wait,
} from './vm_page.js';
import { M_NOWAIT, M_USE_RESERVE, M_ZERO } from './uma_int.js';

/** kmem_alloc_pageable: KVA in map with no pages behind it yet; 0 if there is no room. */
export function* kmem_alloc_pageable(k: Kernel, cpu: Cpu, map: number, size: number): Task<number> {
  cpu.enter(k.label['kmem.alloc']);
  size = round_page(size);
  const r = yield* vm_map_find(k, cpu, map, 0, 0, vm_map_min(cpu, map), size, PAGE_SIZE, true, VM_MAPTYPE_NORMAL, VM_PROT_ALL, VM_PROT_ALL, 0);
  cpu.leave();
  return r.result === KERN_SUCCESS ? r.addr : 0;
}

/** kmem_alloc_nofault: like kmem_alloc_pageable, but a touch of it is fatal (MAP_NOFAULT). */
export function* kmem_alloc_nofault(k: Kernel, cpu: Cpu, map: number, size: number, align: number): Task<number> {
  cpu.enter(k.label['kmem.alloc']);
  size = round_page(size);
  const r = yield* vm_map_find(k, cpu, map, 0, 0, vm_map_min(cpu, map), size, align, true, VM_MAPTYPE_NORMAL, VM_PROT_ALL, VM_PROT_ALL, MAP_NOFAULT);
  cpu.leave();
  return r.result === KERN_SUCCESS ? r.addr : 0;
}

/**
 * kmem_alloc3: wired, zero-filled kernel memory in map, backed by kernel_object; 0 if there
 * is no room. KM_KRESERVE takes map entries from the hidden reserve (for the map-entry zone).
 */
export function* kmem_alloc3(k: Kernel, cpu: Cpu, map: number, size: number, kmflags: number): Task<number> {
  cpu.enter(k.label['kmem.alloc']);
  size = round_page(size);
  const kreserve = (kmflags & KM_KRESERVE) !== 0;
  const countp = { n: kreserve ? vm_map_entry_kreserve(k, cpu, MAP_RESERVE_COUNT) : yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  const releaseCount = function* () {
    if (kreserve) vm_map_entry_krelease(k, cpu, countp.n);
    else yield* vm_map_entry_release(k, cpu, countp.n);
  };
  yield* vm_map_lock(k, cpu, map);
  const addr = yield* vm_map_findspace(k, cpu, map, vm_map_min(cpu, map), size, PAGE_SIZE);
  if (addr < 0) {
    yield* vm_map_unlock(k, cpu, map);
    yield* releaseCount();
    cpu.leave();
    return 0;
  }
  vm_object_reference(cpu, k.kernel_object);
  yield* vm_map_insert(k, cpu, map, countp, k.kernel_object, addr, addr, addr + size, VM_MAPTYPE_NORMAL, VM_PROT_ALL, VM_PROT_ALL, 0);
  yield* vm_map_unlock(k, cpu, map);
  yield* releaseCount();

  // Pages in kernel_object before vm_map_wire, so that it finds them there.
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  for (let i = 0; i < size; i += PAGE_SIZE) {
    const m = yield* vm_page_grab(k, cpu, k.kernel_object, atop(addr + i), VM_ALLOC_ZERO | VM_ALLOC_NORMAL | VM_ALLOC_RETRY);
    if ((cpu.load32(m + vm_page.flags) & PG_ZERO) === 0) vm_page_zero_fill(k, cpu, m);
    cpu.store8(m + vm_page.valid, VM_PAGE_BITS_ALL);
    cpu.store32(m + vm_page.flags, cpu.load32(m + vm_page.flags) & ~PG_ZERO);
    yield* vm_page_wakeup(k, cpu, m);
  }
  yield* lwkt_reltoken(k, cpu, k.vm_token);

  yield* vm_map_wire(k, cpu, map, addr, addr + size, kmflags);
  cpu.leave();
  return addr;
}

export function* kmem_alloc(k: Kernel, cpu: Cpu, map: number, size: number): Task<number> {
  return yield* kmem_alloc3(k, cpu, map, size, 0);
}

/**
 * kmem_free: releases a region and the pages behind it. Given kernel_arena or kmem_arena
 * instead of a map, FreeBSD 10's kmem_free: kmem_unback, then the KVA back to the arena.
 */
export function* kmem_free(k: Kernel, cpu: Cpu, map: number, addr: number, size: number): Task {
  if (map !== 0 && (map === k.kmem_arena || map === k.kernel_arena)) {
    yield* kmem_free_arena(k, cpu, map, addr, size);
    return;
  }
  cpu.enter(k.label['kmem.free']);
  yield* vm_map_remove(k, cpu, map, trunc_page(addr), round_page(addr + size));
  cpu.leave();
}

/**
 * kmem_suballoc: carves a submap of `size` bytes out of parent into the vm_map at `result`;
 * returns its [min, max). Panics when the parent has no room, as upstream.
 */
export function* kmem_suballoc(k: Kernel, cpu: Cpu, parent: number, result: number, size: number): Task<{ min: number; max: number }> {
  cpu.enter(k.label['kmem.suballoc']);
  size = round_page(size);
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  const r = yield* vm_map_find(k, cpu, parent, 0, 0, vm_map_min(cpu, parent), size, PAGE_SIZE, true, VM_MAPTYPE_UNSPECIFIED, VM_PROT_ALL, VM_PROT_ALL, 0);
  if (r.result !== KERN_SUCCESS) panic(cpu, 'kmem_suballoc');
  const min = r.addr;
  const max = min + size;
  vm_map_init(cpu, result, min, max, cpu.loadPtr(parent + vm_map.pmap));
  if ((yield* vm_map_submap(k, cpu, parent, min, max, result)) !== KERN_SUCCESS) panic(cpu, 'kmem_suballoc: unable to change range to submap');
  yield* lwkt_reltoken(k, cpu, k.vm_token);
  cpu.leave();
  return { min, max };
}

/**
 * kmem_alloc_wait: pageable memory from a submap; sleeps until there is room. Returns 0 only
 * when the submap could never hold `size`.
 */
export function* kmem_alloc_wait(k: Kernel, cpu: Cpu, map: number, size: number): Task<number> {
  cpu.enter(k.label['kmem.alloc']);
  size = round_page(size);
  const countp = { n: yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  let addr: number;
  for (;;) {
    yield* vm_map_lock(k, cpu, map);
    addr = yield* vm_map_findspace(k, cpu, map, vm_map_min(cpu, map), size, PAGE_SIZE);
    if (addr >= 0) break;
    if (vm_map_max(cpu, map) - vm_map_min(cpu, map) < size) {
      yield* vm_map_entry_release(k, cpu, countp.n);
      yield* vm_map_unlock(k, cpu, map);
      cpu.leave();
      return 0;
    }
    yield* vm_map_unlock(k, cpu, map);
    yield* tsleep(k, cpu, map, 0, 'kmaw');
  }
  yield* vm_map_insert(k, cpu, map, countp, 0, 0, addr, addr + size, VM_MAPTYPE_NORMAL, VM_PROT_ALL, VM_PROT_ALL, 0);
  yield* vm_map_unlock(k, cpu, map);
  yield* vm_map_entry_release(k, cpu, countp.n);
  cpu.leave();
  return addr;
}

/** kmem_free_wakeup: returns memory to a submap and wakes those waiting for room in it. */
export function* kmem_free_wakeup(k: Kernel, cpu: Cpu, map: number, addr: number, size: number): Task {
  cpu.enter(k.label['kmem.free']);
  const countp = { n: yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  yield* vm_map_lock(k, cpu, map);
  yield* vm_map_delete(k, cpu, map, trunc_page(addr), round_page(addr + size), countp);
  yield* wakeup(k, cpu, map);
  yield* vm_map_unlock(k, cpu, map);
  yield* vm_map_entry_release(k, cpu, countp.n);
  cpu.leave();
}

/**
 * kmem_init: kernel_map over [KvaStart, KvaEnd) with what boot already uses entered:
 * [KvaStart, virtual2_start) (vm_page_array and its hash), [virtual2_end, start) (the kernel
 * image and bootstrap tables), and [end, KvaEnd).
 */
export function* kmem_init(k: Kernel, cpu: Cpu, start: number, end: number): Task {
  const m = k.kernel_map;
  vm_map_init(cpu, m, KvaStart, KvaEnd, k.kernel_pmap);
  yield* vm_map_lock(k, cpu, m);
  cpu.store8(m + vm_map.system_map, 1);
  const countp = { n: yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  let addr = KvaStart;
  const insert = (s: number, e: number) =>
    vm_map_insert(k, cpu, m, countp, 0, 0, s, e, VM_MAPTYPE_NORMAL, VM_PROT_ALL, VM_PROT_ALL, 0);
  if (k.virtual2_start !== 0) {
    if (addr < k.virtual2_start) yield* insert(addr, k.virtual2_start);
    addr = k.virtual2_end;
  }
  if (addr < start) yield* insert(addr, start);
  if (end < KvaEnd) yield* insert(end, KvaEnd);
  yield* vm_map_unlock(k, cpu, m);
  yield* vm_map_entry_release(k, cpu, countp.n);
}

/** vm.kvm_size: the size of kernel virtual memory. */
export function sysctl_kvm_size(): number {
  return KvaSize;
}

/** vm.kvm_free: virtual_end - kernel_vm_end, as upstream (KVA not yet backed by page tables). */
export function sysctl_kvm_free(k: Kernel, cpu: Cpu): number {
  return k.virtual_end - cpu.load64(k.kernel_vm_end);
}

// --- FreeBSD 10–11: the kernel arenas --------------------------------------------------------

/** KVA_QUANTUM: kernel_arena imports from kernel_map a superpage (1 << (VM_LEVEL_0_ORDER + PAGE_SHIFT)) at a time. */
export const KVA_QUANTUM = NBPDR;

const U64 = (1n << 64n) - 1n;
const TOP16 = U64 ^ ((1n << 48n) - 1n);

/** A kernel virtual address as vmem holds it: sign-extended to 64 bits. */
export function kva64(va: number): bigint {
  const v = BigInt(va);
  return v >= 1n << 47n ? v | TOP16 : v;
}

/** The 48-bit kernel virtual address of a 64-bit arena address. */
export function kvaOf(a: bigint): number {
  return Number(a & ((1n << 48n) - 1n));
}

/** kva_import: kernel_arena's import function, `size` bytes of kernel_map (MAP_NOFAULT), superpage aligned. */
export function* kva_import(k: Kernel, cpu: Cpu, _arg: number, size: bigint, _flags: number): Task<{ error: number; addr: bigint }> {
  const m = k.kernel_map;
  const r = yield* vm_map_find(k, cpu, m, 0, 0, vm_map_min(cpu, m), Number(size), NBPDR, true, VM_MAPTYPE_NORMAL, VM_PROT_ALL, VM_PROT_ALL, MAP_NOFAULT);
  if (r.result !== KERN_SUCCESS) return { error: ENOMEM, addr: 0n };
  return { error: 0, addr: kva64(r.addr) };
}
const ENOMEM = 12;

/** kva_alloc: `size` bytes of KVA from kernel_arena, no pages behind them; 0 if there is none. */
export function* kva_alloc(k: Kernel, cpu: Cpu, size: number): Task<number> {
  size = round_page(size);
  const r = yield* vmem_alloc(k, cpu, k.kernel_arena, BigInt(size), M_BESTFIT | M_NOWAIT);
  return r.error !== 0 ? 0 : kvaOf(r.addr);
}

/** kva_free: KVA back to kernel_arena. */
export function* kva_free(k: Kernel, cpu: Cpu, addr: number, size: number): Task {
  yield* vmem_free(k, cpu, k.kernel_arena, kva64(addr), BigInt(round_page(size)));
}

/** The object behind an arena's pages: kmem_object for kmem_arena, kernel_object otherwise. */
function arenaObject(k: Kernel, vmem: number): number {
  return vmem === k.kmem_arena ? k.kmem_object : k.kernel_object;
}

/** OFF_TO_IDX(addr - VM_MIN_KERNEL_ADDRESS): the page index of a kernel address in kmem_object and kernel_object. */
function kidx(addr: number): number {
  return atop(addr - KvaStart);
}

/** malloc2vm_flags: the page allocation class for malloc(9) flags. */
export function malloc2vm_flags(cpu: Cpu, flags: number): number {
  if ((flags & M_USE_RESERVE) !== 0 && (flags & M_NOWAIT) === 0) panic(cpu, 'M_USE_RESERVE requires M_NOWAIT');
  let pflags = (flags & M_USE_RESERVE) !== 0 ? VM_ALLOC_INTERRUPT : VM_ALLOC_SYSTEM;
  if ((flags & M_ZERO) !== 0) pflags |= VM_ALLOC_ZERO;
  return pflags;
}

/**
 * kmem_back: wired pages behind [addr, addr + size) of a kernel arena's KVA, zeroed for M_ZERO,
 * mapped with pmap_enter. KERN_NO_SPACE (and nothing left behind) when a page cannot be had
 * and the caller may not wait; with M_WAITOK it waits for free pages (VM_WAIT).
 */
export function* kmem_back(k: Kernel, cpu: Cpu, object: number, addr: number, size: number, flags: number): Task<number> {
  if (object !== k.kmem_object && object !== k.kernel_object) panic(cpu, 'kmem_back: only supports kernel objects.');
  const pflags = malloc2vm_flags(cpu, flags);
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  for (let i = 0; i < size; i += PAGE_SIZE) {
    let m = 0;
    for (;;) {
      m = yield* vm_page_alloc(k, cpu, object, kidx(addr + i), pflags);
      if (m !== 0) break;
      if ((flags & M_NOWAIT) !== 0) {
        yield* lwkt_reltoken(k, cpu, k.vm_token);
        yield* kmem_unback(k, cpu, object, addr, i);
        return KERN_NO_SPACE;
      }
      yield* vm_wait(k, cpu);
    }
    // VM_ALLOC_WIRED | VM_ALLOC_NOBUSY.
    vm_page_wire(k, cpu, m);
    const pgflags = cpu.load32(m + vm_page.flags);
    if ((flags & M_ZERO) !== 0 && (pgflags & PG_ZERO) === 0) {
      cpu.enter(k.label['vm_page.zero']);
      pmap_zero_page(k, cpu, cpu.load64(m + vm_page.phys_addr));
      cpu.leave();
    }
    cpu.store32(m + vm_page.flags, pgflags & ~PG_ZERO);
    cpu.store8(m + vm_page.valid, VM_PAGE_BITS_ALL);
    yield* vm_page_wakeup(k, cpu, m);
    yield* pmap_enter(k, cpu, addr + i, cpu.load64(m + vm_page.phys_addr), true);
  }
  yield* lwkt_reltoken(k, cpu, k.vm_token);
  return KERN_SUCCESS;
}

/** kmem_unback: unmaps [addr, addr + size) and frees the pages behind it. */
export function* kmem_unback(k: Kernel, cpu: Cpu, object: number, addr: number, size: number): Task {
  if (object !== k.kmem_object && object !== k.kernel_object) panic(cpu, 'kmem_unback: only supports kernel objects.');
  yield* pmap_remove(k, cpu, addr, addr + size);
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  for (let i = 0; i < size; i += PAGE_SIZE) {
    const m = vm_page_lookup(k, cpu, object, kidx(addr + i));
    if (m === 0) panic(cpu, `kmem_unback: no page at 0x${(addr + i).toString(16)}`);
    // DragonFly's vm_page_free (vm_page_remove) takes a busied page; FreeBSD 10's does not ask.
    vm_page_busy(cpu, m);
    vm_page_unwire(k, cpu, m, false);
    yield* vm_page_free(k, cpu, m);
  }
  yield* lwkt_reltoken(k, cpu, k.vm_token);
}

/**
 * kmem_malloc: `size` bytes (rounded to pages) of wired kernel memory from a kernel arena
 * (vmem_alloc, best fit, then kmem_back); 0 when the arena or memory is exhausted.
 */
export function* kmem_malloc(k: Kernel, cpu: Cpu, vmem: number, size: number, flags: number): Task<number> {
  cpu.enter(k.label['kmem.alloc']);
  size = round_page(size);
  const r = yield* vmem_alloc(k, cpu, vmem, BigInt(size), flags | M_BESTFIT);
  if (r.error !== 0) {
    cpu.leave();
    return 0;
  }
  const addr = kvaOf(r.addr);
  if ((yield* kmem_back(k, cpu, arenaObject(k, vmem), addr, size, flags)) !== KERN_SUCCESS) {
    yield* vmem_free(k, cpu, vmem, r.addr, BigInt(size));
    cpu.leave();
    return 0;
  }
  cpu.leave();
  return addr;
}

/** FreeBSD's kmem_free(vmem, addr, size): the pages freed and unmapped, the KVA back to the arena. */
function* kmem_free_arena(k: Kernel, cpu: Cpu, vmem: number, addr: number, size: number): Task {
  cpu.enter(k.label['kmem.free']);
  size = round_page(size);
  yield* kmem_unback(k, cpu, arenaObject(k, vmem), addr, size);
  yield* vmem_free(k, cpu, vmem, kva64(addr), BigInt(size));
  cpu.leave();
}
