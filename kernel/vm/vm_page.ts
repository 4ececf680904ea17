// Physical pages: vm_page_alloc, vm_page_grab, vm_page_free, wiring, zero fill.
//
// Models DragonFly BSD sys/vm/vm_page.c of the vm_token era (kernel/UPSTREAM.md §2): the free
// count checks per allocation class, PG_ZERO pages at the free queue's tail and others at its
// head, vm_page_grab with VM_ALLOC_RETRY sleeping in vm_wait, the panics of vm_page_free and
// vm_page_unwire. Deviations:
// - One free queue instead of 256 page colours.
// - Pages never used since boot wait off the queue (kernel.ts) and come after it, lowest first.
// - Pages are found by (object, pindex) through a hash table (as FreeBSD's vm_page_buckets
//   did) rather than each object's RB tree.
// - The active and inactive queues are counts only: the pagedaemon (vm_pageout.ts) scans none, and
//   the free-page thresholds are set once boot is over, as when the pagedaemon starts.
// - vm_wait sleeps until enough pages are freed (no one-second timeout); the pageout daemon it
//   wakes may run on its CPU first (vm_pageout.ts), and when that pass brought the count back
//   above the minimum it returns without sleeping.

import { type Cpu, type Task } from '../../emu/index.js';
import {
  GD_CNT_OFFSET, GD_THREAD_OFFSET, type Kernel, lwkt_gettoken, lwkt_reltoken, panic, thread, tsleep, vm_object, vm_page,
  vm_page_lazy, vmmeter, vmstats, vpgqueue, wakeup,
} from '../kern/index.js';
import {
  PAGE_SIZE, PG_BUSY, PG_WANTED, PG_ZERO, pmap_zero_page, PQ_ACTIVE, PQ_FREE, PQ_INACTIVE, PQ_NONE,
  VM_ALLOC_INTERRUPT, VM_ALLOC_NORMAL, VM_ALLOC_QUICK, VM_ALLOC_RETRY, VM_ALLOC_SYSTEM, VM_ALLOC_ZERO,
} from '../amd64/index.js';
import { pagedaemon_wakeup, vm_page_count_min, vm_wait_pagedaemon } from './vm_pageout.js';

const TWO_32 = 4294967296;

function stat(k: Kernel, cpu: Cpu, field: keyof typeof vmstats & string): number {
  return cpu.load32(k.vmstats + (vmstats as unknown as Record<string, number>)[field]!);
}

function setStat(k: Kernel, cpu: Cpu, field: keyof typeof vmstats & string, value: number): void {
  cpu.store32(k.vmstats + (vmstats as unknown as Record<string, number>)[field]!, value);
}

function addStat(k: Kernel, cpu: Cpu, field: keyof typeof vmstats & string, delta: number): void {
  setStat(k, cpu, field, stat(k, cpu, field) + delta);
}

export { addStat as vmstatsAdd, stat as vmstatsGet };

/** ++mycpu->gd_cnt.FIELD: a counter of this CPU's own (struct vmmeter). */
export function vmmeterInc(k: Kernel, cpu: Cpu, field: keyof typeof vmmeter & string): void {
  const at = k.gd(cpu.id) + GD_CNT_OFFSET + (vmmeter as unknown as Record<string, number>)[field]!;
  cpu.store32(at, cpu.load32(at) + 1);
}

// --- The (object, pindex) hash ------------------------------------------------------------

function bucket(k: Kernel, object: number, pindex: number): number {
  const h = (Math.imul(Math.floor(object / 64) >>> 0, 0x9e3779b1) + (pindex >>> 0) + Math.floor(pindex / TWO_32)) >>> 0;
  return k.vm_page_buckets + (h & k.vm_page_hash_mask) * 8;
}

/** vm_page_lookup: the page at (object, pindex), or 0. */
export function vm_page_lookup(k: Kernel, cpu: Cpu, object: number, pindex: number): number {
  for (let m = cpu.loadPtr(bucket(k, object, pindex)); m !== 0; m = cpu.loadPtr(m + vm_page.hnext)) {
    if (cpu.loadPtr(m + vm_page.object) === object && cpu.load64(m + vm_page.pindex) === pindex) return m;
  }
  return 0;
}

