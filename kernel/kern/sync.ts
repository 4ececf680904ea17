// Kernel synchronization on the machine: critical sections, spinlocks, tsleep/wakeup, lwkt
// tokens, a blocking lock (lockmgr) and condition variables — every one of them words in
// emulated memory, acquired with the CPU's atomics, so contention costs come from the model.
//
// Models DragonFly BSD sys/kern/kern_spinlock.c + sys/sys/spinlock2.h, kern_synch.c
// (tsleep, tsleep_interlock, wakeup, wakeup_one), lwkt_token.c, kern_lock.c (lockmgr) and
// kern_condvar.c. Deviations:
// - spin_lock is an atomic attempt first, then test-and-test-and-set (emu/spinlock.ts: xchg;
//   while held, spin reading with pause, and try again) on the spinlock's first word, as
//   upstream's _spin_lock tries atomic_fetchadd_int on counta before spinning in
//   _spin_lock_contested (upstream counts shared and exclusive holders in counta/countb); it
//   enters a critical section and counts gd_spinlocks as upstream does.
// - One thread per CPU: a thread that sleeps leaves its CPU idle. The sleep queues are one
//   global hash of buckets, each a spinlock and a mask of CPUs sleeping on idents that hash
//   there (upstream keeps per-CPU hashes and a global cpumask per bucket).
// - A remote wakeup makes the sleeper runnable one IPI latency after the wakeup; the waker
//   does not wait for it.
// - lockmgr is exclusive only, with a waiter flag, enough for vm_map_lock.
// - Tokens are exclusive, recursive for their owner (a depth in the token instead of one
//   tokref per acquisition), and released while their owner sleeps and taken again, at the
//   same depth, when it wakes, as upstream does (lwkt_relalltokens / lwkt_getalltokens).

import { type Cpu, K, type Machine, type Task, spinAcquire, spinRelease } from '../../emu/index.js';
import { GD_THREAD_OFFSET, globaldata, thread } from './globaldata.js';
import { panic } from './panic.js';
import { array, struct } from './struct.js';

export const spinlock = struct('spinlock', [
  ['counta', 'u32'],
  ['countb', 'u32'],
]);

export const lwkt_token = struct('lwkt_token', [
  ['t_ref', 'ptr'], // owning thread, 0 when free
  ['t_count', 'u32'], // recursion depth of the owner
  ['t_collisions', 'u32'],
  ['t_desc', 'u32'],
]);

/** struct lock: lk_lock is 0 when free, else (owner cpu + 1) | LK_WAITERS. */
export const lock = struct('lock', [
  ['lk_lock', 'u32'],
  ['lk_flags', 'u32'],
  ['lk_wmesg', 'u32'],
]);
const LK_WAITERS = 0x80000000;

export const cv = struct('cv', [
  ['cv_waiters', 'u32'],
  ['cv_desc', 'u32'],
]);

/** A sleep-queue bucket: its spinlock and the CPUs sleeping on idents hashed to it. */
export const slpque = struct('slpque', [
  ['sq_spin', 'u64'],
  ['sq_cpumask', array('u32', 2)],
]);
export const SLPQUE_BUCKETS = 64;

/** td_toks: tokens the thread holds, released while it sleeps. */
export const MAXTOKS = 8;
/** Offset in the token list of td_tokdepth[MAXTOKS] (u32): each token's depth while asleep. */
const TD_TOKDEPTH = 8 * MAXTOKS;

/** tsleep flags. */
export const PINTERLOCKED = 0x400;

/** What the synchronization code needs of the kernel it runs in. */
export interface SyncHost {
  readonly machine: Machine;
  /** KVA of a CPU's globaldata (its thread follows at GD_THREAD_OFFSET). */
  gd(cpu: number): number;
  /** KVA of the sleep-queue table (SLPQUE_BUCKETS buckets). */
  readonly slpqueBase: number;
  /** KVA of a thread's token list (MAXTOKS pointers, then MAXTOKS u32 depths) for a CPU. */
  tdToks(cpu: number): number;
}

export function curthread(host: SyncHost, cpu: Cpu): number {
  return host.gd(cpu.id) + GD_THREAD_OFFSET;
}

// --- Critical sections -------------------------------------------------------------------

/** crit_enter: ++curthread->td_critcount (curthread read through mycpu). */
export function crit_enter(host: SyncHost, cpu: Cpu): void {
  const td = cpu.loadPtr(host.gd(cpu.id) + globaldata.gd_curthread);
  cpu.store32(td + thread.td_critcount, cpu.load32(td + thread.td_critcount) + 1);
}

export function crit_exit(host: SyncHost, cpu: Cpu): void {
  const td = cpu.loadPtr(host.gd(cpu.id) + globaldata.gd_curthread);
  const n = cpu.load32(td + thread.td_critcount);
  if (n === 0) panic(cpu, 'crit_exit: critical section count underflow');
  cpu.store32(td + thread.td_critcount, n - 1);
}

