// malloc(9) on UMA: size-class zones, malloc types with per-CPU statistics, large allocations
// straight from the backend with their slab recorded for free(9).
//
// Models FreeBSD sys/kern/kern_malloc.c of 2005 (FreeBSD 6): kmemzones[] "16" .. "4096"
// (KMEM_ZMAX = PAGE_SIZE) created UMA_ZONE_MALLOC, the kmemsize[] lookup, malloc_init with a
// malloc_type_internal of per-CPU malloc_type_stats updated in a critical section,
// uma_large_malloc / uma_large_free (an off-page slab header from "UMA Slabs" whose us_size is
// the allocation's, found again by vtoslab), free(9) that needs no size, and `vmstat -m`.
// Deviations: mti_stats[] has one line per CPU of the machine (not MAXCPU); a malloc type and
// its statistics are one item of "mt_zone"; the INVARIANTS mtrash_* hooks are UMA's trash_*.
//
// With vm.kmem_backend=vmem, FreeBSD 10–11's kmem arena (kern_malloc.c r254025 to 11.x):
// kmem_arena_init is kmeminit's first part — vm_kmem_size from the page count
// (VM_KMEM_SIZE_SCALE 1, at least VM_KMEM_SIZE, at most VM_KMEM_SIZE_MAX, then at most twice
// physical memory), kmem_arena a vmem over kva_alloc(vm_kmem_size) with kmem_reclaim as its
// reclaim — and uma_large_malloc/free use kmem_malloc/kmem_free on kmem_arena (FreeBSD's
// page_alloc/page_free). The vm.kmem_size, vm.kmem_map_size and vm.kmem_map_free sysctls read
// it. Deviation: the vm.kmem_size* tunables are not read (the computed size is used).

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel } from './kernel.js';
import { panic } from './panic.js';
import { bzero, PAGE_SIZE, round_page } from '../amd64/index.js';
import { crit_enter, crit_exit, spin_lock, spin_unlock } from './sync.js';
import { type VmemReclaim, vmem_init, vmem_set_reclaim } from './subr_vmem.js';
import { KvaEnd, KvaStart } from '../amd64/index.js';
import { vmstats } from './structs.js';
import {
  kmem_alloc3, kmem_free, kmem_malloc, kva_alloc, kva64, pagedaemon_wakeup, uma_reclaim, KMEM_ZBASE, KMEM_ZMASK, KMEM_ZMAX, KMEM_ZSHIFT, kmemzoneSizes, M_MAGIC, M_WAITOK,
  M_ZERO, malloc_type, malloc_type_stats, p, UMA_ALIGN_CACHE, UMA_ALIGN_PTR, uma_globals, uma_keg,
  UMA_NAME_MAX, uma_slab, UMA_SLAB_KMEM, UMA_SLAB_MALLOC, uma_zalloc_arg, uma_zalloc_internal, uma_zcreate,
  uma_zfree_arg, uma_zfree_internal, uma_zone, UMA_ZONE_MALLOC, umaHandle, umaReader, type UmaZone, us_size,
  vsetslab, vtoslab,
} from '../vm/index.js';

function g(k: Kernel, field: keyof typeof uma_globals & string): number {
  return k.uma_globals + (uma_globals as unknown as Record<string, number>)[field]!;
}

/** A malloc type: the address of its struct malloc_type. */
export interface MallocType {
  readonly mtp: number;
}

function mtsOf(mtp: number, cpuid: number): number {
  return mtp + malloc_type.sizeof + cpuid * malloc_type_stats.sizeof;
}

/** kmeminit: the kmemzones and kmemsize[], and the zone malloc types come from. */
export function* kmeminit(k: Kernel, cpu: Cpu): Task {
  let i = 0;
  for (let indx = 0; indx < kmemzoneSizes.length; indx++) {
    const size = kmemzoneSizes[indx]!;
    for (; i <= size; i += KMEM_ZBASE) cpu.store8(g(k, 'kmemsize') + (i >> KMEM_ZSHIFT), indx);
    const z = yield* uma_zcreate(k, cpu, String(size), size, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, UMA_ZONE_MALLOC);
    cpu.storePtr(g(k, 'kmemzones') + indx * 8, z.z);
  }
  const mt = yield* uma_zcreate(k, cpu, 'mt_zone', malloc_type.sizeof + k.ncpus * malloc_type_stats.sizeof, undefined, undefined, undefined, undefined, UMA_ALIGN_CACHE, UMA_ZONE_MALLOC);
  cpu.storePtr(g(k, 'mt_zone'), mt.z);
}