/** vm_page_insert: puts a page in an object at pindex. */
export function vm_page_insert(k: Kernel, cpu: Cpu, m: number, object: number, pindex: number): void {
  if (cpu.loadPtr(m + vm_page.object) !== 0) panic(cpu, 'vm_page_insert: already inserted');
  cpu.storePtr(m + vm_page.object, object);
  cpu.store64(m + vm_page.pindex, pindex);
  const b = bucket(k, object, pindex);
  cpu.storePtr(m + vm_page.hnext, cpu.loadPtr(b));
  cpu.storePtr(b, m);
  cpu.store32(object + vm_object.resident_page_count, cpu.load32(object + vm_object.resident_page_count) + 1);
  cpu.store32(object + vm_object.generation, cpu.load32(object + vm_object.generation) + 1);
}

/** vm_page_remove: takes a busy page out of its object. */
export function vm_page_remove(k: Kernel, cpu: Cpu, m: number): void {
  const object = cpu.loadPtr(m + vm_page.object);
  if (object === 0) return;
  if ((cpu.load32(m + vm_page.flags) & PG_BUSY) === 0) panic(cpu, 'vm_page_remove: page not busy');
  const b = bucket(k, object, cpu.load64(m + vm_page.pindex));
  let link = b;
  for (let p = cpu.loadPtr(link); p !== 0; link = p + vm_page.hnext, p = cpu.loadPtr(link)) {
    if (p === m) {
      cpu.storePtr(link, cpu.loadPtr(m + vm_page.hnext));
      break;
    }
  }
  cpu.storePtr(m + vm_page.hnext, 0);
  cpu.storePtr(m + vm_page.object, 0);
  cpu.store32(object + vm_object.resident_page_count, cpu.load32(object + vm_object.resident_page_count) - 1);
  cpu.store32(object + vm_object.generation, cpu.load32(object + vm_object.generation) + 1);
}

// --- The free queue -------------------------------------------------------------------------

function queueRemove(k: Kernel, cpu: Cpu, m: number): void {
  const q = k.vm_page_queue_free;
  const next = cpu.loadPtr(m + vm_page.pageq_next);
  const prev = cpu.loadPtr(m + vm_page.pageq_prev);
  if (prev === 0) cpu.storePtr(q + vpgqueue.pl_first, next);
  else cpu.storePtr(prev + vm_page.pageq_next, next);
  if (next === 0) cpu.storePtr(q + vpgqueue.pl_last, prev);
  else cpu.storePtr(next + vm_page.pageq_prev, prev);
  cpu.storePtr(m + vm_page.pageq_next, 0);
  cpu.storePtr(m + vm_page.pageq_prev, 0);
  cpu.store32(q + vpgqueue.lcnt, cpu.load32(q + vpgqueue.lcnt) - 1);
}

function queueInsert(k: Kernel, cpu: Cpu, m: number, atTail: boolean): void {
  const q = k.vm_page_queue_free;
  if (atTail) {
    const last = cpu.loadPtr(q + vpgqueue.pl_last);
    cpu.storePtr(m + vm_page.pageq_prev, last);
    cpu.storePtr(m + vm_page.pageq_next, 0);
    if (last === 0) cpu.storePtr(q + vpgqueue.pl_first, m);
    else cpu.storePtr(last + vm_page.pageq_next, m);
    cpu.storePtr(q + vpgqueue.pl_last, m);
  } else {
    const first = cpu.loadPtr(q + vpgqueue.pl_first);
    cpu.storePtr(m + vm_page.pageq_next, first);
    cpu.storePtr(m + vm_page.pageq_prev, 0);
    if (first === 0) cpu.storePtr(q + vpgqueue.pl_last, m);
    else cpu.storePtr(first + vm_page.pageq_prev, m);
    cpu.storePtr(q + vpgqueue.pl_first, m);
  }
  cpu.store32(q + vpgqueue.lcnt, cpu.load32(q + vpgqueue.lcnt) + 1);
}