// --- Spinlocks --------------------------------------------------------------------------

// Instruction cost (cpu.work): as gcc 13 -O2 compiles an inline TTAS spin_lock on amd64,
// uncontended: mycpu, the value to exchange, the test and the branch taken past the spin loop
// (5 instructions besides the accesses counted here, less the 2 that are read-modify-writes of
// memory, which count as one instruction there and two accesses here); spin_unlock's mycpu
// load and plain stores are all accesses.
export function* spin_lock(host: SyncHost, cpu: Cpu, spin: number): Task {
  crit_enter(host, cpu);
  const gd = host.gd(cpu.id);
  cpu.store32(gd + globaldata.gd_spinlocks, cpu.load32(gd + globaldata.gd_spinlocks) + 1);
  yield* spinAcquire(cpu, spin + spinlock.counta);
  cpu.work(3);
  cpu.branch();
}

export function* spin_unlock(host: SyncHost, cpu: Cpu, spin: number): Task {
  yield* spinRelease(cpu, spin + spinlock.counta);
  const gd = host.gd(cpu.id);
  cpu.store32(gd + globaldata.gd_spinlocks, cpu.load32(gd + globaldata.gd_spinlocks) - 1);
  crit_exit(host, cpu);
}

// --- tsleep / wakeup ----------------------------------------------------------------------

function bucketOf(host: SyncHost, ident: number): number {
  // Idents are addresses: drop the low bits that every aligned object shares.
  const h = (Math.floor(ident / 64) ^ Math.floor(ident / 4096)) & (SLPQUE_BUCKETS - 1);
  return host.slpqueBase + h * slpque.sizeof;
}

function maskWord(cpu: number): [number, number] {
  return [slpque.sq_cpumask + (cpu < 32 ? 0 : 4), 1 << (cpu & 31)];
}

/** Registers the thread as sleeping on ident, so a wakeup from now on is not lost. */
export function* tsleep_interlock(host: SyncHost, cpu: Cpu, ident: number): Task {
  const b = bucketOf(host, ident);
  yield* spin_lock(host, cpu, b + slpque.sq_spin);
  cpu.storePtr(curthread(host, cpu) + thread.td_wchan, ident);
  const [off, bit] = maskWord(cpu.id);
  cpu.store32(b + off, (cpu.load32(b + off) | bit) >>> 0);
  yield* spin_unlock(host, cpu, b + slpque.sq_spin);
}

/**
 * Sleeps on ident until a wakeup (no timeouts). With PINTERLOCKED the caller has already
 * called tsleep_interlock; a wakeup since then makes this return at once. Tokens the thread
 * holds are released for the sleep and taken again before returning.
 */
export function* tsleep(host: SyncHost, cpu: Cpu, ident: number, flags: number, wmesg: string): Task<number> {
  if ((flags & PINTERLOCKED) === 0) yield* tsleep_interlock(host, cpu, ident);
  const held = lwkt_relalltokens(host, cpu);
  const td = curthread(host, cpu);
  yield* cpu.sync(); // a wakeup from a CPU behind in time must be seen first
  if (cpu.loadPtr(td + thread.td_wchan) !== 0) {
    yield* cpu.sleep(`tsleep "${wmesg}" on 0x${ident.toString(16)}`);
  }
  cpu.store32(td + thread.td_wakeups, cpu.load32(td + thread.td_wakeups) + 1);
  if (held > 0) yield* lwkt_getalltokens(host, cpu);
  return 0;
}

/** Wakes every thread sleeping on ident (wakeup_one: the first only). */
export function* wakeup(host: SyncHost, cpu: Cpu, ident: number, one = false): Task {
  const b = bucketOf(host, ident);
  yield* spin_lock(host, cpu, b + slpque.sq_spin);
  const m = host.machine;
  let woken = 0;
  for (let word = 0; word < 2 && !(one && woken > 0); word++) {
    const at = b + slpque.sq_cpumask + 4 * word;
    const mask = cpu.load32(at);
    let rest = mask;
    let keep = mask;
    while (rest !== 0 && !(one && woken > 0)) {
      const bit = rest & -rest;
      rest = (rest ^ bit) >>> 0;
      const p = 31 - Math.clz32(bit) + 32 * word;
      const td = curthread(host, m.cpu(p));
      if (cpu.loadPtr(td + thread.td_wchan) !== ident) continue;
      cpu.storePtr(td + thread.td_wchan, 0);
      keep = (keep & ~bit) >>> 0;
      woken++;
      if (p !== cpu.id) {
        cpu.count(K['ipi.sent']);
        m.wake(p, cpu.clock + m.config.cpu.ipiLatency);
      }
    }
    if (keep !== mask) cpu.store32(at, keep);
  }
  yield* spin_unlock(host, cpu, b + slpque.sq_spin);
}

