// VM objects, as far as the kernel's own memory needs them: kernel_object, references, and
// freeing a range of its pages.
//
// Models DragonFly BSD sys/vm/vm_object.c (kernel/UPSTREAM.md §3): kernel_object's page index
// is the kernel virtual address >> PAGE_SHIFT, its size OFF_TO_IDX(KvaEnd).

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel, vm_object, vm_page } from '../kern/index.js';
import { PAGE_SIZE, pmap_remove } from '../amd64/index.js';
import { vm_page_busy, vm_page_free, vm_page_lookup, vm_page_unwire } from './vm_page.js';

export const OBJT_DEFAULT = 0;
/** FreeBSD's OBJT_PHYS (enum obj_type), kmem_object's type. */
export const OBJT_PHYS = 4;

/** _vm_object_allocate: sets up an object of `size` pages. */
export function _vm_object_allocate(cpu: Cpu, type: number, size: number, object: number): void {
  cpu.store8(object + vm_object.type, type);
  cpu.store64(object + vm_object.size, size);
  cpu.store32(object + vm_object.ref_count, 1);
  cpu.store32(object + vm_object.resident_page_count, 0);
  cpu.store32(object + vm_object.generation, 1);
}

export function vm_object_reference(cpu: Cpu, object: number): void {
  if (object === 0) return;
  cpu.store32(object + vm_object.ref_count, cpu.load32(object + vm_object.ref_count) + 1);
}

export function vm_object_deallocate(cpu: Cpu, object: number): void {
  if (object === 0) return;
  cpu.store32(object + vm_object.ref_count, cpu.load32(object + vm_object.ref_count) - 1);
}

/**
 * vm_object_page_remove for kernel_object: removes the mappings of pages [start, end) of the
 * object (at their kernel addresses) and frees the pages.
 */
export function* vm_object_page_remove(k: Kernel, cpu: Cpu, object: number, start: number, end: number): Task {
  yield* pmap_remove(k, cpu, start * PAGE_SIZE, end * PAGE_SIZE);
  for (let pindex = start; pindex < end; pindex++) {
    const m = vm_page_lookup(k, cpu, object, pindex);
    if (m === 0) continue;
    vm_page_busy(cpu, m);
    while (cpu.load32(m + vm_page.wire_count) > 0) vm_page_unwire(k, cpu, m, false);
    yield* vm_page_free(k, cpu, m);
  }
}
