// The allocators a trace replays on. Each maps the trace's operations onto a modeled kernel
// allocator: zone events onto its zones, malloc/free onto malloc(9) or what stands in for it,
// page events onto vm_page.

import type { Cpu, Task } from '../emu/index.js';
import {
  type Kernel, type MallocType, type UmaZone, type UmaZoneOptions, KMEM_ZMAX, M_WAITOK, UMA_ALIGN_PTR, UMA_ZONE_NOFREE, free, kmemzoneIndex,
  kmemzoneSizes, malloc, malloc_init, umaHandle, umaOptions, umaPages, umaZoneStats, uma_zalloc, uma_zcreate, uma_zfree, uma_zone_tune,
  type VmZone, VM_ALLOC_NORMAL, kmem_alloc3, kmem_free, round_page, vm_page, vm_page_alloc,
  vm_page_busy, vm_page_free, vm_wait, zalloc, zfree, zinit, zoneStats, PHYS_TO_DMAP, sysctl,
} from '../kernel/index.js';
import type { ZoneFlag } from './format.js';

export interface AllocatorOptions {
  /** Per-CPU caching on (the allocator's normal mode) or off (every request locked). */
  pcpu: boolean;
  /** vm_zone: per-CPU state in cache-line-aligned slots instead of upstream's arrays. */
  aligned?: boolean;
  /** UMA: the per-CPU cache under a critical section (default) or CPU_LOCK. */
  cacheLock?: 'critical' | 'mutex';
  /** UMA: items per bucket instead of upstream's choice. */
  bucketSize?: number;
  /** UMA: contention-driven bucket sizing (2013). */
  autoTune?: boolean;
  /** UMA: an INVARIANTS kernel (uma_dbg on every operation; default off, as GENERIC). */
  invariants?: boolean;
}

/** What the replay driver needs of an allocator. Handles are the allocator's own. */
export interface ReplayAllocator {
  readonly name: string;
  createZone(cpu: Cpu, name: string, size: number, flags: readonly ZoneFlag[]): Task<unknown>;
  alloc(cpu: Cpu, zone: unknown): Task<number>;
  free(cpu: Cpu, zone: unknown, va: number): Task;
  malloc(cpu: Cpu, size: number): Task<number>;
  mfree(cpu: Cpu, va: number, size: number): Task;
  /** 2^order pages; returns the direct-map address of the first and keeps the pages. */
  pageAlloc(cpu: Cpu, order: number): Task<{ va: number; pages: number[] }>;
  pageFree(cpu: Cpu, pages: readonly number[]): Task;
  /** The name of the counter context a malloc of `size` runs under (its size class). */
  mallocContext(size: number): string;
  /** Memory the allocator holds: pages it took from the VM, and items cached free. */
  memory(): { pages: number; cachedFreeItems: number };
}

/** The largest malloc served by a size-class zone; bigger ones take whole pages. */
const MAX_MALLOC_ZONE = 4096;

function sizeClass(size: number): number {
  let c = 16;
  while (c < size) c *= 2;
  return c;
}

/**
 * The DragonFly zone allocator. malloc(9) of that era was not the zone allocator; here a
 * malloc is served by power-of-two size-class zones ("malloc-64") up to 4 KiB and by
 * kmem_alloc3 above, so that malloc-heavy traces replay on vm_zone too.
 */
export class VmZoneAllocator implements ReplayAllocator {
  readonly name = 'vmzone';
  private readonly classes = new Map<number, VmZone>();

  constructor(
    private readonly k: Kernel,
    private readonly opts: AllocatorOptions,
  ) {}

  *createZone(cpu: Cpu, name: string, size: number): Task<unknown> {
    // zget takes `zalloc` pages at a time: enough for an item, as upstream's callers choose.
    const pages = Math.max(1, Math.ceil(size / 4096));
    const z = yield* zinit(this.k, cpu, name, size, 0, 0, pages, { pcpu: this.opts.pcpu, aligned: this.opts.aligned ?? false });
    if (z === undefined) throw new Error(`zinit(${name}) failed: no kernel memory for the zone header`);
    return z;
  }

  *alloc(cpu: Cpu, zone: unknown): Task<number> {
    return yield* zalloc(this.k, cpu, zone as VmZone);
  }

  *free(cpu: Cpu, zone: unknown, va: number): Task {
    yield* zfree(this.k, cpu, zone as VmZone, va);
  }

  mallocContext(size: number): string {
    return size > MAX_MALLOC_ZONE ? 'malloc-large' : `malloc-${sizeClass(size)}`;
  }

  *malloc(cpu: Cpu, size: number): Task<number> {
    if (size > MAX_MALLOC_ZONE) return yield* kmem_alloc3(this.k, cpu, this.k.kernel_map, round_page(size), 0);
    const c = sizeClass(size);
    let z = this.classes.get(c);
    if (z === undefined) {
      z = (yield* this.createZone(cpu, `malloc-${c}`, c)) as VmZone;
      this.classes.set(c, z);
    }
    return yield* zalloc(this.k, cpu, z);
  }

