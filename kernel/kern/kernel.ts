// The kernel: boots on a Machine and holds the addresses of its static data.
//
// Models DragonFly BSD's x86_64 boot as far as the VM needs it: getmemsize (phys_avail),
// create_pagetables and pmap_bootstrap (sys/platform/pc64/x86_64/pmap.c), vm_page_startup,
// vm_object_init, kmem_init, mi_gdinit and vm_map_entry_reserve_cpu_init
// (kernel/UPSTREAM.md §1, §10). Deviations:
// - The loader-level part — the physical map, the bootstrap page tables, the direct map with
//   1 GiB pages, the mapping of vm_page_array — is done functionally and charges no cycles.
//   From vm_mem_init on, boot runs on the CPUs (CPU0 for the VM, each CPU for its own
//   globaldata) and is measured like everything else.
// - The e820 map is one range of RAM [0, memory size) with the usual PC hole at 640K–1M.
// - vm_page_startup does not put every page on the free queue: pages never used since boot
//   stay off it, and vm_page_alloc takes the lowest of them when the queue is empty (the same
//   order as a queue with those pages at its tail). The free count includes them. This keeps
//   boot time independent of memory size.
// - There is no message buffer, dump bitmap, pv zone or buffer cache; cpu_startup's submaps
//   are not created (kmem_suballoc is there for whoever wants them).
// - With the tunable vm.kmem_backend=vmem (kern_environment.ts), .bss also holds FreeBSD 10's
//   kernel_arena and kmem_arena storage (struct vmem, in VMEM_STORAGE bytes each), kmem_object,
//   vm_kmem_size and vmem_bt_lock, after everything else: the image grows by their size, and
//   the default boot's layout is the same as without the tunable.

import { type Cpu, type Machine, type Task, PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS, PTE_RW, UserError, hex64, pointerFrom, probeTranslation } from '../../emu/index.js';
import { GD_THREAD_OFFSET, globaldata, thread } from './globaldata.js';
import {
  DMAP_MAX_ADDRESS, DMAP_MIN_ADDRESS, DMPML4I, KERNBASE, KERNEL_TEXT_SIZE, KERNLOAD, KPDPI, KPML4I, KvaStart,
  NBPDP, NBPDR, NKPDPE, NPDPEPG, NPTEPG, PAGE_SIZE, PHYSMAP_ALIGN, PML4PML4I, PTOV_OFFSET, VM_MAX_KERNEL_ADDRESS,
  SMP_MAXCPU, atop, round_page, roundup, trunc_page,
} from '../amd64/index.js';
import { SLPQUE_BUCKETS, lwkt_token, slpque, type SyncHost } from './sync.js';
import { pmap, vm_map, vm_map_entry, vm_object, vm_page, vmstats, vpgqueue } from './structs.js';
import { struct } from './struct.js';
import { type Tunables, type TunableValues, tunableValues } from './kern_environment.js';
import { MAX_MAPENT, UMA_BOOT_PAGES, uma_globals, vm_zone, VMEPERCPU, type VmZone } from '../vm/index.js';


/** The never-used pages still off the free queue: phys_avail segment and next address. */
export const vm_page_lazy = struct('vm_page_lazy', [
  ['seg', 'u32'],
  ['next', 'u64'],
]);

/** Path labels of the kernel's code paths. */
export const kernelLabels = [
  'boot',
  'kmem.alloc',
  'kmem.free',
  'kmem.suballoc',
  'vm_map.lookup',
  'vm_map.findspace',
  'vm_map.insert',
  'vm_map.delete',
  'vm_map.wire',
  'vm_page.alloc',
  'vm_page.free',
  'vm_page.zero',
  'pmap.enter',
  'pmap.remove',
  'pmap.shootdown',
  'pmap.growkernel',
  'vm_fault',
  'zone.alloc.pcpu',
  'zone.alloc.locked',
  'zone.alloc.zget',
  'zone.free.pcpu',
  'zone.free.locked',
  'uma.alloc.cpucache',
  'uma.alloc.depot',
  'uma.alloc.slab',
  'uma.alloc.backend',
  'uma.free.cpucache',
  'uma.free.depot',
  'uma.free.slab',
  'uma.free.backend',
  'uma.reclaim',
  'uma.startup',
  'vmem.xalloc',
  'vmem.xfree',
  'vmem.qcache',
  'vmem.import',
  'mbuf.get',
  'mbuf.getcl',
  'mbuf.clget',
  'mbuf.getm',
  'mbuf.free',
  'mbuf.free_ext',
  'vm.pageout',
] as const;
export type KernelLabel = (typeof kernelLabels)[number];