/** Undoes tsleep_interlock for a thread that decided not to sleep after all. */
export function* tsleep_remove(host: SyncHost, cpu: Cpu, ident: number): Task {
  const b = bucketOf(host, ident);
  yield* spin_lock(host, cpu, b + slpque.sq_spin);
  const td = curthread(host, cpu);
  if (cpu.loadPtr(td + thread.td_wchan) === ident) cpu.storePtr(td + thread.td_wchan, 0);
  const [off, bit] = maskWord(cpu.id);
  cpu.store32(b + off, (cpu.load32(b + off) & ~bit) >>> 0);
  yield* spin_unlock(host, cpu, b + slpque.sq_spin);
}

export function* wakeup_one(host: SyncHost, cpu: Cpu, ident: number): Task {
  yield* wakeup(host, cpu, ident, true);
}

// --- lwkt tokens --------------------------------------------------------------------------

export function* lwkt_gettoken(host: SyncHost, cpu: Cpu, tok: number): Task {
  const td = curthread(host, cpu);
  if (cpu.loadPtr(tok + lwkt_token.t_ref) === td) {
    cpu.store32(tok + lwkt_token.t_count, cpu.load32(tok + lwkt_token.t_count) + 1);
    return;
  }
  for (;;) {
    if ((yield* cpu.cmpxchgPtr(tok + lwkt_token.t_ref, 0, td)) === 0) break;
    cpu.store32(tok + lwkt_token.t_collisions, cpu.load32(tok + lwkt_token.t_collisions) + 1);
    // Upstream switches to another thread and retries; with one thread per CPU that is a
    // wait for the owner to let go.
    yield* spinWhilePtr(cpu, tok + lwkt_token.t_ref);
  }
  cpu.store32(tok + lwkt_token.t_count, 1);
  const toks = host.tdToks(cpu.id);
  for (let i = 0; i < MAXTOKS; i++) {
    if (cpu.loadPtr(toks + 8 * i) === 0) {
      cpu.storePtr(toks + 8 * i, tok);
      return;
    }
  }
  panic(cpu, `lwkt_gettoken: thread holds more than ${MAXTOKS} tokens`);
}

export function* lwkt_reltoken(host: SyncHost, cpu: Cpu, tok: number): Task {
  const td = curthread(host, cpu);
  if (cpu.loadPtr(tok + lwkt_token.t_ref) !== td) panic(cpu, 'lwkt_reltoken: token not held');
  const n = cpu.load32(tok + lwkt_token.t_count);
  if (n > 1) {
    cpu.store32(tok + lwkt_token.t_count, n - 1);
    return;
  }
  cpu.store32(tok + lwkt_token.t_count, 0);
  const toks = host.tdToks(cpu.id);
  for (let i = 0; i < MAXTOKS; i++) {
    if (cpu.loadPtr(toks + 8 * i) === tok) {
      cpu.storePtr(toks + 8 * i, 0);
      break;
    }
  }
  yield* cpu.xchgPtr(tok + lwkt_token.t_ref, 0);
}

function* spinWhilePtr(cpu: Cpu, va: number): Task {
  // A pointer word is busy while non-zero; its low half alone says so for kernel pointers.
  while (cpu.loadPtr(va) !== 0) {
    yield* cpu.sync();
    if (cpu.loadPtr(va) === 0) return;
    yield* cpu.waitForLineWrite(`waiting for the token at 0x${va.toString(16)}`);
  }
}

/**
 * lwkt_relalltokens: lets go of every token the thread holds, for a sleep. The thread's list
 * keeps them, each with its recursion depth (td_tokdepth), for lwkt_getalltokens to take them
 * back as they were: DragonFly's td_toks_array of tokrefs survives the switch the same way.
 * Returns how many it let go of (DragonFly's td_toks_stop - td_toks_base).
 */
export function lwkt_relalltokens(host: SyncHost, cpu: Cpu): number {
  const toks = host.tdToks(cpu.id);
  let held = 0;
  for (let i = 0; i < MAXTOKS; i++) {
    const tok = cpu.loadPtr(toks + 8 * i);
    if (tok === 0) continue;
    held++;
    cpu.store32(toks + TD_TOKDEPTH + 4 * i, cpu.load32(tok + lwkt_token.t_count));
    cpu.store32(tok + lwkt_token.t_count, 0);
    // A plain store: the sleep that follows is the synchronization point.
    cpu.storePtr(tok + lwkt_token.t_ref, 0);
  }
  return held;
}

