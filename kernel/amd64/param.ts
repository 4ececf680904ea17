// The x86_64 kernel address-space layout and VM constants, as DragonFly BSD's pc64 platform
// defines them (sys/platform/pc64/include/vmparam.h and pmap.h, the 2012 era: NKPDPE 128,
// NDMPML4E 1, MPPTDI 504; see kernel/UPSTREAM.md §1). Addresses are 48-bit numbers (emu/paging.ts);
// hex64() prints them sign-extended.

import { KERNBASE as EMU_KERNBASE } from '../../emu/index.js';

/** The most CPUs the kernel is built for (machine/param.h MAXCPU; DragonFly's SMP_MAXCPU). */
export const SMP_MAXCPU = 64;

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
export const NBPDR = 2 ** 21; // bytes mapped by a PD entry
export const NBPDP = 2 ** 30; // bytes mapped by a PDP entry

const TWO_48 = 2 ** 48;
/** KVADDR(l4, l3, l2, l1) as a 48-bit address (the sign extension is implied by l4 ≥ 256). */
export function KVADDR(l4: number, l3: number, l2: number, l1: number): number {
  return (l4 * 2 ** 39 + l3 * 2 ** 30 + l2 * 2 ** 21 + l1 * 2 ** 12) % TWO_48;
}

export const NPML4EPG = 512;
export const NPDPEPG = 512;
export const NPDEPG = 512;
export const NPTEPG = 512;
export const PML4PML4I = 256; // recursive self-map slot
export const KPML4I = NPML4EPG - 1; // the top 512 GiB: all kernel virtual memory
export const NDMPML4E = 1;
export const DMPML4I = KPML4I - NDMPML4E; // the direct map, 512 GiB
export const KPDPI = NPDPEPG - 2; // KERNBASE at -2 GiB
export const NKPDPE = 128; // PD pages created at boot: the top 128 GiB of KVA
export const MPPTDI = NPDEPG - 8; // per-CPU private space at -16 MiB

export const DMAP_MIN_ADDRESS = KVADDR(DMPML4I, 0, 0, 0);
export const DMAP_MAX_ADDRESS = KVADDR(DMPML4I + NDMPML4E, 0, 0, 0);
export const VM_MIN_KERNEL_ADDRESS = KVADDR(KPML4I, NPDPEPG - NKPDPE, 0, 0);
/** The last page of kernel virtual memory (upstream's macro yields a page, not an end). */
export const VM_MAX_KERNEL_ADDRESS = KVADDR(KPML4I, NPDPEPG - 1, MPPTDI, NPTEPG - 1);
export const KERNBASE = KVADDR(KPML4I, KPDPI, 0, 0);
export const PTOV_OFFSET = KERNBASE;
export const KvaStart = VM_MIN_KERNEL_ADDRESS;
export const KvaEnd = VM_MAX_KERNEL_ADDRESS;
export const KvaSize = KvaEnd - KvaStart;

if (KERNBASE !== EMU_KERNBASE) throw new Error('KERNBASE disagrees with the machine\'s');

/** Where the loader puts the kernel image: physical 2 MiB, virtual KERNBASE + 2 MiB. */
export const KERNLOAD = 0x20_0000;
/** Bytes of kernel text and read-only data before .data/.bss (an input of the model). */
export const KERNEL_TEXT_SIZE = 0x40_0000;
/** phys_avail ranges are aligned to 128 KiB (getmemsize's PHYSMAP_ALIGN). */
export const PHYSMAP_ALIGN = 0x2_0000;

export function PHYS_TO_DMAP(pa: number): number {
  return DMAP_MIN_ADDRESS + pa;
}

export function DMAP_TO_PHYS(va: number): number {
  return va - DMAP_MIN_ADDRESS;
}

export const round_page = (x: number) => Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;
export const trunc_page = (x: number) => Math.floor(x / PAGE_SIZE) * PAGE_SIZE;
export const atop = (x: number) => Math.floor(x / PAGE_SIZE);
export const ptoa = (x: number) => x * PAGE_SIZE;
export const roundup = (x: number, y: number) => Math.ceil(x / y) * y;

// vm_map / vm_kern
export const KERN_SUCCESS = 0;
export const KERN_INVALID_ADDRESS = 1;
export const KERN_NO_SPACE = 3;
export const KERN_INVALID_ARGUMENT = 4;
export const VM_PROT_NONE = 0;
export const VM_PROT_READ = 1;
export const VM_PROT_WRITE = 2;
export const VM_PROT_EXECUTE = 4;
export const VM_PROT_ALL = 7;
export const VM_MAPTYPE_UNSPECIFIED = 0;
export const VM_MAPTYPE_NORMAL = 1;
export const VM_MAPTYPE_VPAGETABLE = 2;
export const VM_MAPTYPE_SUBMAP = 3;
export const MAP_NOFAULT = 0x4;
export const MAP_ENTRY_NOFAULT = 0x10;
export const MAP_ENTRY_IN_TRANSITION = 0x100;
export const MAP_ENTRY_NEEDS_WAKEUP = 0x200;
/** Entries one map operation may need: two to clip, two to insert. */
export const MAP_RESERVE_COUNT = 4;
export const MAP_RESERVE_SLOP = 32;
export const MAX_KMAP = 10;
export const KM_PAGEABLE = 0x1;
export const KM_KRESERVE = 0x2;

// vm_page
export const VM_ALLOC_NORMAL = 0x1;
export const VM_ALLOC_SYSTEM = 0x2;
export const VM_ALLOC_INTERRUPT = 0x4;
export const VM_ALLOC_ZERO = 0x8;
export const VM_ALLOC_QUICK = 0x10;
export const VM_ALLOC_RETRY = 0x80;
export const PG_BUSY = 0x1;
export const PG_WANTED = 0x2;
export const PG_MAPPED = 0x20;
export const PG_ZERO = 0x40;
export const PG_REFERENCED = 0x80;
export const PG_UNMANAGED = 0x800;
export const VM_PAGE_BITS_ALL = 0xff;
export const PQ_NONE = 0;
export const PQ_FREE = 1;
export const PQ_INACTIVE = 257;
export const PQ_ACTIVE = 513;
