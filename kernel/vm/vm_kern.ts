// Kernel memory management: the kernel's own virtual memory in kernel_map and its submaps.
//
// Models DragonFly BSD sys/vm/vm_kern.c (../shared/seeds/dragonfly-vm_kern.c.txt,
// kernel/UPSTREAM.md §6), every function: kmem_alloc_pageable, kmem_alloc_nofault,
// kmem_alloc3 (wired, zero-filled, KM_KRESERVE), kmem_free, kmem_suballoc, kmem_alloc_wait,
// kmem_free_wakeup, kmem_init, and the vm.kvm_size / vm.kvm_free sysctls. Return values and
// panics are upstream's: 0 when no space is found, panic("kmem_suballoc") when a submap cannot
// be carved. Deviation: vm_map_wire is given KM_KRESERVE through kmflags, as R1 does.

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel, lwkt_gettoken, lwkt_reltoken, panic, tsleep, vm_map, vm_page, wakeup } from '../kern/index.js';
import {
  KERN_SUCCESS, KM_KRESERVE, KvaEnd, KvaSize, KvaStart, MAP_NOFAULT, MAP_RESERVE_COUNT, PAGE_SIZE, PG_ZERO,
  VM_ALLOC_NORMAL, VM_ALLOC_RETRY, VM_ALLOC_ZERO, VM_MAPTYPE_NORMAL, VM_MAPTYPE_UNSPECIFIED, VM_PAGE_BITS_ALL, VM_PROT_ALL,
  atop, round_page, trunc_page,
} from '../amd64/index.js';
import {
  vm_map_delete, vm_map_entry_krelease, vm_map_entry_kreserve, vm_map_entry_release, vm_map_entry_reserve, vm_map_find,
  vm_map_findspace, vm_map_init, vm_map_insert, vm_map_lock, vm_map_max, vm_map_min, vm_map_remove, vm_map_submap,
  vm_map_unlock, vm_map_wire,
} from './vm_map.js';
import { vm_object_reference } from './vm_object.js';
import { vm_page_grab, vm_page_wakeup, vm_page_zero_fill } from './vm_page.js';

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

/** kmem_free: releases a region and the pages behind it. */
export function* kmem_free(k: Kernel, cpu: Cpu, map: number, addr: number, size: number): Task {
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
