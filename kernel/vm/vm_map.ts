// Address maps: vm_map entries in emulated memory, and the operations the kernel's own memory
// uses.
//
// Models DragonFly BSD sys/vm/vm_map.c (kernel/UPSTREAM.md §4–§5): vm_map_findspace's first
// fit from first_free, vm_map_insert with coalescing, clipping, vm_map_delete freeing
// kernel_object pages, vm_map_submap, kernel wiring, and the per-CPU map-entry reserve
// (vm_map_entry_reserve / release / kreserve / krelease) that keeps the VM from recursing
// into itself for entries, which come from the ZONE_SPECIAL map-entry zone. Deviations:
// - vm_map_lookup_entry walks the address-sorted entry list from the map's hint, as the
//   pre-RB-tree VM did; the RB links are in the entries but unused.
// - vm_map_wire keeps the map locked while it wires (upstream marks the entries
//   IN_TRANSITION and may unlock); vm_map_simplify_entry is not done.

import { type Cpu, type Task } from '../../emu/index.js';
import {
  crit_enter, crit_exit, globaldata, type Kernel, lockmgr_exclusive, lockmgr_release, lwkt_gettoken,
  lwkt_reltoken, panic, vm_map, vm_map_entry,
} from '../kern/index.js';
import {
  atop, KERN_INVALID_ADDRESS, KERN_INVALID_ARGUMENT, KERN_NO_SPACE, KERN_SUCCESS, KM_KRESERVE, KM_PAGEABLE,
  MAP_ENTRY_NOFAULT, MAP_NOFAULT, MAP_RESERVE_COUNT, MAP_RESERVE_SLOP, pmap_growkernel, round_page, SMP_MAXCPU,
  VM_MAPTYPE_NORMAL, VM_MAPTYPE_SUBMAP,
} from '../amd64/index.js';
import { mapentzone, zalloc, zfree } from './vm_zone.js';
import { vm_object_deallocate, vm_object_page_remove, vm_object_reference } from './vm_object.js';
import { vm_fault_unwire, vm_fault_wire } from './vm_fault.js';

/** A count of reserved entries, as the C code keeps in a local `int count`. */
export interface EntryCount {
  n: number;
}

/** Static map entries each CPU starts its reserve with (upstream VMEPERCPU: MAXCPU + 1). */
export const VMEPERCPU = SMP_MAXCPU + 1;
/** Static map entries for the boot map-entry zone (upstream MAX_MAPENT). */
export const MAX_MAPENT = SMP_MAXCPU * 32 + 1024;

const E = vm_map_entry;
const header = (map: number) => map + vm_map.header;

// --- The map-entry reserve ---------------------------------------------------------------

/** vm_map_entry_reserve_cpu_init: the CPU's reserve starts with its static entries. */
export function vm_map_entry_reserve_cpu_init(k: Kernel, cpu: Cpu): void {
  const gd = k.gd(cpu.id);
  cpu.store32(gd + globaldata.gd_vme_avail, cpu.load32(gd + globaldata.gd_vme_avail) - MAP_RESERVE_COUNT * 2);
  let base = cpu.loadPtr(gd + globaldata.gd_vme_base);
  for (let i = 0; i < VMEPERCPU; i++) {
    const e = k.cpu_map_entry_init + (cpu.id * VMEPERCPU + i) * E.sizeof;
    cpu.storePtr(e + E.next, base);
    base = e;
  }
  cpu.storePtr(gd + globaldata.gd_vme_base, base);
}

function avail(cpu: Cpu, gd: number): number {
  return cpu.load32(gd + globaldata.gd_vme_avail) | 0;
}

function setAvail(cpu: Cpu, gd: number, n: number): void {
  cpu.store32(gd + globaldata.gd_vme_avail, n >>> 0);
}