/** subr_param.c's maxusers when not set: one per 2 MiB of physical memory (pages), 32 to 384. */
export function maxusersOf(physmem: number): number {
  return Math.min(384, Math.max(32, Math.floor(physmem / ((2 * 1024 * 1024) / 4096))));
}

/** Bytes of .bss for one struct vmem (subr_vmem.ts's vmem.sizeof must fit: boot checks it). */
export const VMEM_STORAGE = 2048;

/** A .data/.bss bump allocator for the kernel's static structures. */
class StaticData {
  end: number;
  constructor(readonly start: number) {
    this.end = start;
  }
  alloc(size: number, align = 64): number {
    const at = Math.ceil(this.end / align) * align;
    this.end = at + size;
    return at;
  }
}

export interface PhysSegment {
  start: number;
  end: number;
}

export class Kernel implements SyncHost {
  readonly machine: Machine;
  readonly ncpus: number;
  readonly label: { readonly [L in KernelLabel]: number };

  // Physical memory (bytes unless named in pages).
  readonly Maxmem: number; // pages
  readonly physfree: number; // end of the kernel image
  readonly firstaddr: number; // end of the bootstrap page tables
  readonly phys_avail: PhysSegment[] = [];
  readonly physmem: number; // pages in phys_avail before vm_page_startup
  readonly KPML4phys: number;
  readonly KPDPphys: number;
  readonly KPDphys: number;
  readonly KPTbase: number;
  readonly KPTphys: number;
  readonly nkpt_phys: number;
  readonly DMPDPphys: number;
  readonly ndmpdp: number;

  // Kernel virtual layout.
  readonly virtual_start: number;
  readonly virtual_end: number;
  readonly virtual2_start: number;
  readonly virtual2_end: number;
  readonly imageEnd: number; // KVA of the end of .bss

  // Static data (KVAs).
  readonly vmstats: number;
  readonly vm_page_queue_free: number;
  readonly vm_page_lazy: number;
  readonly phys_avail_va: number; // u64 pairs, as in memory
  readonly vm_page_array: number;
  readonly vm_page_array_size: number;
  readonly first_page: number;
  readonly vm_page_buckets: number;
  readonly vm_page_hash_mask: number;
  readonly kernel_object: number;
  readonly kernel_map: number;
  readonly kernel_pmap: number;
  readonly vm_token: number;
  readonly kernel_vm_end: number; // u64 variable
  readonly nkpt: number; // u32 variable
  readonly vm_pages_waiting: number; // u32 variable
  readonly vm_pages_needed: number; // u32 variable, in vm_pages_waiting's line
  readonly slpqueBase: number;
  readonly gdBase: number;
  readonly map_entry_init: number; // the boot items of the map-entry zone
  readonly cpu_map_entry_init: number; // VMEPERCPU static entries per CPU
  readonly ncpus_va: number; // u32: ncpus, as the kernel reads it
  // vm_zone globals
  readonly zlist: number; // LIST_HEAD of zones
  readonly zone_burst: number; // u32, sysctl vm.zone_burst (writable)
  readonly zone_kmem_pages: number; // u32
  readonly zone_kern_pages: number; // u32
  readonly zone_kmem_kvaspace: number; // u64
  readonly mapentzone_store: number; // static struct vm_zone of the map-entry zone
  readonly mapentobj: number; // its static vm_object
  // UMA and malloc(9) globals (kernel/vm/uma_int.ts uma_globals), and the boot pages
  readonly uma_globals: number;
  readonly uma_boot_pages: number;
  // The boot tunables (kern_environment.ts), every one with its effective value.
  readonly tunables: TunableValues;
  readonly kmem_backend: 'kmem_alloc3' | 'vmem';
  // FreeBSD 10's arenas (vm.kmem_backend=vmem; all 0 otherwise): the struct vmem storage of
  // kernel_arena and kmem_arena, kmem_object, the u64 vm_kmem_size, the spinlock vmem_bt_lock.
  readonly kernel_arena: number;
  readonly kmem_arena: number;
  readonly kmem_object: number;
  readonly vm_kmem_size: number;
  readonly vmem_bt_lock: number;
  /**
   * The zones by header address, with how kmemu runs each (VmZone): for views that read the
   * zone list; kernel code uses the handle it was given.
   */
  readonly zones = new Map<number, VmZone>();

