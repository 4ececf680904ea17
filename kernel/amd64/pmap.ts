// The kernel pmap: entering and removing kernel mappings, page-table pages on demand, and TLB
// invalidation on every CPU.
//
// Models DragonFly BSD sys/platform/pc64/x86_64/pmap.c and pmap_inval.c of 2012
// (kernel/UPSTREAM.md §7): PTEs are reached through the recursive PML4 slot (vtopte, vtopt);
// pmap_kenter and pmap_kremove change a PTE between pmap_inval_interlock and deinterlock, an
// invlpg on every CPU, acknowledged; the _quick variants invalidate only locally; pmap_qenter
// and pmap_qremove invalidate locally per page, then once on the other CPUs with
// smp_invltlb; pmap_growkernel allocates page-table pages when kernel_map grows. PG_G is not
// used for these mappings, as upstream. Deviations: the other CPUs are invalidated after the
// PTE changes (upstream holds them in a cpusync across the change), and there are no pv
// entries: the kernel pmap finds its PTEs through the recursive map alone.

import { type Cpu, PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, type Task, entryFrame } from '../../emu/index.js';
import {
  crit_enter, crit_exit, globaldata, type Kernel, panic, vm_map, vm_map_entry, vm_page,
} from '../kern/index.js';
import { DMAP_MAX_ADDRESS, DMAP_MIN_ADDRESS, KERNBASE, KVADDR, NBPDR, PAGE_SIZE, PG_ZERO, PHYS_TO_DMAP, PML4PML4I, VM_ALLOC_INTERRUPT, VM_ALLOC_NORMAL, VM_ALLOC_SYSTEM } from './param.js';
import { pagezero } from './support.js';
import { vm_page_alloc, vm_page_wire, vm_page_zero_fill } from '../vm/index.js';

export const PTmap = KVADDR(PML4PML4I, 0, 0, 0);
export const PDmap = KVADDR(PML4PML4I, PML4PML4I, 0, 0);

/** The KVA of the PTE mapping va, through the recursive slot. */
export function vtopte(va: number): number {
  return PTmap + (Math.floor(va / PAGE_SIZE) % 2 ** 36) * 8;
}

/** The KVA of the PD entry covering va. */
export function vtopt(va: number): number {
  return PDmap + (Math.floor(va / NBPDR) % 2 ** 27) * 8;
}

function frameOf(entry: number): number {
  const lo = entry % 2 ** 32;
  return entryFrame(lo, Math.floor(entry / 2 ** 32));
}

/** pmap_kextract: the physical address a kernel virtual address maps to (0 if none). */
export function pmap_kextract(_k: Kernel, cpu: Cpu, va: number): number {
  if (va >= DMAP_MIN_ADDRESS && va < DMAP_MAX_ADDRESS) return va - DMAP_MIN_ADDRESS;
  const pde = cpu.load64(vtopt(va));
  if ((pde & PTE_P) === 0) return 0;
  if ((pde & PTE_PS) !== 0) return frameOf(pde) - (frameOf(pde) % NBPDR) + (va % NBPDR);
  const pte = cpu.load64(vtopte(va));
  return (pte & PTE_P) === 0 ? 0 : frameOf(pte) + (va % PAGE_SIZE);
}

/** pmap_zero_page: zeroes the physical page at pa through the direct map (pagezero). */
export function pmap_zero_page(_k: Kernel, cpu: Cpu, pa: number): void {
  pagezero(cpu, PHYS_TO_DMAP(pa));
}

/** The other CPUs, all of which have kernel_pmap active. */
function others(k: Kernel, cpu: Cpu): number[] {
  return k.machine.others(cpu);
}

function ackWord(k: Kernel, cpu: Cpu): number {
  return k.gd(cpu.id) + globaldata.gd_invltlb_ret;
}

/** Invalidates va on this CPU and, acknowledged, on every other (pmap_inval_*). */
function* invalidateEverywhere(k: Kernel, cpu: Cpu, va: number): Task {
  cpu.enter(k.label['pmap.shootdown']);
  yield* k.machine.shootdown(cpu, others(k, cpu), [va], ackWord(k, cpu));
  cpu.leave();
}

/** pmap_kenter: maps one page, invalidating every CPU's stale translation. */
export function* pmap_kenter(k: Kernel, cpu: Cpu, va: number, pa: number): Task {
  cpu.enter(k.label['pmap.enter']);
  crit_enter(k, cpu);
  cpu.store64(vtopte(va), pa + (PTE_RW | PTE_P));
  yield* invalidateEverywhere(k, cpu, va);
  crit_exit(k, cpu);
  cpu.leave();
}

/** pmap_kenter_quick: maps one page, invalidating only this CPU's translation. */
export function pmap_kenter_quick(k: Kernel, cpu: Cpu, va: number, pa: number): void {
  cpu.enter(k.label['pmap.enter']);
  cpu.store64(vtopte(va), pa + (PTE_RW | PTE_P));
  cpu.invlpg(va);
  cpu.leave();
}

/** pmap_kremove: unmaps one page (an atomic read-and-clear), invalidating every CPU. */
export function* pmap_kremove(k: Kernel, cpu: Cpu, va: number): Task {
  cpu.enter(k.label['pmap.remove']);
  crit_enter(k, cpu);
  yield* cpu.xchg64(vtopte(va), 0);
  yield* invalidateEverywhere(k, cpu, va);
  crit_exit(k, cpu);
  cpu.leave();
}

