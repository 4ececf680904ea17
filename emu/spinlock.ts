// A spinlock on a 32-bit word in emulated memory (0 free, 1 held), as kernels build them: one
// atomic attempt first (the uncontended path is a single xchg, as DragonFly's _spin_lock and
// FreeBSD's mtx_lock_spin try an atomic before spinning), then test-and-test-and-set: while
// held, spin reading with pause (cpu.spinWhile32), and try again. tools/calib/calib.c's
// spin_acquire is the same loop, so ttas.1cpu and ttas.2cpu compare like with like.
// Contention costs come from the model: the holder's remaining hold time, the lock line's
// transfers between caches, and the spin loop's own turns.

import type { Cpu, Task } from './cpu.js';

/** Acquires the lock word at va: xchg to take it; while held, spin reading until it is free. */
export function* spinAcquire(cpu: Cpu, va: number): Task {
  for (;;) {
    if ((yield* cpu.xchg32(va, 1)) === 0) return;
    yield* cpu.spinWhile32(va, 1);
  }
}

/** Tries once; returns whether the lock was taken. */
export function* spinTryAcquire(cpu: Cpu, va: number): Task<boolean> {
  return (yield* cpu.xchg32(va, 1)) === 0;
}

/** Releases the lock word at va (a plain store, at a synchronization point). */
export function* spinRelease(cpu: Cpu, va: number): Task {
  yield* cpu.storeRelease32(va, 0);
}
