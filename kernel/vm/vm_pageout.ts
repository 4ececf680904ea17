// The pageout daemon's low-memory work: pagedaemon_wakeup when free pages fall below the
// paging threshold, and the daemon's pass, which asks the kernel's caches to give memory back
// (the vm_lowmem handlers, then uma_reclaim).
//
// Models DragonFly BSD sys/vm/vm_page2.h (vm_paging_needed, vm_page_count_min/target: R11) and
// vm_pageout.c's pagedaemon_wakeup (R12), with FreeBSD's vm_pageout_scan of 2005 (the era of
// kernel/vm/uma_core.ts), which begins every pass with EVENTHANDLER_INVOKE(vm_lowmem, 0) and
// then uma_reclaim(), and its vm_pageout loop: while memory is still short it sleeps hz/2
// ("psleep") between passes. Deviations:
// - The daemon has no thread of its own (kmemu runs one thread per CPU). Once woken it runs on
//   the first CPU to reach a switch point: a thread's return to user mode after its trace event
//   (userret, kernel/kern/subr_trap.ts), or a thread that is about to sleep in vm_wait, whose
//   CPU would otherwise be idle. Its cycles are that CPU's, under the path label vm.pageout and
//   outside any event's cost. The scheduler's view of it (woken, running, when its psleep ends)
//   is host state, as a run queue would be; vm_pages_needed and the counters are kernel memory.
// - A pass scans no page queues: the active and inactive queues are counts (vm_page.ts) and
//   every kernel page is wired, so what a pass frees is what the caches give back.
// - The vm_lowmem handlers are a host-side list (EVENTHANDLER_REGISTER); what they do runs on
//   the machine. uma_reclaim runs only once UMA has started (a kernel that replays vm_zone never
//   starts it; FreeBSD always has).
// - hz is FreeBSD's default of 1000, turned into cycles by the machine's clock rate.

import { type Cpu, type Task } from '../../emu/index.js';
import { type Kernel, lwkt_switched, vmstats, wakeup } from '../kern/index.js';
import { uma_booted, uma_reclaim } from './uma_core.js';
import { vmmeterInc } from './vm_page.js';

/** FreeBSD's default HZ: clock ticks per second. */
export const hz = 1000;
/** The daemon's psleep between passes while memory stays short: hz/2 ticks. */
const PSLEEP_TICKS = hz / 2;

/** A handler of the vm_lowmem event (EVENTHANDLER_REGISTER(vm_lowmem, ...)). */
export type VmLowmemHandler = (k: Kernel, cpu: Cpu) => Task;

/** The daemon as the scheduler sees it. */
export interface Pagedaemon {
  /** vm_pages_needed was set since the last pass: the daemon is runnable. */
  runnable: boolean;
  /** A CPU is running the daemon's pass now. */
  running: boolean;
  /** Cycle before which a runnable daemon still sleeps (its hz/2 psleep after a pass). */
  sleepsUntil: number;
  /** The vm_lowmem handlers, in registration order. */
  readonly lowmem: VmLowmemHandler[];
}

const daemons = new WeakMap<Kernel, Pagedaemon>();
/** The pagedaemon of each kernel (machine checkpoints). */
export const pagedaemonJsStates = daemons as WeakMap<Kernel, object>;

export function pagedaemon(k: Kernel): Pagedaemon {
  let d = daemons.get(k);
  if (d === undefined) {
    d = { runnable: false, running: false, sleepsUntil: 0, lowmem: [] };
    daemons.set(k, d);
  }
  return d;
}

/** EVENTHANDLER_REGISTER(vm_lowmem, fn, ...): fn runs at the start of every pass. */
export function vm_lowmem_register(k: Kernel, fn: VmLowmemHandler): void {
  pagedaemon(k).lowmem.push(fn);
}

function stat(k: Kernel, cpu: Cpu, field: 'v_free_count' | 'v_cache_count' | 'v_free_min' | 'v_cache_min' | 'v_free_reserved' | 'v_free_target'): number {
  return cpu.load32(k.vmstats + vmstats[field]);
}