export function* pmap_kremove_quick(k: Kernel, cpu: Cpu, va: number): Task {
  cpu.enter(k.label['pmap.remove']);
  yield* cpu.xchg64(vtopte(va), 0);
  cpu.invlpg(va);
  cpu.leave();
}

/** smp_invltlb: every other CPU reloads CR3 (a full non-global flush), acknowledged. */
function* smp_invltlb(k: Kernel, cpu: Cpu): Task {
  cpu.enter(k.label['pmap.shootdown']);
  const targets = others(k, cpu);
  if (targets.length > 0) yield* k.machine.ipi(cpu, targets, (t) => t.flushTlb(false), ackWord(k, cpu));
  cpu.leave();
}

/** pmap_qenter: maps `pages` (physical addresses) at va: local invlpg each, one smp_invltlb. */
export function* pmap_qenter(k: Kernel, cpu: Cpu, va: number, pages: readonly number[]): Task {
  cpu.enter(k.label['pmap.enter']);
  for (let i = 0; i < pages.length; i++) {
    cpu.store64(vtopte(va + i * PAGE_SIZE), pages[i]! + (PTE_RW | PTE_P));
    cpu.invlpg(va + i * PAGE_SIZE);
  }
  yield* smp_invltlb(k, cpu);
  cpu.leave();
}

/** pmap_qremove: unmaps `count` pages at va: local invlpg each, one smp_invltlb. */
export function* pmap_qremove(k: Kernel, cpu: Cpu, va: number, count: number): Task {
  cpu.enter(k.label['pmap.remove']);
  for (let i = 0; i < count; i++) {
    yield* cpu.xchg64(vtopte(va + i * PAGE_SIZE), 0);
    cpu.invlpg(va + i * PAGE_SIZE);
  }
  yield* smp_invltlb(k, cpu);
  cpu.leave();
}

/**
 * pmap_enter on the kernel pmap for a wired kernel page (from vm_fault): a fresh PTE needs no
 * invalidation; replacing a valid one needs it everywhere.
 */
export function* pmap_enter(k: Kernel, cpu: Cpu, va: number, pa: number, writable: boolean): Task {
  cpu.enter(k.label['pmap.enter']);
  const at = vtopte(va);
  const old = cpu.load64(at);
  cpu.store64(at, pa + (PTE_P | (writable ? PTE_RW : 0)));
  if ((old & PTE_P) !== 0 && frameOf(old) !== pa) yield* invalidateEverywhere(k, cpu, va);
  cpu.leave();
}

/** pmap_remove on the kernel pmap: clears each valid PTE in [sva, eva), invalidating each. */
export function* pmap_remove(k: Kernel, cpu: Cpu, sva: number, eva: number): Task {
  cpu.enter(k.label['pmap.remove']);
  for (let va = sva; va < eva; va += PAGE_SIZE) {
    if ((cpu.load64(vtopt(va)) & PTE_P) === 0) {
      va = va - (va % NBPDR) + NBPDR - PAGE_SIZE;
      continue;
    }
    if ((cpu.load64(vtopte(va)) & PTE_P) === 0) continue;
    yield* cpu.xchg64(vtopte(va), 0);
    yield* invalidateEverywhere(k, cpu, va);
  }
  cpu.leave();
}

/**
 * pmap_growkernel: makes page-table pages exist for [kstart, kend), allocating, wiring and
 * zeroing one per missing PD entry. Below KERNBASE it advances kernel_vm_end.
 */
export function* pmap_growkernel(k: Kernel, cpu: Cpu, kstart: number, kend: number): Task {
  cpu.enter(k.label['pmap.growkernel']);
  const update = kstart < KERNBASE;
  if (update) kstart = Math.min(kstart, cpu.load64(k.kernel_vm_end));
  kstart -= kstart % NBPDR;
  kend = Math.ceil(kend / NBPDR) * NBPDR;
  kend = Math.min(kend, cpu.load64(k.kernel_map + vm_map.header + vm_map_entry.end));
  while (kstart < kend) {
    if ((cpu.load64(vtopt(kstart)) & PTE_P) === 0) {
      const nkpt = cpu.load32(k.nkpt);
      const m = yield* vm_page_alloc(k, cpu, 0, nkpt, VM_ALLOC_NORMAL | VM_ALLOC_SYSTEM | VM_ALLOC_INTERRUPT);
      if (m === 0) panic(cpu, 'pmap_growkernel: no memory to grow kernel');
      vm_page_wire(k, cpu, m);
      if ((cpu.load32(m + vm_page.flags) & PG_ZERO) === 0) vm_page_zero_fill(k, cpu, m);
      cpu.store32(m + vm_page.flags, cpu.load32(m + vm_page.flags) & ~PG_ZERO);
      cpu.store64(vtopt(kstart), cpu.load64(m + vm_page.phys_addr) + (PTE_P | PTE_RW | PTE_A | PTE_D));
      cpu.store32(k.nkpt, nkpt + 1);
    }
    kstart += NBPDR;
  }
  if (update && kstart > cpu.load64(k.kernel_vm_end)) cpu.store64(k.kernel_vm_end, kstart);
  cpu.leave();
}
