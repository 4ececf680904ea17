// Booting a kernel: the loader-level part (Kernel.create, functional), then on the CPUs each
// CPU's globaldata and map-entry reserve, and on CPU0 vm_mem_init: vmstats and the free
// pages, kernel_object, kernel_pmap, the boot map-entry pool, kmem_init, and the free-page
// thresholds the pagedaemon would set (kernel/UPSTREAM.md §10).
//
// boot(machine, tunables) takes the loader's tunables (kern_environment.ts). With
// vm.kmem_backend=vmem, vm_mem_init goes on as FreeBSD 10–11's does (vm_init.c, kern_malloc.c):
// vmem_startup, kernel_arena (empty, importing KVA_QUANTUM at a time from kernel_map with
// kva_import: the KERNBASE cutout kmem_init entered is never one of its spans), kmem_object,
// and kmeminit's kmem_arena (vm.kmem_size bytes of kva_alloc). Deviation: those run after
// uma_startup and before uma_startup2 and kmeminit's zones come first — kmemu's vmem_startup
// needs malloc(9) for its globals and malloc type — so UMA's first slabs are boot pages and no
// backend allocation happens before kmem_arena exists.

import { type Cpu, type Machine, type Task } from '../../emu/index.js';
import { Kernel, VMEM_STORAGE } from './kernel.js';
import { type Tunables } from './kern_environment.js';
import { type VmemImport, vmem, vmem_init, vmem_set_import, vmem_startup } from './subr_vmem.js';
import { atop, KERNBASE, KvaEnd, KvaStart, PAGE_SIZE, VM_MIN_KERNEL_ADDRESS } from '../amd64/index.js';
import { panic } from './panic.js';
import { pmap, vm_map_entry, vmstats } from './structs.js';
import {
  _vm_object_allocate, installFaultHandler, kmem_init, KVA_QUANTUM, kva_import, OBJT_PHYS, mapentzone, MAX_MAPENT, OBJT_DEFAULT, uma_startup,
  uma_startup2, vm_map_entry_reserve_cpu_init, vm_pageout_free_page_calc, vm_zone, zbootinit, zinitna,
  ZONE_SPECIAL, ZONE_USE_RESERVE,
} from '../vm/index.js';
import { kmem_arena_init, kmeminit } from './kern_malloc.js';

function* vm_mem_init(k: Kernel, cpu: Cpu): Task {
  // vm_page_startup: the pages of phys_avail, all free.
  const pages = k.phys_avail.reduce((n, s) => n + atop(s.end - s.start), 0);
  cpu.store32(k.ncpus_va, k.ncpus);
  cpu.store32(k.vmstats + vmstats.v_page_count, pages);
  cpu.store32(k.vmstats + vmstats.v_free_count, pages);
  k.phys_avail.forEach((s, i) => {
    cpu.store64(k.phys_avail_va + i * 16, s.start);
    cpu.store64(k.phys_avail_va + i * 16 + 8, s.end);
  });
  cpu.store64(k.vm_page_lazy + 8, k.phys_avail[0]!.start);
  // vm_object_init, pmap_bootstrap's kernel_pmap, kernel_vm_end.
  _vm_object_allocate(cpu, OBJT_DEFAULT, atop(KvaEnd), k.kernel_object);
  cpu.storePtr(k.kernel_pmap + pmap.pm_pml4, KERNBASE + k.KPML4phys);
  cpu.store32(k.kernel_pmap + pmap.pm_count, 1);
  cpu.store64(k.kernel_pmap + pmap.pm_active, 2 ** Math.min(k.ncpus, 52) - 1);
  cpu.store64(k.kernel_vm_end, VM_MIN_KERNEL_ADDRESS);
  // vm_map_startup: the map-entry zone over its static items; kmem_init; vm_init2 lets the
  // zone grow (zinitna, ZONE_SPECIAL); the pagedaemon's thresholds.
  cpu.store32(k.zone_burst, 32);
  const mz = mapentzone(k);
  yield* zbootinit(k, cpu, mz, 'MAP ENTRY', vm_map_entry.sizeof, k.map_entry_init, MAX_MAPENT);
  cpu.store32(mz.z + vm_zone.zflags, cpu.load32(mz.z + vm_zone.zflags) | ZONE_SPECIAL);
  yield* kmem_init(k, cpu, k.virtual_start, k.virtual_end);
  yield* zinitna(k, cpu, mz, k.mapentobj, undefined, 0, 0, ZONE_USE_RESERVE | ZONE_SPECIAL, 1);
  vm_pageout_free_page_calc(k, cpu);
  // UMA on its boot pages, then (kmeminit in upstream order) the backend and malloc(9).
  yield* uma_startup(k, cpu);
  if (k.kmem_backend === 'vmem') {
    yield* kmeminit(k, cpu);
    yield* vmem_arenas_init(k, cpu);
    yield* uma_startup2(k, cpu);
    return;
  }
  yield* uma_startup2(k, cpu);
  yield* kmeminit(k, cpu);
}

function kvaImportFn(k: Kernel): VmemImport {
  return (c, arg, size, flags) => kva_import(k, c, arg, size, flags);
}

/** The closures over `k` boot leaves in the kernel's function tables (machine checkpoints). */
export function bootRestoreFunctions(k: Kernel): ((...args: never[]) => unknown)[] {
  return [kvaImportFn(k)];
}

/** vm.kmem_backend=vmem: vmem_startup, kernel_arena, kmem_object and kmem_arena. */
function* vmem_arenas_init(k: Kernel, cpu: Cpu): Task {
  if (vmem.sizeof > VMEM_STORAGE) panic(cpu, `boot: struct vmem (${vmem.sizeof} bytes) does not fit its ${VMEM_STORAGE} bytes of .bss`);
  yield* vmem_startup(k, cpu);
  _vm_object_allocate(cpu, OBJT_PHYS, atop(KvaEnd - KvaStart), k.kmem_object);
  yield* vmem_init(k, cpu, k.kernel_arena, 'kernel arena', 0n, 0n, BigInt(PAGE_SIZE), 0n, 0);
  yield* vmem_set_import(k, cpu, k.kernel_arena, kvaImportFn(k), undefined, 0, BigInt(KVA_QUANTUM));
  yield* kmem_arena_init(k, cpu);
}

/** Boots a kernel on the machine; the measured part runs under the path label `boot`. */
export function boot(machine: Machine, tunables: Tunables = {}): Kernel {
  const k = Kernel.create(machine, tunables);
  machine.run(
    machine.cpus.map(() =>
      function* (cpu: Cpu): Task {
        cpu.enter(k.label.boot);
        yield* k.gdinit(cpu);
        vm_map_entry_reserve_cpu_init(k, cpu);
        if (cpu.id === 0) yield* vm_mem_init(k, cpu);
        cpu.leave();
      },
    ),
  );
  installFaultHandler(k);
  return k;
}