/** vm_paging_needed: free + cache below free_min + cache_min, or free below free_min. */
export function vm_paging_needed(k: Kernel, cpu: Cpu): boolean {
  const avail = stat(k, cpu, 'v_free_count') + stat(k, cpu, 'v_cache_count');
  if (stat(k, cpu, 'v_free_min') + stat(k, cpu, 'v_cache_min') > avail) return true;
  return stat(k, cpu, 'v_free_min') > stat(k, cpu, 'v_free_count');
}

/** vm_page_count_min(0): below the minimum that activates the daemon. */
export function vm_page_count_min(k: Kernel, cpu: Cpu): boolean {
  const free = stat(k, cpu, 'v_free_count');
  return stat(k, cpu, 'v_free_min') > free + stat(k, cpu, 'v_cache_count') || stat(k, cpu, 'v_free_reserved') > free;
}

/** vm_page_count_target: below the free target the daemon works towards. */
export function vm_page_count_target(k: Kernel, cpu: Cpu): boolean {
  const free = stat(k, cpu, 'v_free_count');
  return stat(k, cpu, 'v_free_target') > free + stat(k, cpu, 'v_cache_count') || stat(k, cpu, 'v_free_reserved') > free;
}

/** Sets vm_pages_needed and wakes the daemon, unless it is already awake or it is the caller. */
function* wake_daemon(k: Kernel, cpu: Cpu, d: Pagedaemon): Task {
  if (d.running) return;
  if (cpu.load32(k.vm_pages_needed) === 0) {
    cpu.store32(k.vm_pages_needed, 1);
    yield* wakeup(k, cpu, k.vm_pages_needed);
  }
  d.runnable = true;
}

/** pagedaemon_wakeup: wakes the daemon when paging is needed (vm_page_alloc calls it). */
export function* pagedaemon_wakeup(k: Kernel, cpu: Cpu): Task {
  if (vm_paging_needed(k, cpu)) yield* wake_daemon(k, cpu, pagedaemon(k));
}

/**
 * vm_wait's wakeup of the daemon (under vm_page_count_target, and ending its psleep early, as
 * DragonFly's wakeup does), then the daemon's pass on this CPU if it can run: the thread is
 * about to sleep, so the pass runs as the daemon's thread would, switched in (lwkt_switched:
 * the sleeper's tokens let go for it).
 */
export function* vm_wait_pagedaemon(k: Kernel, cpu: Cpu): Task {
  const d = pagedaemon(k);
  if (!vm_page_count_target(k, cpu)) return;
  yield* wake_daemon(k, cpu, d);
  if (d.running) return;
  d.sleepsUntil = 0;
  yield* lwkt_switched(k, cpu, () => vm_pageout(k, cpu));
}

/** Whether the daemon would run if the scheduler gave it this CPU now (a host-side check). */
export function pagedaemon_ready(k: Kernel, cpu: Cpu): boolean {
  const d = daemons.get(k);
  return d !== undefined && d.runnable && !d.running && cpu.clock >= d.sleepsUntil;
}

/**
 * vm_pageout_scan's low-memory part, the whole of a pass here: the vm_lowmem handlers, then
 * uma_reclaim for what they freed. Returns the pages UMA gave back.
 */
export function* vm_pageout_scan(k: Kernel, cpu: Cpu): Task<number> {
  const d = pagedaemon(k);
  for (const fn of d.lowmem) yield* fn(k, cpu);
  return uma_booted(k) ? yield* uma_reclaim(k, cpu) : 0;
}

/**
 * One turn of the daemon's loop on this CPU: counted as a wakeup (v_pdwakeups), a pass, then
 * vm_pages_needed cleared once paging is no longer needed, or else a psleep of hz/2 before the
 * next pass.
 */
export function* vm_pageout(k: Kernel, cpu: Cpu): Task {
  const d = pagedaemon(k);
  d.running = true;
  d.runnable = false;
  cpu.enter(k.label['vm.pageout']);
  vmmeterInc(k, cpu, 'v_pdwakeups');
  yield* vm_pageout_scan(k, cpu);
  if (vm_paging_needed(k, cpu)) {
    d.runnable = true;
    d.sleepsUntil = cpu.clock + Math.round((PSLEEP_TICKS / hz) * k.machine.config.clockGHz * 1e9);
  } else {
    cpu.store32(k.vm_pages_needed, 0);
  }
  cpu.leave();
  d.running = false;
}