/** amd64's vmparam.h: the floor of vm_kmem_size (bytes) and its divisor of physical memory. */
export const VM_KMEM_SIZE = 12 * 1024 * 1024;
export const VM_KMEM_SIZE_SCALE = 1;
/** amd64's VM_KMEM_SIZE_MAX: three fifths of kernel virtual memory. */
export const VM_KMEM_SIZE_MAX = Math.floor(((KvaEnd - KvaStart + 1) * 3) / 5);

/** kmem_reclaim: kmem_arena's reclaim function, uma_reclaim, then a wakeup of the pagedaemon. */
function* kmem_reclaim(k: Kernel, cpu: Cpu): Task {
  yield* uma_reclaim(k, cpu);
  yield* pagedaemon_wakeup(k, cpu);
}

/**
 * The kmem arena part of FreeBSD 10's kmeminit: vm_kmem_size, then kmem_arena over
 * kva_alloc(vm_kmem_size) from kernel_arena, quantum PAGE_SIZE, no quantum cache.
 */
export function* kmem_arena_init(k: Kernel, cpu: Cpu): Task {
  const mem_size = cpu.load32(k.vmstats + vmstats.v_page_count);
  let size = VM_KMEM_SIZE;
  if (Math.floor(mem_size / VM_KMEM_SIZE_SCALE) > size / PAGE_SIZE) size = Math.floor(mem_size / VM_KMEM_SIZE_SCALE) * PAGE_SIZE;
  if (size >= VM_KMEM_SIZE_MAX) size = VM_KMEM_SIZE_MAX;
  if (size / 2 / PAGE_SIZE > mem_size) size = 2 * mem_size * PAGE_SIZE;
  size = round_page(size);
  cpu.store64(k.vm_kmem_size, size);
  const base = yield* kva_alloc(k, cpu, size);
  if (base === 0) panic(cpu, 'kmeminit: no kernel virtual memory for kmem_arena');
  yield* vmem_init(k, cpu, k.kmem_arena, 'kmem arena', kva64(base), BigInt(size), BigInt(PAGE_SIZE), 0n, 0);
  yield* vmem_set_reclaim(k, cpu, k.kmem_arena, kmemReclaimFn(k));
}

/** malloc_init: a new malloc type (MALLOC_DEFINE), on the kmemstatistics list. */
export function* malloc_init(k: Kernel, cpu: Cpu, shortdesc: string): Task<MallocType> {
  const mtp = yield* uma_zalloc_arg(k, cpu, umaHandle(k, cpu.loadPtr(g(k, 'mt_zone'))), 0, M_WAITOK | M_ZERO);
  cpu.store64(mtp + malloc_type.ks_magic, M_MAGIC);
  const buf = mtp + malloc_type.ks_namebuf;
  const n = Math.min(shortdesc.length, UMA_NAME_MAX - 1);
  for (let i = 0; i < n; i++) cpu.store8(buf + i, shortdesc.charCodeAt(i) & 0xff);
  cpu.store8(buf + n, 0);
  cpu.storePtr(mtp + malloc_type.ks_shortdesc, buf);
  cpu.storePtr(mtp + malloc_type.ks_handle, mtp + malloc_type.sizeof);
  yield* spin_lock(k, cpu, g(k, 'uma_mtx'));
  cpu.storePtr(mtp + malloc_type.ks_next, cpu.loadPtr(g(k, 'kmemstatistics')));
  cpu.storePtr(g(k, 'kmemstatistics'), mtp);
  yield* spin_unlock(k, cpu, g(k, 'uma_mtx'));
  return { mtp };
}

function typeStat(k: Kernel, cpu: Cpu, mtp: number, bytes: number, alloc: boolean, zindx: number): void {
  if (cpu.load64(mtp + malloc_type.ks_magic) !== M_MAGIC) panic(cpu, 'malloc: bad malloc type magic');
  crit_enter(k, cpu);
  const mts = mtsOf(mtp, cpu.id);
  if (alloc) {
    cpu.store64(mts + malloc_type_stats.mts_memalloced, cpu.load64(mts + malloc_type_stats.mts_memalloced) + bytes);
    cpu.store64(mts + malloc_type_stats.mts_numallocs, cpu.load64(mts + malloc_type_stats.mts_numallocs) + 1);
    if (zindx >= 0) cpu.store64(mts + malloc_type_stats.mts_size, cpu.load64(mts + malloc_type_stats.mts_size) | (1 << zindx));
  } else {
    cpu.store64(mts + malloc_type_stats.mts_memfreed, cpu.load64(mts + malloc_type_stats.mts_memfreed) + bytes);
    cpu.store64(mts + malloc_type_stats.mts_numfrees, cpu.load64(mts + malloc_type_stats.mts_numfrees) + 1);
  }
  crit_exit(k, cpu);
}