  private constructor(machine: Machine, tunables: Tunables) {
    this.machine = machine;
    this.tunables = tunableValues(tunables as Record<string, string | undefined>);
    this.kmem_backend = this.tunables['vm.kmem_backend'] === 'vmem' ? 'vmem' : 'kmem_alloc3';
    this.ncpus = machine.ncpus;
    this.label = Object.fromEntries(kernelLabels.map((l) => [l, machine.label(l)])) as { [L in KernelLabel]: number };
    const mem = machine.mem;
    const memsize = Math.min(machine.config.memory.size, DMAP_MAX_ADDRESS - DMAP_MIN_ADDRESS);
    this.Maxmem = atop(memsize);

    // .data/.bss: every static structure, laid out after the kernel text.
    const bss = new StaticData(KERNBASE + KERNLOAD + KERNEL_TEXT_SIZE);
    this.vmstats = bss.alloc(vmstats.sizeof);
    this.vm_page_queue_free = bss.alloc(vpgqueue.sizeof);
    this.vm_page_lazy = bss.alloc(vm_page_lazy.sizeof);
    this.phys_avail_va = bss.alloc(16 * 8);
    this.kernel_object = bss.alloc(vm_object.sizeof);
    this.kernel_map = bss.alloc(vm_map.sizeof);
    this.kernel_pmap = bss.alloc(pmap.sizeof);
    this.vm_token = bss.alloc(lwkt_token.sizeof);
    this.kernel_vm_end = bss.alloc(8);
    this.nkpt = bss.alloc(4);
    this.vm_pages_waiting = bss.alloc(4);
    this.vm_pages_needed = bss.alloc(4, 4);
    this.slpqueBase = bss.alloc(SLPQUE_BUCKETS * slpque.sizeof);
    this.ncpus_va = bss.alloc(4);
    this.zlist = bss.alloc(8);
    this.zone_burst = bss.alloc(4);
    this.zone_kmem_pages = bss.alloc(4);
    this.zone_kern_pages = bss.alloc(4);
    this.zone_kmem_kvaspace = bss.alloc(8);
    this.mapentzone_store = bss.alloc(vm_zone.sizeof, 64);
    this.mapentobj = bss.alloc(vm_object.sizeof);
    this.map_entry_init = bss.alloc(MAX_MAPENT * vm_map_entry.sizeof);
    this.cpu_map_entry_init = bss.alloc(SMP_MAXCPU * VMEPERCPU * vm_map_entry.sizeof);
    this.gdBase = bss.alloc(SMP_MAXCPU * PAGE_SIZE, PAGE_SIZE);
    this.uma_globals = bss.alloc(uma_globals.sizeof, 64);
    this.uma_boot_pages = bss.alloc(UMA_BOOT_PAGES * PAGE_SIZE, PAGE_SIZE);
    const arenas = this.kmem_backend === 'vmem';
    this.kernel_arena = arenas ? bss.alloc(VMEM_STORAGE) : 0;
    this.kmem_arena = arenas ? bss.alloc(VMEM_STORAGE) : 0;
    this.kmem_object = arenas ? bss.alloc(vm_object.sizeof) : 0;
    this.vm_kmem_size = arenas ? bss.alloc(8) : 0;
    this.vmem_bt_lock = arenas ? bss.alloc(8) : 0;
    this.imageEnd = round_page(bss.end);
    this.physfree = this.imageEnd - KERNBASE;

    // create_pagetables: bump-allocate the bootstrap tables after the image.
    let first = this.physfree;
    const allocpages = (n: number) => {
      const pa = first;
      first += n * PAGE_SIZE;
      return pa;
    };
    this.ndmpdp = Math.max(4, Math.ceil(memsize / NBPDP));
    this.nkpt_phys = Math.ceil((this.Maxmem * vm_page.sizeof) / NBPDR) + Math.ceil((2 * this.Maxmem * 8) / NBPDR) + 128;
    this.KPTbase = allocpages((NPDPEPG - KPDPI) * NPTEPG);
    this.KPTphys = allocpages(this.nkpt_phys);
    this.KPML4phys = allocpages(1);
    this.KPDPphys = allocpages(1);
    this.KPDphys = allocpages(NKPDPE);
    this.DMPDPphys = allocpages(1);
    this.firstaddr = first;
    if (this.firstaddr >= memsize) {
      throw new UserError(
        `machine memory of ${memsize / 2 ** 20} MiB is too small for the kernel: its image and bootstrap page tables alone end at ${(this.firstaddr / 2 ** 20).toFixed(1)} MiB; give it at least 16 MiB`,
      );
    }
    const pte = (table: number, index: number, pa: number, flags: number) => {
      mem.write32(table + index * 8, (pa % 2 ** 32 | flags) >>> 0);
      mem.write32(table + index * 8 + 4, Math.floor(pa / 2 ** 32));
    };
    const KPDbase = this.KPDphys + (NKPDPE - 2) * PAGE_SIZE;
    for (let i = 0; i < (NPDPEPG - KPDPI) * NPTEPG; i++) pte(KPDbase, i, this.KPTbase + i * PAGE_SIZE, PTE_RW | PTE_P);
    for (let i = 0; i < this.nkpt_phys; i++) pte(this.KPDphys, i, this.KPTphys + i * PAGE_SIZE, PTE_RW | PTE_P);
    // The kernel image and the tables themselves: 2 MiB pages over [0, firstaddr) at KERNBASE.
    for (let i = 0; i * NBPDR < this.firstaddr; i++) pte(KPDbase, i, i * NBPDR, PTE_RW | PTE_P | PTE_PS | PTE_G);
    for (let i = 0; i < NKPDPE; i++) pte(this.KPDPphys, NPDPEPG - NKPDPE + i, this.KPDphys + i * PAGE_SIZE, PTE_RW | PTE_P);
    for (let i = 0; i < this.ndmpdp; i++) pte(this.DMPDPphys, i, i * NBPDP, PTE_RW | PTE_P | PTE_PS | PTE_G | PTE_D | PTE_A);
    pte(this.KPML4phys, PML4PML4I, this.KPML4phys, PTE_RW | PTE_P);
    pte(this.KPML4phys, DMPML4I, this.DMPDPphys, PTE_RW | PTE_P);
    pte(this.KPML4phys, KPML4I, this.KPDPphys, PTE_RW | PTE_P);
    for (const cpu of machine.cpus) cpu.setCr3(this.KPML4phys);

    // getmemsize: base memory and extended memory, 128 KiB aligned, page 0 and the kernel,
    // its modules and the bootstrap tables [2 MiB, first) left out.
    const seg = (s: number, e: number) => {
      const start = roundup(s, PHYSMAP_ALIGN);
      const end = Math.floor(Math.min(e, memsize) / PHYSMAP_ALIGN) * PHYSMAP_ALIGN;
      if (end > start) this.phys_avail.push({ start, end });
    };
    seg(PAGE_SIZE, 0x9_f000);
    seg(0x10_0000, KERNLOAD);
    seg(this.firstaddr, memsize);
    this.physmem = this.phys_avail.reduce((n, s) => n + atop(s.end - s.start), 0);
    // tunable_mbinit: the default the kern.ipc.nmbclusters tunable overrides.
    this.tunables['kern.ipc.nmbclusters'] ??= String(1024 + 64 * maxusersOf(this.physmem));

    // pmap_bootstrap
    this.virtual2_start = KvaStart;
    this.virtual2_end = PTOV_OFFSET;
    this.virtual_start = roundup(KERNBASE + this.firstaddr, NBPDR);
    this.virtual_end = VM_MAX_KERNEL_ADDRESS;

    // vm_page_startup: vm_page_array and the page hash come off the top of the biggest
    // range and are mapped from virtual2_start.
    let biggest = this.phys_avail[0]!;
    for (const s of this.phys_avail) if (s.end - s.start > biggest.end - biggest.start) biggest = s;
    this.first_page = atop(this.phys_avail[0]!.start);
    const page_range = atop(this.phys_avail[this.phys_avail.length - 1]!.end) - this.first_page;
    let buckets = 1;
    while (buckets < page_range) buckets *= 2;
    this.vm_page_hash_mask = buckets - 1;
    const tableBytes = round_page(page_range * vm_page.sizeof) + round_page(buckets * 8);
    const new_end = trunc_page(biggest.end - tableBytes);
    if (new_end <= biggest.start + 64 * PAGE_SIZE) {
      throw new UserError(
        `machine memory of ${memsize / 2 ** 20} MiB is too small for the kernel: its image and bootstrap page tables end at ` +
          `${(this.firstaddr / 2 ** 20).toFixed(1)} MiB and vm_page_array needs ${(tableBytes / 2 ** 20).toFixed(1)} MiB more; give it at least 16 MiB`,
      );
    }
    let vaddr = this.virtual2_start;
    for (let pa = new_end; pa < biggest.end; pa += PAGE_SIZE, vaddr += PAGE_SIZE) {
      // pmap_kenter_quick through the bootstrap PTs at KvaStart.
      const pdi = Math.floor((vaddr - KvaStart) / NBPDR);
      pte(this.KPTphys + pdi * PAGE_SIZE, Math.floor(vaddr / PAGE_SIZE) % NPTEPG, pa, PTE_RW | PTE_P);
    }
    this.vm_page_array = this.virtual2_start;
    this.vm_page_array_size = page_range;
    this.vm_page_buckets = this.virtual2_start + round_page(page_range * vm_page.sizeof);
    this.virtual2_start = vaddr;
    biggest.end = new_end;
  }