/** vm_map_entry_reserve: makes sure `count` entries are on this CPU's list; may allocate. */
export function* vm_map_entry_reserve(k: Kernel, cpu: Cpu, count: number): Task<number> {
  const gd = k.gd(cpu.id);
  crit_enter(k, cpu);
  while (avail(cpu, gd) < count) {
    const e = yield* zalloc(k, cpu, mapentzone(k));
    cpu.storePtr(e + E.next, cpu.loadPtr(gd + globaldata.gd_vme_base));
    cpu.storePtr(gd + globaldata.gd_vme_base, e);
    setAvail(cpu, gd, avail(cpu, gd) + 1);
  }
  setAvail(cpu, gd, avail(cpu, gd) - count);
  crit_exit(k, cpu);
  return count;
}

/** vm_map_entry_release: gives back what was not used; trims the list above the slop. */
export function* vm_map_entry_release(k: Kernel, cpu: Cpu, count: number): Task {
  const gd = k.gd(cpu.id);
  crit_enter(k, cpu);
  setAvail(cpu, gd, avail(cpu, gd) + count);
  while (avail(cpu, gd) > MAP_RESERVE_SLOP) {
    const e = cpu.loadPtr(gd + globaldata.gd_vme_base);
    cpu.storePtr(gd + globaldata.gd_vme_base, cpu.loadPtr(e + E.next));
    setAvail(cpu, gd, avail(cpu, gd) - 1);
    crit_exit(k, cpu);
    yield* zfree(k, cpu, mapentzone(k), e);
    crit_enter(k, cpu);
  }
  crit_exit(k, cpu);
}

/** vm_map_entry_kreserve: dips into the hidden reserve without allocating (for zget). */
export function vm_map_entry_kreserve(k: Kernel, cpu: Cpu, count: number): number {
  const gd = k.gd(cpu.id);
  crit_enter(k, cpu);
  setAvail(cpu, gd, avail(cpu, gd) - count);
  crit_exit(k, cpu);
  if (cpu.loadPtr(gd + globaldata.gd_vme_base) === 0) panic(cpu, `no reserved entries left, gd_vme_avail = ${avail(cpu, gd)}`);
  return count;
}

export function vm_map_entry_krelease(k: Kernel, cpu: Cpu, count: number): void {
  const gd = k.gd(cpu.id);
  crit_enter(k, cpu);
  setAvail(cpu, gd, avail(cpu, gd) + count);
  crit_exit(k, cpu);
}

function vm_map_entry_create(k: Kernel, cpu: Cpu, countp: EntryCount): number {
  if (countp.n <= 0) panic(cpu, 'vm_map_entry_create: no entries reserved');
  const gd = k.gd(cpu.id);
  crit_enter(k, cpu);
  const e = cpu.loadPtr(gd + globaldata.gd_vme_base);
  if (e === 0) panic(cpu, `gd_vme_base NULL! count ${countp.n}`);
  cpu.storePtr(gd + globaldata.gd_vme_base, cpu.loadPtr(e + E.next));
  crit_exit(k, cpu);
  countp.n--;
  return e;
}

function vm_map_entry_dispose(k: Kernel, cpu: Cpu, e: number, countp: EntryCount): void {
  const gd = k.gd(cpu.id);
  crit_enter(k, cpu);
  cpu.storePtr(e + E.next, cpu.loadPtr(gd + globaldata.gd_vme_base));
  cpu.storePtr(gd + globaldata.gd_vme_base, e);
  crit_exit(k, cpu);
  countp.n++;
}

// --- Maps --------------------------------------------------------------------------------

/** vm_map_init: an empty map over [min, max). */
export function vm_map_init(cpu: Cpu, map: number, min: number, max: number, pmapVa: number): void {
  const h = header(map);
  cpu.storePtr(h + E.next, h);
  cpu.storePtr(h + E.prev, h);
  cpu.store64(h + E.start, min);
  cpu.store64(h + E.end, max);
  cpu.storePtr(map + vm_map.rb_root, 0);
  cpu.store32(map + vm_map.nentries, 0);
  cpu.store64(map + vm_map.size, 0);
  cpu.store8(map + vm_map.system_map, 0);
  cpu.storePtr(map + vm_map.hint, h);
  cpu.storePtr(map + vm_map.first_free, h);
  cpu.store32(map + vm_map.timestamp, 0);
  cpu.store32(map + vm_map.flags, 0);
  cpu.storePtr(map + vm_map.pmap, pmapVa);
}