/** The next never-used page, set up as a free page; 0 when all have been used. */
function lazyPage(k: Kernel, cpu: Cpu): number {
  const lz = k.vm_page_lazy;
  let seg = cpu.load32(lz + vm_page_lazy.seg);
  let pa = cpu.load64(lz + vm_page_lazy.next);
  for (;;) {
    const end = cpu.load64(k.phys_avail_va + seg * 16 + 8);
    if (end === 0) return 0;
    if (pa < end) break;
    seg++;
    pa = cpu.load64(k.phys_avail_va + seg * 16);
  }
  cpu.store32(lz + vm_page_lazy.seg, seg);
  cpu.store64(lz + vm_page_lazy.next, pa + PAGE_SIZE);
  const m = k.PHYS_TO_VM_PAGE(pa);
  cpu.store64(m + vm_page.phys_addr, pa);
  return m;
}

/**
 * The page vm_page_alloc would take: with prefer_zero the queue's tail if it is a zeroed
 * page, else its head; a never-used page when the queue is empty.
 */
function vm_page_select_free(k: Kernel, cpu: Cpu, preferZero: boolean): number {
  const q = k.vm_page_queue_free;
  if (preferZero) {
    const last = cpu.loadPtr(q + vpgqueue.pl_last);
    if (last !== 0 && (cpu.load32(last + vm_page.flags) & PG_ZERO) !== 0) {
      queueRemove(k, cpu, last);
      return last;
    }
  }
  const first = cpu.loadPtr(q + vpgqueue.pl_first);
  if (first !== 0) {
    queueRemove(k, cpu, first);
    return first;
  }
  return lazyPage(k, cpu);
}

// --- Allocation and freeing ------------------------------------------------------------------

/**
 * vm_page_alloc: a busy page for (object, pindex) — object 0 for a page in no object — or 0
 * when the free count is at or below what this class may dip to. Never sleeps.
 */
export function* vm_page_alloc(k: Kernel, cpu: Cpu, object: number, pindex: number, page_req: number): Task<number> {
  if ((page_req & (VM_ALLOC_NORMAL | VM_ALLOC_SYSTEM | VM_ALLOC_INTERRUPT | VM_ALLOC_QUICK)) === 0) {
    panic(cpu, 'vm_page_alloc: no allocation class in page_req');
  }
  cpu.enter(k.label['vm_page.alloc']);
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  if (object !== 0 && vm_page_lookup(k, cpu, object, pindex) !== 0) panic(cpu, 'vm_page_alloc: page already allocated');
  const free = stat(k, cpu, 'v_free_count');
  const ok =
    free > stat(k, cpu, 'v_free_reserved') ||
    ((page_req & VM_ALLOC_INTERRUPT) !== 0 && free > 0) ||
    ((page_req & VM_ALLOC_SYSTEM) !== 0 && stat(k, cpu, 'v_cache_count') === 0 && free > stat(k, cpu, 'v_interrupt_free_min'));
  let m = 0;
  if (ok) m = vm_page_select_free(k, cpu, (page_req & VM_ALLOC_ZERO) !== 0);
  if (m !== 0) {
    setStat(k, cpu, 'v_free_count', free - 1);
    const wasZero = (cpu.load32(m + vm_page.flags) & PG_ZERO) !== 0;
    cpu.store32(m + vm_page.flags, PG_BUSY | (wasZero ? PG_ZERO : 0));
    cpu.store32(m + vm_page.wire_count, 0);
    cpu.store32(m + vm_page.hold_count, 0);
    cpu.store8(m + vm_page.busy, 0);
    cpu.store8(m + vm_page.valid, 0);
    cpu.store16(m + vm_page.queue, PQ_NONE);
    if (object !== 0) vm_page_insert(k, cpu, m, object, pindex);
  }
  // Success or not, the daemon is woken when paging is needed (the failure also counts
  // vm_pageout_deficit upstream, which only a queue scan would use).
  yield* pagedaemon_wakeup(k, cpu);
  yield* lwkt_reltoken(k, cpu, k.vm_token);
  cpu.leave();
  return m;
}

/** vm_page_wakeup: clears PG_BUSY and wakes whoever waits for the page. */
export function* vm_page_wakeup(k: Kernel, cpu: Cpu, m: number): Task {
  const flags = cpu.load32(m + vm_page.flags);
  cpu.store32(m + vm_page.flags, flags & ~(PG_BUSY | PG_WANTED));
  if ((flags & PG_WANTED) !== 0) yield* wakeup(k, cpu, m);
}

export function vm_page_busy(cpu: Cpu, m: number): void {
  cpu.store32(m + vm_page.flags, cpu.load32(m + vm_page.flags) | PG_BUSY);
}

