// Per-CPU globaldata and the one thread each CPU runs, in emulated memory.
//
// Models DragonFly sys/sys/globaldata.h (struct globaldata, reached through %gs as mycpu) and
// the fields of struct thread the modeled code uses. Each CPU's globaldata sits in a page of
// its own, as DragonFly's per-CPU private space does. Deviation: one thread per CPU (the CPU's
// coroutine), so curthread never changes and a sleeping thread is an idle CPU.

import { struct } from './struct.js';

export const thread = struct('thread', [
  ['td_gd', 'ptr'],
  ['td_critcount', 'u32'],
  ['td_flags', 'u32'],
  ['td_wchan', 'ptr'], // what the thread sleeps on (0 when running)
  ['td_wmesg', 'u32'], // id of the sleep message
  ['td_wakeups', 'u32'],
]);

export const globaldata = struct('globaldata', [
  ['gd_self', 'ptr'], // mycpu: %gs-relative loads start here
  ['gd_curthread', 'ptr'],
  ['gd_cpuid', 'u32'],
  ['gd_spinlocks', 'u32'], // spinlocks held
  ['gd_vme_base', 'ptr'], // per-CPU cache of reserved vm_map entries (vm_map_entry_reserve)
  ['gd_vme_avail', 'u32'],
  ['gd_cnt_ipis', 'u32'],
  ['gd_invltlb_ret', 'u32'], // acknowledgements of this CPU's TLB shootdowns

]);

/** The globaldata page: the globaldata, then its CPU's thread, cache-line aligned. */
export const GD_THREAD_OFFSET = Math.ceil(globaldata.sizeof / 64) * 64;
/** Then, a line further on, the CPU's struct vmmeter (gd_cnt, structs.ts). */
export const GD_CNT_OFFSET = GD_THREAD_OFFSET + Math.ceil(thread.sizeof / 64) * 64;