/** The kmemzone index a small malloc of `size` uses. */
export function kmemzoneIndex(size: number): number {
  if (size <= 0) size = 1;
  if ((size & KMEM_ZMASK) !== 0) size = (size & ~KMEM_ZMASK) + KMEM_ZBASE;
  for (let i = 0; i < kmemzoneSizes.length; i++) if (kmemzoneSizes[i]! >= size) return i;
  return kmemzoneSizes.length - 1;
}

/** uma_large_malloc: whole pages from the backend, an off-page slab recording their size. */
export function* uma_large_malloc(k: Kernel, cpu: Cpu, size: number, wait: number): Task<number> {
  const slabzone = cpu.loadPtr(g(k, 'slabzone'));
  const slab = yield* uma_zalloc_internal(k, cpu, slabzone, 0, wait);
  if (slab === 0) return 0;
  const mem = k.kmem_backend === 'vmem' ? yield* kmem_malloc(k, cpu, k.kmem_arena, size, wait) : yield* kmem_alloc3(k, cpu, k.kernel_map, size, 0);
  if (mem === 0) {
    yield* uma_zfree_internal(k, cpu, slabzone, slab, 0, 0);
    return 0;
  }
  for (let off = 0; off < size; off += PAGE_SIZE) vsetslab(k, cpu, mem + off, slab);
  cpu.storePtr(slab + uma_slab.us_data, mem);
  cpu.store16(slab + uma_slab.us_flags, UMA_SLAB_MALLOC | UMA_SLAB_KMEM);
  cpu.store64(slab + us_size, size);
  cpu.storePtr(slab + uma_slab.us_keg, 0);
  cpu.store64(g(k, 'kmem_large_pages'), cpu.load64(g(k, 'kmem_large_pages')) + size / PAGE_SIZE);
  return mem;
}

export function* uma_large_free(k: Kernel, cpu: Cpu, slab: number): Task {
  const mem = cpu.loadPtr(slab + uma_slab.us_data);
  const size = cpu.load64(slab + us_size);
  for (let off = 0; off < size; off += PAGE_SIZE) vsetslab(k, cpu, mem + off, 0);
  yield* kmem_free(k, cpu, k.kmem_backend === 'vmem' ? k.kmem_arena : k.kernel_map, mem, size);
  cpu.store64(g(k, 'kmem_large_pages'), cpu.load64(g(k, 'kmem_large_pages')) - size / PAGE_SIZE);
  yield* uma_zfree_internal(k, cpu, cpu.loadPtr(g(k, 'slabzone')), slab, 0, 0);
}

/** malloc(9): a size-class zone's item up to KMEM_ZMAX, whole pages above. */
export function* malloc(k: Kernel, cpu: Cpu, size: number, type: MallocType, flags: number): Task<number> {
  if (size <= KMEM_ZMAX) {
    let sz = size <= 0 ? 1 : size;
    if ((sz & KMEM_ZMASK) !== 0) sz = (sz & ~KMEM_ZMASK) + KMEM_ZBASE;
    const indx = cpu.load8(g(k, 'kmemsize') + (sz >> KMEM_ZSHIFT));
    const zone = cpu.loadPtr(g(k, 'kmemzones') + indx * 8);
    const va = yield* uma_zalloc_arg(k, cpu, umaHandle(k, zone), 0, flags);
    const zsize = va === 0 ? 0 : cpu.load32(cpu.loadPtr(zone + uma_zone.uz_keg) + uma_keg.uk_size);
    typeStat(k, cpu, type.mtp, zsize, true, indx);
    return va;
  }
  const L = k.label;
  cpu.enter(L['uma.alloc.backend']);
  const bytes = round_page(size);
  const va = yield* uma_large_malloc(k, cpu, bytes, flags);
  if (va !== 0 && (flags & M_ZERO) !== 0) bzero(cpu, va, bytes);
  typeStat(k, cpu, type.mtp, va === 0 ? 0 : bytes, true, -1);
  cpu.completeOp(L['uma.alloc.backend']);
  cpu.leave();
  return va;
}