/** vm_page_free (vm_page_free_toq): returns a busy, unwired page to the free queue. */
export function* vm_page_free(k: Kernel, cpu: Cpu, m: number): Task {
  cpu.enter(k.label['vm_page.free']);
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  vmmeterInc(k, cpu, 'v_tfree');
  const queue = cpu.load16(m + vm_page.queue);
  if (cpu.load8(m + vm_page.busy) !== 0 || queue === PQ_FREE) {
    panic(cpu, queue === PQ_FREE ? 'vm_page_free: freeing free page' : 'vm_page_free: freeing busy page');
  }
  if (queue === PQ_ACTIVE) addStat(k, cpu, 'v_active_count', -1);
  else if (queue === PQ_INACTIVE) addStat(k, cpu, 'v_inactive_count', -1);
  vm_page_remove(k, cpu, m);
  cpu.store8(m + vm_page.valid, 0);
  cpu.store8(m + vm_page.dirty, 0);
  const wired = cpu.load32(m + vm_page.wire_count);
  if (wired !== 0) {
    panic(cpu, wired > 1 ? `vm_page_free: invalid wire count (${wired}), pindex: 0x${cpu.load64(m + vm_page.pindex).toString(16)}` : 'vm_page_free: freeing wired page');
  }
  cpu.store16(m + vm_page.queue, PQ_FREE);
  queueInsert(k, cpu, m, (cpu.load32(m + vm_page.flags) & PG_ZERO) !== 0);
  const free = stat(k, cpu, 'v_free_count') + 1;
  setStat(k, cpu, 'v_free_count', free);
  yield* vm_page_wakeup(k, cpu, m);
  // vm_page_free_wakeup: waiters in vm_wait go once the count is back above the minimum.
  if (cpu.load32(k.vm_pages_waiting) > 0 && free > stat(k, cpu, 'v_free_min')) {
    cpu.store32(k.vm_pages_waiting, 0);
    yield* wakeup(k, cpu, k.vmstats + vmstats.v_free_count);
  }
  yield* lwkt_reltoken(k, cpu, k.vm_token);
  cpu.leave();
}

/** vm_page_wire: one more wiring; the first takes the page off its queue. */
export function vm_page_wire(k: Kernel, cpu: Cpu, m: number): void {
  const n = cpu.load32(m + vm_page.wire_count);
  if (n === 0) {
    const queue = cpu.load16(m + vm_page.queue);
    if (queue === PQ_ACTIVE) addStat(k, cpu, 'v_active_count', -1);
    else if (queue === PQ_INACTIVE) addStat(k, cpu, 'v_inactive_count', -1);
    cpu.store16(m + vm_page.queue, PQ_NONE);
    addStat(k, cpu, 'v_wire_count', 1);
  }
  cpu.store32(m + vm_page.wire_count, n + 1);
}

/** vm_page_unwire: one less wiring; the last puts the page on the active or inactive queue. */
export function vm_page_unwire(k: Kernel, cpu: Cpu, m: number, activate: boolean): void {
  const n = cpu.load32(m + vm_page.wire_count);
  if (n <= 0) panic(cpu, `vm_page_unwire: invalid wire count: ${n}`);
  cpu.store32(m + vm_page.wire_count, n - 1);
  if (n === 1) {
    addStat(k, cpu, 'v_wire_count', -1);
    cpu.store16(m + vm_page.queue, activate ? PQ_ACTIVE : PQ_INACTIVE);
    addStat(k, cpu, activate ? 'v_active_count' : 'v_inactive_count', 1);
  }
}

/** vm_page_activate: an unwired page in use goes on the active queue. */
export function vm_page_activate(k: Kernel, cpu: Cpu, m: number): void {
  if (cpu.load16(m + vm_page.queue) === PQ_ACTIVE) return;
  cpu.store16(m + vm_page.queue, PQ_ACTIVE);
  addStat(k, cpu, 'v_active_count', 1);
}

/** vm_page_zero_fill: zeroes the page (pmap_zero_page, pagezero through the direct map). */
export function vm_page_zero_fill(k: Kernel, cpu: Cpu, m: number): void {
  cpu.enter(k.label['vm_page.zero']);
  pmap_zero_page(k, cpu, cpu.load64(m + vm_page.phys_addr));
  vmmeterInc(k, cpu, 'v_zfod');
  cpu.leave();
}