export const vm_map_min = (cpu: Cpu, map: number) => cpu.load64(header(map) + E.start);
export const vm_map_max = (cpu: Cpu, map: number) => cpu.load64(header(map) + E.end);

export function* vm_map_lock(k: Kernel, cpu: Cpu, map: number): Task {
  yield* lockmgr_exclusive(k, cpu, map + vm_map.lock, 'vm_maplk');
  cpu.store32(map + vm_map.timestamp, cpu.load32(map + vm_map.timestamp) + 1);
}

export function* vm_map_unlock(k: Kernel, cpu: Cpu, map: number): Task {
  yield* lockmgr_release(k, cpu, map + vm_map.lock);
}

/**
 * vm_map_lookup_entry: the entry containing addr (found) or the one before it (the header
 * when none is). Starts at the map's hint when addr is at or after it.
 */
export function vm_map_lookup_entry(k: Kernel, cpu: Cpu, map: number, addr: number): { found: boolean; entry: number } {
  cpu.enter(k.label['vm_map.lookup']);
  const last = header(map);
  let cur = cpu.loadPtr(map + vm_map.hint);
  if (cur === last) cur = cpu.loadPtr(cur + E.next);
  if (addr >= cpu.load64(cur + E.start)) {
    if (cur !== last && cpu.load64(cur + E.end) > addr) {
      cpu.leave();
      return { found: true, entry: cur };
    }
  } else {
    cur = cpu.loadPtr(last + E.next);
  }
  while (cur !== last) {
    if (cpu.load64(cur + E.end) > addr) {
      if (addr >= cpu.load64(cur + E.start)) {
        cpu.storePtr(map + vm_map.hint, cur);
        cpu.leave();
        return { found: true, entry: cur };
      }
      break;
    }
    cur = cpu.loadPtr(cur + E.next);
  }
  const prev = cpu.loadPtr(cur + E.prev);
  cpu.storePtr(map + vm_map.hint, prev);
  cpu.leave();
  return { found: false, entry: prev };
}

/**
 * vm_map_findspace: the lowest address at or above `start` where `length` bytes aligned to
 * `align` fit, or -1 (upstream's 1) when none does. On kernel_map it makes page tables exist
 * for what it found (pmap_growkernel). The map must be locked.
 */
export function* vm_map_findspace(k: Kernel, cpu: Cpu, map: number, start: number, length: number, align: number): Task<number> {
  cpu.enter(k.label['vm_map.findspace']);
  const h = header(map);
  const min = cpu.load64(h + E.start);
  const max = cpu.load64(h + E.end);
  if (start < min) start = min;
  if (start > max) {
    cpu.leave();
    return -1;
  }
  let entry: number;
  if (start === min) {
    entry = cpu.loadPtr(map + vm_map.first_free);
    if (entry !== h) start = cpu.load64(entry + E.end);
  } else {
    const r = vm_map_lookup_entry(k, cpu, map, start);
    entry = r.entry;
    if (r.found) start = cpu.load64(entry + E.end);
  }
  for (;;) {
    start = Math.ceil(start / align) * align;
    const end = start + length;
    if (end > max || end < start) {
      cpu.leave();
      return -1;
    }
    const next = cpu.loadPtr(entry + E.next);
    if (next === h || cpu.load64(next + E.start) >= end) break;
    entry = next;
    start = cpu.load64(entry + E.end);
  }
  cpu.storePtr(map + vm_map.hint, entry);
  if (map === k.kernel_map && round_page(start + length) > cpu.load64(k.kernel_vm_end)) {
    yield* pmap_growkernel(k, cpu, start, round_page(start + length));
  }
  cpu.leave();
  return start;
}