/** lwkt_getalltokens: takes back, in list order, the tokens lwkt_relalltokens let go of. */
export function* lwkt_getalltokens(host: SyncHost, cpu: Cpu): Task {
  const td = curthread(host, cpu);
  const toks = host.tdToks(cpu.id);
  for (let i = 0; i < MAXTOKS; i++) {
    const tok = cpu.loadPtr(toks + 8 * i);
    if (tok === 0) continue;
    for (;;) {
      if ((yield* cpu.cmpxchgPtr(tok + lwkt_token.t_ref, 0, td)) === 0) break;
      cpu.store32(tok + lwkt_token.t_collisions, cpu.load32(tok + lwkt_token.t_collisions) + 1);
      yield* spinWhilePtr(cpu, tok + lwkt_token.t_ref);
    }
    cpu.store32(tok + lwkt_token.t_count, cpu.load32(toks + TD_TOKDEPTH + 4 * i));
  }
}

/** What lwkt_switched needs besides the SyncHost: functional reads and writes of kernel memory. */
export interface SwitchHost extends SyncHost {
  peek32(va: number): number;
  poke32(va: number, value: number): void;
}

/**
 * Runs `body` on this CPU as another kernel thread runs while the current one is switched out
 * (to sleep): the current thread's tokens are let go (lwkt_relalltokens) and its token list set
 * aside, so the other thread starts holding none; afterwards the list comes back and the tokens
 * are taken again. kmemu has one thread per CPU, so instead of changing curthread the switch
 * swaps the list, functionally: a real switch copies nothing, so this costs nothing either.
 */
export function* lwkt_switched<T>(host: SwitchHost, cpu: Cpu, body: () => Task<T>): Task<T> {
  const held = lwkt_relalltokens(host, cpu);
  const toks = host.tdToks(cpu.id);
  const words = (TD_TOKDEPTH + 4 * MAXTOKS) / 4;
  const saved: number[] = [];
  for (let i = 0; i < words; i++) {
    saved.push(host.peek32(toks + 4 * i));
    host.poke32(toks + 4 * i, 0);
  }
  const r = yield* body();
  for (let i = 0; i < words; i++) {
    if (i < TD_TOKDEPTH / 4 && host.peek32(toks + 4 * i) !== 0) panic(cpu, 'lwkt_switched: the other thread still holds a token');
    host.poke32(toks + 4 * i, saved[i]!);
  }
  if (held > 0) yield* lwkt_getalltokens(host, cpu);
  return r;
}

// --- lockmgr (exclusive) ------------------------------------------------------------------

export function* lockmgr_exclusive(host: SyncHost, cpu: Cpu, lk: number, wmesg: string): Task {
  const me = cpu.id + 1;
  for (;;) {
    const old = yield* cpu.cmpxchg32(lk + lock.lk_lock, 0, me);
    if (old === 0) return;
    if ((old & ~LK_WAITERS) === me) panic(cpu, `lockmgr: locking against myself (${wmesg})`);
    yield* tsleep_interlock(host, cpu, lk);
    const seen = yield* cpu.cmpxchg32(lk + lock.lk_lock, old, (old | LK_WAITERS) >>> 0);
    if (seen === old || seen === ((old | LK_WAITERS) >>> 0)) {
      yield* tsleep(host, cpu, lk, PINTERLOCKED, wmesg);
    } else {
      // The lock changed hands meanwhile: try again instead of sleeping.
      yield* tsleep_remove(host, cpu, lk);
    }
  }
}

export function* lockmgr_release(host: SyncHost, cpu: Cpu, lk: number): Task {
  const old = yield* cpu.xchg32(lk + lock.lk_lock, 0);
  if ((old & ~LK_WAITERS) !== cpu.id + 1) panic(cpu, `lockmgr: pid ${cpu.id} not exclusive lock holder ${(old & ~LK_WAITERS) - 1} unlocking`);
  if ((old & LK_WAITERS) !== 0) yield* wakeup(host, cpu, lk);
}

// --- Condition variables ------------------------------------------------------------------

/** cv_wait: sleeps on cv, releasing the spinlock interlock meanwhile. */
export function* cv_wait(host: SyncHost, cpu: Cpu, c: number, interlock: number, wmesg: string): Task {
  cpu.store32(c + cv.cv_waiters, cpu.load32(c + cv.cv_waiters) + 1);
  yield* tsleep_interlock(host, cpu, c);
  yield* spin_unlock(host, cpu, interlock);
  yield* tsleep(host, cpu, c, PINTERLOCKED, wmesg);
  yield* spin_lock(host, cpu, interlock);
}

/** cv_signal (one) / cv_broadcast (all); the caller holds the interlock. */
export function* cv_signal(host: SyncHost, cpu: Cpu, c: number, all = false): Task {
  const waiters = cpu.load32(c + cv.cv_waiters);
  if (waiters === 0) return;
  cpu.store32(c + cv.cv_waiters, all ? 0 : waiters - 1);
  yield* wakeup(host, cpu, c, !all);
}