/**
 * vm_page_grab: the busied page at (object, pindex), allocated if absent. With
 * VM_ALLOC_RETRY it sleeps (on a busy page, or in vm_wait for memory) until it has one and
 * never returns 0; without, it returns 0 instead of sleeping twice.
 */
export function* vm_page_grab(k: Kernel, cpu: Cpu, object: number, pindex: number, allocflags: number): Task<number> {
  yield* lwkt_gettoken(k, cpu, k.vm_token);
  let m = 0;
  for (;;) {
    m = vm_page_lookup(k, cpu, object, pindex);
    if (m !== 0) {
      const flags = cpu.load32(m + vm_page.flags);
      if ((flags & PG_BUSY) !== 0 || cpu.load8(m + vm_page.busy) !== 0) {
        cpu.store32(m + vm_page.flags, flags | PG_WANTED);
        yield* tsleep(k, cpu, m, 0, 'pgrbwt');
        if ((allocflags & VM_ALLOC_RETRY) === 0) {
          m = 0;
          break;
        }
        continue;
      }
      vm_page_busy(cpu, m);
      break;
    }
    m = yield* vm_page_alloc(k, cpu, object, pindex, allocflags & ~VM_ALLOC_RETRY);
    if (m !== 0) break;
    yield* vm_wait(k, cpu);
    if ((allocflags & VM_ALLOC_RETRY) === 0) break;
  }
  yield* lwkt_reltoken(k, cpu, k.vm_token);
  return m;
}

/**
 * Whether CPU `cpuId`'s thread sleeps in vm_wait, waiting for free pages (a functional read,
 * for a driver that finds every CPU asleep and must say why).
 */
export function vm_waiting(k: Kernel, cpuId: number): boolean {
  return k.peekPtr(k.gd(cpuId) + GD_THREAD_OFFSET + thread.td_wchan) === k.vmstats + vmstats.v_free_count;
}

/**
 * vm_wait: wakes the pageout daemon, which runs its pass here if it can (vm_pageout.ts), then
 * sleeps until freed pages bring the count back above the minimum, unless the pass already did.
 */
export function* vm_wait(k: Kernel, cpu: Cpu): Task {
  yield* vm_wait_pagedaemon(k, cpu);
  if (!vm_page_count_min(k, cpu)) return;
  cpu.store32(k.vm_pages_waiting, cpu.load32(k.vm_pages_waiting) + 1);
  yield* tsleep(k, cpu, k.vmstats + vmstats.v_free_count, 0, 'vmwait');
}

/**
 * vm_pageout_free_page_calc (the 2010 formulas): the thresholds the allocation classes
 * respect, set when the pagedaemon would start, at the end of boot.
 */
export function vm_pageout_free_page_calc(k: Kernel, cpu: Cpu): void {
  const pages = stat(k, cpu, 'v_page_count');
  const interrupt_free_min = 2;
  const pageout_page_count = pages < 2000 ? 8 : 16;
  const pageout_free_min = (2 * 65536) / PAGE_SIZE + interrupt_free_min;
  const PQ_L2_SIZE = 256;
  const reserved = pageout_page_count + pageout_free_min + Math.floor(pages / 768) + PQ_L2_SIZE;
  const freeMin = (pages <= 1024 ? 4 : 4 + Math.floor((pages - 1024) / 200)) + reserved;
  setStat(k, cpu, 'v_interrupt_free_min', interrupt_free_min);
  setStat(k, cpu, 'v_pageout_free_min', pageout_free_min);
  setStat(k, cpu, 'v_free_reserved', reserved);
  setStat(k, cpu, 'v_free_severe', Math.floor((freeMin - reserved) / 2) + reserved);
  setStat(k, cpu, 'v_free_min', freeMin);
  const target = (stat(k, cpu, 'v_free_count') > 6144 ? 4 : 2) * freeMin + reserved;
  setStat(k, cpu, 'v_free_target', target);
  // vm_pageout's start: a cache queue target, which paging counts towards (vm_paging_needed).
  setStat(k, cpu, 'v_cache_min', stat(k, cpu, 'v_free_count') > 2048 ? target : 0);
}