/** free(9): finds the allocation's slab through its page; the size comes from there. */
export function* free(k: Kernel, cpu: Cpu, addr: number, type: MallocType): Task {
  if (addr === 0) return;
  const page = addr - (addr % PAGE_SIZE);
  const slab = vtoslab(k, cpu, page);
  if (slab === 0) panic(cpu, `free: address ${p(addr)}(${p(page)}) has not been allocated.`);
  const flags = cpu.load16(slab + uma_slab.us_flags);
  if ((flags & UMA_SLAB_MALLOC) === 0) {
    const keg = cpu.loadPtr(slab + uma_slab.us_keg);
    const size = cpu.load32(keg + uma_keg.uk_size);
    yield* uma_zfree_arg(k, cpu, umaHandle(k, cpu.loadPtr(keg + uma_keg.uk_zones)), addr, slab);
    typeStat(k, cpu, type.mtp, size, false, -1);
  } else {
    const L = k.label;
    cpu.enter(L['uma.free.backend']);
    const size = cpu.load64(slab + us_size);
    yield* uma_large_free(k, cpu, slab);
    typeStat(k, cpu, type.mtp, size, false, -1);
    cpu.completeOp(L['uma.free.backend']);
    cpu.leave();
  }
}

/** The kmemzone of a small size's class, for views and the replay's counter contexts. */
export function kmemzoneOf(k: Kernel, size: number): UmaZone | undefined {
  if (size > KMEM_ZMAX) return undefined;
  const { rptr } = umaReader(k);
  return umaHandle(k, rptr(g(k, 'kmemzones') + kmemzoneIndex(size) * 8));
}

export interface MallocTypeStats {
  name: string;
  inUse: number;
  memUse: number;
  requests: number;
  sizes: number[];
}

/** Each malloc type's figures summed over the CPUs, oldest type first. */
export function mallocTypeStats(k: Kernel): MallocTypeStats[] {
  const { r64, rptr, str } = umaReader(k);
  const out: MallocTypeStats[] = [];
  for (let mtp = rptr(g(k, 'kmemstatistics')); mtp !== 0; mtp = rptr(mtp + malloc_type.ks_next)) {
    let alloced = 0;
    let freed = 0;
    let nallocs = 0;
    let nfrees = 0;
    let mask = 0;
    for (let c = 0; c < k.ncpus; c++) {
      const mts = mtsOf(mtp, c);
      alloced += r64(mts + malloc_type_stats.mts_memalloced);
      freed += r64(mts + malloc_type_stats.mts_memfreed);
      nallocs += r64(mts + malloc_type_stats.mts_numallocs);
      nfrees += r64(mts + malloc_type_stats.mts_numfrees);
      mask |= r64(mts + malloc_type_stats.mts_size);
    }
    const sizes: number[] = [];
    for (let i = 0; i < 32; i++) if ((mask & (1 << i)) !== 0) sizes.push(1 << (i + 4));
    out.push({ name: str(rptr(mtp + malloc_type.ks_shortdesc)), inUse: nallocs - nfrees, memUse: alloced - freed, requests: nallocs, sizes });
  }
  return out.reverse();
}

/** `vmstat -m`, as FreeBSD 6's vmstat prints it. */
export function malloc_vmstat_m(k: Kernel): string {
  let s = `${'Type'.padStart(13)} ${'InUse'.padStart(5)} ${'MemUse'.padStart(6)} ${'HighUse'.padStart(7)} ${'Requests'.padStart(8)}  Size(s)\n`;
  for (const t of mallocTypeStats(k)) {
    s += `${t.name.padStart(13)} ${String(t.inUse).padStart(5)} ${String(Math.floor((t.memUse + 1023) / 1024)).padStart(5)}K ${'-'.padStart(7)} ${String(t.requests).padStart(8)}  ${t.sizes.join(',')}\n`;
  }
  return s;
}


function kmemReclaimFn(k: Kernel): VmemReclaim {
  return (c) => kmem_reclaim(k, c);
}

/** The closures over `k` malloc(9) leaves in vmem's function table (machine checkpoints). */
export function mallocRestoreFunctions(k: Kernel): ((...args: never[]) => unknown)[] {
  return [kmemReclaimFn(k)];
}