function linkAfter(cpu: Cpu, map: number, prev: number, e: number): void {
  const next = cpu.loadPtr(prev + E.next);
  cpu.storePtr(e + E.prev, prev);
  cpu.storePtr(e + E.next, next);
  cpu.storePtr(next + E.prev, e);
  cpu.storePtr(prev + E.next, e);
  cpu.store32(map + vm_map.nentries, cpu.load32(map + vm_map.nentries) + 1);
}

function unlink(cpu: Cpu, map: number, e: number): void {
  const prev = cpu.loadPtr(e + E.prev);
  const next = cpu.loadPtr(e + E.next);
  cpu.storePtr(prev + E.next, next);
  cpu.storePtr(next + E.prev, prev);
  cpu.store32(map + vm_map.nentries, cpu.load32(map + vm_map.nentries) - 1);
}

/**
 * vm_map_insert: enters [start, end) backed by object at offset. The map must be locked and
 * the caller must have reserved entries. KERN_NO_SPACE if anything is there already.
 */
export function* vm_map_insert(
  k: Kernel, cpu: Cpu, map: number, countp: EntryCount, object: number, offset: number,
  start: number, end: number, maptype: number, prot: number, max: number, cow: number,
): Task<number> {
  cpu.enter(k.label['vm_map.insert']);
  const h = header(map);
  if (start < cpu.load64(h + E.start) || end > cpu.load64(h + E.end) || start >= end) {
    cpu.leave();
    return KERN_INVALID_ADDRESS;
  }
  const r = vm_map_lookup_entry(k, cpu, map, start);
  const prev = r.entry;
  const prevNext = cpu.loadPtr(prev + E.next);
  if (r.found || (prevNext !== h && cpu.load64(prevNext + E.start) < end)) {
    cpu.leave();
    return KERN_NO_SPACE;
  }
  let eflags = 0;
  if ((cow & MAP_NOFAULT) !== 0) {
    if (object !== 0) panic(cpu, 'vm_map_insert: paradoxical MAP_NOFAULT request');
    eflags |= MAP_ENTRY_NOFAULT;
  }
  yield* lwkt_gettoken(k, cpu, map + vm_map.token);
  if (
    object === 0 && prev !== h && cpu.load64(prev + E.end) === start && cpu.loadPtr(prev + E.object) === 0 &&
    cpu.load32(prev + E.eflags) === eflags && cpu.load32(prev + E.wired_count) === 0 && cpu.load8(prev + E.maptype) === maptype &&
    cpu.load8(prev + E.protection) === prot && cpu.load8(prev + E.max_protection) === max
  ) {
    // Coalesce: extend the previous anonymous entry.
    cpu.store64(prev + E.end, end);
    cpu.store64(map + vm_map.size, cpu.load64(map + vm_map.size) + (end - start));
  } else {
    const e = vm_map_entry_create(k, cpu, countp);
    cpu.store64(e + E.start, start);
    cpu.store64(e + E.end, end);
    cpu.store8(e + E.maptype, maptype);
    cpu.store32(e + E.eflags, eflags);
    cpu.storePtr(e + E.object, object);
    cpu.store64(e + E.offset, offset);
    cpu.store64(e + E.aux, 0);
    cpu.store8(e + E.inheritance, 0);
    cpu.store8(e + E.protection, prot);
    cpu.store8(e + E.max_protection, max);
    cpu.store32(e + E.wired_count, 0);
    linkAfter(cpu, map, prev, e);
    cpu.store64(map + vm_map.size, cpu.load64(map + vm_map.size) + (end - start));
    if (cpu.loadPtr(map + vm_map.first_free) === prev && cpu.load64(prev + E.end) === start) cpu.storePtr(map + vm_map.first_free, e);
  }
  yield* lwkt_reltoken(k, cpu, map + vm_map.token);
  cpu.leave();
  return KERN_SUCCESS;
}

