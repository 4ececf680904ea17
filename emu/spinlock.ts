// A test-and-test-and-set spinlock on a 32-bit word in emulated memory (0 free, 1 held): the
// hardware-level pattern kernels build their spinlocks on. Contention costs come from the
// model: the holder's remaining hold time, the lock line's transfers between caches, and the
// spin loop's own turns.

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