  *mfree(cpu: Cpu, va: number, size: number): Task {
    if (size > MAX_MALLOC_ZONE) yield* kmem_free(this.k, cpu, this.k.kernel_map, va, round_page(size));
    else yield* zfree(this.k, cpu, this.classes.get(sizeClass(size))!, va);
  }

  *pageAlloc(cpu: Cpu, order: number): Task<{ va: number; pages: number[] }> {
    // A sleeping allocation (alloc_pages with GFP_KERNEL): vm_wait until pages are freed.
    const pages: number[] = [];
    while (pages.length < 2 ** order) {
      const m = yield* vm_page_alloc(this.k, cpu, 0, 0, VM_ALLOC_NORMAL);
      if (m === 0) yield* vm_wait(this.k, cpu);
      else pages.push(m);
    }
    const va = pages.length === 0 ? 0 : PHYS_TO_DMAP(cpu.load64(pages[0]! + vm_page.phys_addr));
    return { va, pages };
  }

  *pageFree(cpu: Cpu, pages: readonly number[]): Task {
    for (const m of pages) {
      vm_page_busy(cpu, m);
      yield* vm_page_free(this.k, cpu, m);
    }
  }

  memory(): { pages: number; cachedFreeItems: number } {
    const cached = zoneStats(this.k).reduce((n, z) => (z.name === 'MAP ENTRY' ? n : n + z.free), 0);
    return { pages: (sysctl(this.k, 'vm.zone_kern_pages') ?? 0) + (sysctl(this.k, 'vm.zone_kmem_pages') ?? 0), cachedFreeItems: cached };
  }
}

/**
 * FreeBSD's UMA: trace zones are uma_zcreate'd zones, malloc is malloc(9) on the kmemzones with
 * a malloc type "trace", pages come from vm_page_alloc. The kmemzones and mt_zone, made at
 * boot, are retuned to the replay's options (per-CPU buckets, layout, lock, bucket size)
 * before the first event, as loader tunables would be.
 */
export class UmaAllocator implements ReplayAllocator {
  readonly name = 'uma';
  private mtype: MallocType | undefined;
  private readonly zopts: UmaZoneOptions;
  private readonly pages: VmZoneAllocator;

  constructor(
    private readonly k: Kernel,
    opts: AllocatorOptions,
  ) {
    umaOptions(k).invariants = opts.invariants ?? false;
    this.zopts = { pcpu: opts.pcpu, aligned: opts.aligned ?? false, cacheLock: opts.cacheLock ?? 'critical', autoTune: opts.autoTune ?? false };
    if (opts.bucketSize !== undefined) this.zopts.bucketSize = opts.bucketSize;
    for (const z of umaZoneStats(k)) if (!z.internal) uma_zone_tune(k, umaHandle(k, z.zone), this.zopts);
    this.pages = new VmZoneAllocator(k, opts);
  }

  *createZone(cpu: Cpu, name: string, size: number, flags: readonly ZoneFlag[]): Task<unknown> {
    const f = flags.includes('nofree') ? UMA_ZONE_NOFREE : 0;
    return yield* uma_zcreate(this.k, cpu, name, size, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, f, this.zopts);
  }

  *alloc(cpu: Cpu, zone: unknown): Task<number> {
    return yield* uma_zalloc(this.k, cpu, zone as UmaZone, M_WAITOK);
  }

  *free(cpu: Cpu, zone: unknown, va: number): Task {
    yield* uma_zfree(this.k, cpu, zone as UmaZone, va);
  }

  mallocContext(size: number): string {
    return size > KMEM_ZMAX ? 'malloc-large' : `malloc-${kmemzoneSizes[kmemzoneIndex(size)]}`;
  }

  *malloc(cpu: Cpu, size: number): Task<number> {
    this.mtype ??= yield* malloc_init(this.k, cpu, 'trace');
    return yield* malloc(this.k, cpu, size, this.mtype, M_WAITOK);
  }

  *mfree(cpu: Cpu, va: number): Task {
    yield* free(this.k, cpu, va, this.mtype!);
  }

  pageAlloc(cpu: Cpu, order: number): Task<{ va: number; pages: number[] }> {
    return this.pages.pageAlloc(cpu, order);
  }

  pageFree(cpu: Cpu, pages: readonly number[]): Task {
    return this.pages.pageFree(cpu, pages);
  }

  memory(): { pages: number; cachedFreeItems: number } {
    const zones = umaZoneStats(this.k);
    const p = umaPages(this.k);
    return {
      pages: p.kmem + p.largeMalloc,
      cachedFreeItems: zones.reduce((n, z) => (z.internal ? n : n + z.cacheFree + z.depotFree), 0),
    };
  }
}
