// Page faults on kernel memory, and the wiring of kernel pages.
//
// Models what DragonFly BSD's sys/vm/vm_fault.c does for kernel maps (kernel/UPSTREAM.md
// §5.7): vm_fault_wire finds (or brings in) each page of an entry, wires it and enters it in
// the kernel pmap; vm_fault_unwire undoes that; a fault on pageable kernel memory allocates a
// zero-filled page and maps it; a fault on unmapped kernel memory or a MAP_NOFAULT entry is
// fatal. Deviations:
// - Anonymous kernel memory (an entry of a system map without an object) is kept in
//   kernel_object at its address's page index, the entry becoming kernel_object-backed on
//   its first fault.
// - A fault is handled to completion at the faulting access: its lock operations do not wait
//   for CPUs behind in time, and it may not sleep (no free page is a panic).

import { type Cpu, PF_WRITE, type Task, YIELD_BLOCK, hex64 } from '../../emu/index.js';
import { type Kernel, panic, vm_map_entry, vm_page } from '../kern/index.js';
import {
  atop, MAP_ENTRY_NOFAULT, PAGE_SIZE, PG_ZERO, pmap_enter, trunc_page, VM_ALLOC_NORMAL, VM_ALLOC_RETRY,
  VM_ALLOC_ZERO, VM_MAPTYPE_SUBMAP, VM_PAGE_BITS_ALL,
} from '../amd64/index.js';
import { vm_map_lock, vm_map_lookup_entry, vm_map_unlock } from './vm_map.js';
import { vm_object_reference } from './vm_object.js';
import {
  vm_page_activate, vm_page_grab, vm_page_lookup, vm_page_unwire, vm_page_wakeup, vm_page_wire, vm_page_zero_fill,
} from './vm_page.js';

const E = vm_map_entry;

/** The kernel_object page backing va in entry e, brought in zero-filled if absent. */
function* faultPage(k: Kernel, cpu: Cpu, e: number, va: number): Task<number> {
  if (cpu.loadPtr(e + E.object) === 0) {
    cpu.storePtr(e + E.object, k.kernel_object);
    cpu.store64(e + E.offset, cpu.load64(e + E.start));
    vm_object_reference(cpu, k.kernel_object);
  }
  const object = cpu.loadPtr(e + E.object);
  const pindex = atop(cpu.load64(e + E.offset) + (va - cpu.load64(e + E.start)));
  let m = vm_page_lookup(k, cpu, object, pindex);
  if (m !== 0) return m;
  m = yield* vm_page_grab(k, cpu, object, pindex, VM_ALLOC_NORMAL | VM_ALLOC_ZERO | VM_ALLOC_RETRY);
  if ((cpu.load32(m + vm_page.flags) & PG_ZERO) === 0) vm_page_zero_fill(k, cpu, m);
  cpu.store8(m + vm_page.valid, VM_PAGE_BITS_ALL);
  cpu.store32(m + vm_page.flags, cpu.load32(m + vm_page.flags) & ~PG_ZERO);
  yield* vm_page_wakeup(k, cpu, m);
  return m;
}

/** vm_fault_wire: wires and maps every page of a kernel entry. */
export function* vm_fault_wire(k: Kernel, cpu: Cpu, _map: number, e: number): Task {
  const start = cpu.load64(e + E.start);
  const end = cpu.load64(e + E.end);
  for (let va = start; va < end; va += PAGE_SIZE) {
    const m = yield* faultPage(k, cpu, e, va);
    vm_page_wire(k, cpu, m);
    yield* pmap_enter(k, cpu, va, cpu.load64(m + vm_page.phys_addr), true);
  }
}

/** vm_fault_unwire: unwires every page of a kernel entry (they stay mapped). */
export function* vm_fault_unwire(k: Kernel, cpu: Cpu, e: number): Task {
  const object = cpu.loadPtr(e + E.object);
  if (object === 0) return;
  const start = cpu.load64(e + E.start);
  const end = cpu.load64(e + E.end);
  const offset = cpu.load64(e + E.offset);
  for (let va = start; va < end; va += PAGE_SIZE) {
    const m = vm_page_lookup(k, cpu, object, atop(offset + (va - start)));
    if (m !== 0 && cpu.load32(m + vm_page.wire_count) > 0) vm_page_unwire(k, cpu, m, true);
  }
}

/** vm_fault on kernel memory: maps the page of a pageable entry, or panics as trap() does. */
function* vm_fault(k: Kernel, cpu: Cpu, va: number, errorCode: number): Task {
  cpu.enter(k.label['vm_fault']);
  const fatal = (why: string): never =>
    panic(cpu, `page fault while in kernel mode: fault virtual address = 0x${hex64(va)}, ${(errorCode & PF_WRITE) !== 0 ? 'write' : 'read'}, cpuid = ${cpu.id}: ${why}`);
  let map = k.kernel_map;
  yield* vm_map_lock(k, cpu, map);
  let r = vm_map_lookup_entry(k, cpu, map, va);
  if (r.found && cpu.load8(r.entry + E.maptype) === VM_MAPTYPE_SUBMAP) {
    yield* vm_map_unlock(k, cpu, map);
    map = cpu.loadPtr(r.entry + E.object);
    yield* vm_map_lock(k, cpu, map);
    r = vm_map_lookup_entry(k, cpu, map, va);
  }
  if (!r.found) {
    yield* vm_map_unlock(k, cpu, map);
    fatal('no map entry');
  }
  if ((cpu.load32(r.entry + E.eflags) & MAP_ENTRY_NOFAULT) !== 0) {
    panic(cpu, `vm_fault: fault on nofault entry, addr: ${hex64(trunc_page(va))}`);
  }
  const m = yield* faultPage(k, cpu, r.entry, trunc_page(va));
  vm_page_activate(k, cpu, m);
  yield* pmap_enter(k, cpu, trunc_page(va), cpu.load64(m + vm_page.phys_addr), true);
  yield* vm_map_unlock(k, cpu, map);
  cpu.leave();
}

/**
 * Installs the kernel's page-fault handler on every CPU: a fault in kernel virtual memory
 * runs vm_fault to completion, then the access is retried.
 */
export function installFaultHandler(k: Kernel): void {
  for (const cpu of k.machine.cpus) {
    cpu.onPageFault = (c, va, code) => {
      const task = vm_fault(k, c, va, code);
      for (let step = task.next(); step.done !== true; step = task.next()) {
        if (step.value === YIELD_BLOCK) panic(c, `vm_fault: would sleep handling a fault at ${hex64(va)}`);
      }
      return true;
    };
  }
}