  /** The loader-level boot (functional); kernel/kern/boot.ts runs the measured rest. */
  static create(machine: Machine, tunables: Tunables = {}): Kernel {
    return new Kernel(machine, tunables);
  }

  /** mi_gdinit/cpu_gdinit: the CPU's globaldata and thread. */
  *gdinit(cpu: Cpu): Task {
    const gd = this.gd(cpu.id);
    cpu.storePtr(gd + globaldata.gd_self, gd);
    cpu.storePtr(gd + globaldata.gd_curthread, gd + GD_THREAD_OFFSET);
    cpu.store32(gd + globaldata.gd_cpuid, cpu.id);
    cpu.storePtr(gd + GD_THREAD_OFFSET + thread.td_gd, gd);
  }

  gd(cpu: number): number {
    return this.gdBase + cpu * PAGE_SIZE;
  }

  tdToks(cpu: number): number {
    return this.gd(cpu) + 2048;
  }

  /** The physical address a kernel virtual address maps to, read functionally (views, tests). */
  kvtop(va: number): number {
    const memo = this.kvtopMemo;
    if (memo !== undefined) {
      const page = Math.floor(va / PAGE_SIZE);
      const base = memo.get(page);
      if (base !== undefined) return base + (va - page * PAGE_SIZE);
      const t = probeTranslation(this.machine.mem, this.KPML4phys, page * PAGE_SIZE);
      if (t === undefined) throw new RangeError(`kvtop: ${hex64(va)} is not mapped`);
      memo.set(page, t.pa);
      return t.pa + (va - page * PAGE_SIZE);
    }
    const t = probeTranslation(this.machine.mem, this.KPML4phys, va);
    if (t === undefined) throw new RangeError(`kvtop: ${hex64(va)} is not mapped`);
    return t.pa;
  }