/**
 * vm_map_find: finds space (when fitit) at or above *addr and inserts there. Returns the
 * KERN_ result and the address.
 */
export function* vm_map_find(
  k: Kernel, cpu: Cpu, map: number, object: number, offset: number, addr: number, length: number, align: number,
  fitit: boolean, maptype: number, prot: number, max: number, cow: number,
): Task<{ result: number; addr: number }> {
  const countp = { n: yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  yield* vm_map_lock(k, cpu, map);
  let start = addr;
  if (fitit) {
    start = yield* vm_map_findspace(k, cpu, map, addr, length, align);
    if (start < 0) {
      yield* vm_map_unlock(k, cpu, map);
      yield* vm_map_entry_release(k, cpu, countp.n);
      return { result: KERN_NO_SPACE, addr };
    }
  }
  const result = yield* vm_map_insert(k, cpu, map, countp, object, offset, start, start + length, maptype, prot, max, cow);
  yield* vm_map_unlock(k, cpu, map);
  yield* vm_map_entry_release(k, cpu, countp.n);
  return { result, addr: start };
}

/** Copies every field of entry `from` into `to` except the links. */
function copyEntry(cpu: Cpu, from: number, to: number): void {
  cpu.store64(to + E.start, cpu.load64(from + E.start));
  cpu.store64(to + E.end, cpu.load64(from + E.end));
  cpu.store64(to + E.aux, cpu.load64(from + E.aux));
  cpu.storePtr(to + E.object, cpu.loadPtr(from + E.object));
  cpu.store64(to + E.offset, cpu.load64(from + E.offset));
  cpu.store32(to + E.eflags, cpu.load32(from + E.eflags));
  cpu.store8(to + E.maptype, cpu.load8(from + E.maptype));
  cpu.store8(to + E.protection, cpu.load8(from + E.protection));
  cpu.store8(to + E.max_protection, cpu.load8(from + E.max_protection));
  cpu.store8(to + E.inheritance, cpu.load8(from + E.inheritance));
  cpu.store32(to + E.wired_count, cpu.load32(from + E.wired_count));
}

function objectRefIfNormal(cpu: Cpu, e: number): void {
  if (cpu.load8(e + E.maptype) === VM_MAPTYPE_NORMAL) vm_object_reference(cpu, cpu.loadPtr(e + E.object));
}

/** vm_map_clip_start: splits e so that it starts at addr (the part before becomes an entry). */
function vm_map_clip_start(k: Kernel, cpu: Cpu, map: number, e: number, addr: number, countp: EntryCount): void {
  const start = cpu.load64(e + E.start);
  if (addr <= start) return;
  const n = vm_map_entry_create(k, cpu, countp);
  copyEntry(cpu, e, n);
  cpu.store64(n + E.end, addr);
  cpu.store64(e + E.offset, cpu.load64(e + E.offset) + (addr - start));
  cpu.store64(e + E.start, addr);
  linkAfter(cpu, map, cpu.loadPtr(e + E.prev), n);
  objectRefIfNormal(cpu, n);
}

/** vm_map_clip_end: splits e so that it ends at addr (the part after becomes an entry). */
function vm_map_clip_end(k: Kernel, cpu: Cpu, map: number, e: number, addr: number, countp: EntryCount): void {
  const end = cpu.load64(e + E.end);
  if (addr >= end) return;
  const n = vm_map_entry_create(k, cpu, countp);
  copyEntry(cpu, e, n);
  cpu.store64(n + E.start, addr);
  cpu.store64(n + E.offset, cpu.load64(n + E.offset) + (addr - cpu.load64(e + E.start)));
  cpu.store64(e + E.end, addr);
  linkAfter(cpu, map, e, n);
  objectRefIfNormal(cpu, n);
}

/**
 * vm_map_delete: removes [start, end) from the map: unwires, frees kernel_object pages and
 * their mappings, returns the entries. The map must be locked.
 */
export function* vm_map_delete(k: Kernel, cpu: Cpu, map: number, start: number, end: number, countp: EntryCount): Task<number> {
  cpu.enter(k.label['vm_map.delete']);
  yield* lwkt_gettoken(k, cpu, map + vm_map.token);
  const h = header(map);
  const r = vm_map_lookup_entry(k, cpu, map, start);
  let entry: number;
  if (r.found) {
    entry = r.entry;
    vm_map_clip_start(k, cpu, map, entry, start, countp);
    cpu.storePtr(map + vm_map.hint, cpu.loadPtr(entry + E.prev));
  } else {
    entry = cpu.loadPtr(r.entry + E.next);
  }
  if (entry === h) cpu.storePtr(map + vm_map.first_free, h);
  else {
    const ff = cpu.loadPtr(map + vm_map.first_free);
    if (ff !== h && cpu.load64(ff + E.start) >= start) cpu.storePtr(map + vm_map.first_free, cpu.loadPtr(entry + E.prev));
  }
  while (entry !== h && cpu.load64(entry + E.start) < end) {
    vm_map_clip_end(k, cpu, map, entry, end, countp);
    const s = cpu.load64(entry + E.start);
    const e = cpu.load64(entry + E.end);
    const next = cpu.loadPtr(entry + E.next);
    const object = cpu.loadPtr(entry + E.object);
    if (cpu.load32(entry + E.wired_count) !== 0) {
      cpu.store32(entry + E.wired_count, 0);
      yield* vm_fault_unwire(k, cpu, entry);
    }
    if (object === k.kernel_object) {
      const offset = cpu.load64(entry + E.offset);
      yield* vm_object_page_remove(k, cpu, object, atop(offset), atop(offset + (e - s)));
    }
    unlink(cpu, map, entry);
    cpu.store64(map + vm_map.size, cpu.load64(map + vm_map.size) - (e - s));
    if (cpu.load8(entry + E.maptype) !== VM_MAPTYPE_SUBMAP) vm_object_deallocate(cpu, object);
    vm_map_entry_dispose(k, cpu, entry, countp);
    entry = next;
  }
  yield* lwkt_reltoken(k, cpu, map + vm_map.token);
  cpu.leave();
  return KERN_SUCCESS;
}

function rangeCheck(cpu: Cpu, map: number, start: number, end: number): [number, number] {
  const min = vm_map_min(cpu, map);
  const max = vm_map_max(cpu, map);
  start = Math.max(start, min);
  end = Math.min(end, max);
  return [start, Math.max(start, end)];
}

/** vm_map_remove: vm_map_delete with the reserve and the lock taken here. */
export function* vm_map_remove(k: Kernel, cpu: Cpu, map: number, start: number, end: number): Task<number> {
  const countp = { n: yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  yield* vm_map_lock(k, cpu, map);
  [start, end] = rangeCheck(cpu, map, start, end);
  const result = yield* vm_map_delete(k, cpu, map, start, end, countp);
  yield* vm_map_unlock(k, cpu, map);
  yield* vm_map_entry_release(k, cpu, countp.n);
  return result;
}

/** vm_map_submap: turns the object-less entry [start, end) into a submap entry. */
export function* vm_map_submap(k: Kernel, cpu: Cpu, map: number, start: number, end: number, submap: number): Task<number> {
  const countp = { n: yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  yield* vm_map_lock(k, cpu, map);
  [start, end] = rangeCheck(cpu, map, start, end);
  const r = vm_map_lookup_entry(k, cpu, map, start);
  let entry = r.entry;
  if (r.found) vm_map_clip_start(k, cpu, map, entry, start, countp);
  else entry = cpu.loadPtr(entry + E.next);
  vm_map_clip_end(k, cpu, map, entry, end, countp);
  let result = KERN_INVALID_ARGUMENT;
  if (cpu.load64(entry + E.start) === start && cpu.load64(entry + E.end) === end && cpu.loadPtr(entry + E.object) === 0) {
    cpu.storePtr(entry + E.object, submap);
    cpu.store8(entry + E.maptype, VM_MAPTYPE_SUBMAP);
    result = KERN_SUCCESS;
  }
  yield* vm_map_unlock(k, cpu, map);
  yield* vm_map_entry_release(k, cpu, countp.n);
  return result;
}

/**
 * vm_map_wire for kernel maps: wires (or with KM_PAGEABLE unwires) [start, end), which must
 * be covered by entries without holes. Wiring faults each page in and maps it.
 */
export function* vm_map_wire(k: Kernel, cpu: Cpu, map: number, start: number, end: number, kmflags: number): Task<number> {
  cpu.enter(k.label['vm_map.wire']);
  const kreserve = (kmflags & KM_KRESERVE) !== 0;
  const countp = { n: kreserve ? vm_map_entry_kreserve(k, cpu, MAP_RESERVE_COUNT) : yield* vm_map_entry_reserve(k, cpu, MAP_RESERVE_COUNT) };
  yield* vm_map_lock(k, cpu, map);
  [start, end] = rangeCheck(cpu, map, start, end);
  const h = header(map);
  let result = KERN_SUCCESS;
  const r = vm_map_lookup_entry(k, cpu, map, start);
  if (!r.found) result = KERN_INVALID_ADDRESS;
  else {
    const first = r.entry;
    vm_map_clip_start(k, cpu, map, first, start, countp);
    // The entries covering [start, end), with no holes between them.
    const entries: number[] = [];
    for (let e = first; e !== h && cpu.load64(e + E.start) < end; e = cpu.loadPtr(e + E.next)) {
      vm_map_clip_end(k, cpu, map, e, end, countp);
      const prevEnd = entries.length > 0 ? cpu.load64(entries[entries.length - 1]! + E.end) : start;
      if (cpu.load64(e + E.start) !== prevEnd) {
        result = KERN_INVALID_ADDRESS;
        break;
      }
      entries.push(e);
    }
    if (result === KERN_SUCCESS && (entries.length === 0 || cpu.load64(entries[entries.length - 1]! + E.end) < end)) result = KERN_INVALID_ADDRESS;
    if (result === KERN_SUCCESS) {
      for (const e of entries) {
        const w = cpu.load32(e + E.wired_count);
        if ((kmflags & KM_PAGEABLE) === 0) {
          cpu.store32(e + E.wired_count, w + 1);
          if (w === 0) yield* vm_fault_wire(k, cpu, map, e);
        } else if (w === 0) {
          result = KERN_INVALID_ARGUMENT;
        } else {
          cpu.store32(e + E.wired_count, w - 1);
          if (w === 1) yield* vm_fault_unwire(k, cpu, e);
        }
      }
    }
  }
  cpu.store32(map + vm_map.timestamp, cpu.load32(map + vm_map.timestamp) + 1);
  yield* vm_map_unlock(k, cpu, map);
  if (kreserve) vm_map_entry_krelease(k, cpu, countp.n);
  else yield* vm_map_entry_release(k, cpu, countp.n);
  cpu.leave();
  return result;
}

/** The map's entries as [start, end) pairs, read functionally (for views and tests). */
export function mapEntries(k: Kernel, map: number): { start: number; end: number; object: number; wired: number; maptype: number }[] {
  const out = [];
  const h = header(map);
  for (let e = k.peekPtr(h + E.next); e !== h; e = k.peekPtr(e + E.next)) {
    out.push({
      start: k.peek64(e + E.start),
      end: k.peek64(e + E.end),
      object: k.peekPtr(e + E.object),
      wired: k.peek32(e + E.wired_count),
      maptype: k.peek8(e + E.maptype),
    });
  }
  return out;
}