  /**
   * Runs a view that reads much kernel memory (kmemu view's state) with kvtop's translations
   * remembered per page: nothing runs meanwhile, so no mapping can change under it.
   */
  viewing<T>(view: () => T): T {
    if (this.kvtopMemo !== undefined) return view();
    this.kvtopMemo = new Map();
    try {
      return view();
    } finally {
      this.kvtopMemo = undefined;
    }
  }

  private kvtopMemo: Map<number, number> | undefined;

  // Functional access to kernel memory: reads and writes that charge nothing and disturb no
  // cache, for views (sysctl, vmstat, layouts), sysctl(8) writes and tests.

  peek8(va: number): number {
    return this.machine.mem.read8(this.kvtop(va));
  }

  peek16(va: number): number {
    return this.peek8(va) | (this.peek8(va + 1) << 8);
  }

  peek32(va: number): number {
    return this.machine.mem.read32(this.kvtop(va));
  }

  /** An unsigned 64-bit word (exact below 2^53). */
  peek64(va: number): number {
    return this.machine.mem.read64(this.kvtop(va));
  }

  /** A 64-bit pointer, as the 48-bit address it holds. */
  peekPtr(va: number): number {
    const pa = this.kvtop(va);
    return pointerFrom(this.machine.mem.read32(pa), this.machine.mem.read32(pa + 4));
  }

  /** A NUL-terminated string of at most `max` bytes (empty for a null pointer). */
  peekString(va: number, max: number): string {
    let s = '';
    for (let i = 0; va !== 0 && i < max; i++) {
      const c = this.peek8(va + i);
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }

  poke16(va: number, value: number): void {
    this.machine.mem.write8(this.kvtop(va), value & 0xff);
    this.machine.mem.write8(this.kvtop(va + 1), (value >>> 8) & 0xff);
  }

  poke32(va: number, value: number): void {
    this.machine.mem.write32(this.kvtop(va), value);
  }

  /** struct vm_page of a physical address (PHYS_TO_VM_PAGE). */
  PHYS_TO_VM_PAGE(pa: number): number {
    return this.vm_page_array + (atop(pa) - this.first_page) * vm_page.sizeof;
  }

  /** The phys_avail ranges as laid out in memory: u64 start/end pairs, zero-terminated. */
  get physAvailWords(): number[] {
    return this.phys_avail.flatMap((s) => [s.start, s.end]);
  }
}

