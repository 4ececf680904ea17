// Composite coherence figures measured on the emulated machine by small programs, the same
// microbenchmarks this machine's own figures come from (the table): a line handed from
// one CPU to the other and back, locked increments of one word, a TTAS spinlock taken and
// released in a loop. Each returns cycles per operation after a warm-up.
import type { Cpu, Machine, Task } from '../../emu/index.js';
import { VA_4K, testMachine } from './helpers.js';

export const WORD = VA_4K + 0x100;
const WARMUP = 20;

/** A machine of the preset with WORD's page warm in both CPUs' TLBs (D bit set). */
export function calibMachine(preset: string, overrides: object = {}): Machine {
  const { m } = testMachine({ cpus: 2, ...overrides }, preset);
  m.run([
    function* (cpu: Cpu): Task {
      cpu.store32(WORD + 64, 0);
      yield* cpu.storeRelease32(WORD, 0);
    },
    function* (cpu: Cpu): Task {
      cpu.store32(WORD + 128, 0);
      yield* cpu.sync();
    },
  ]);
  m.barrier();
  return m;
}

/**
 * One-way handoff: CPU0 waits for 2i and writes 2i+1, CPU1 waits for 2i+1 and writes 2i+2;
 * cycles per one-way hop. `pause`: the wait is the kernel's spin loop (spinWhile32: load,
 * pause, load...); otherwise a busy loop of loads.
 */
export function handoff(m: Machine, rounds: number, pause: boolean): number {
  let t0 = 0;
  let t1 = 0;
  const player = (me: number) =>
    function* (cpu: Cpu): Task {
      for (let i = 0; i < WARMUP + rounds; i++) {
        if (me === 0 && i === WARMUP) t0 = cpu.clock;
        const want = 2 * i + me;
        if (pause) {
          let v = want - 1;
          while (v !== want) v = yield* cpu.spinWhile32(WORD, v);
        } else {
          for (;;) {
            yield* cpu.syncAccess(WORD, false);
            if (cpu.load32(WORD) === want) break;
          }
        }
        yield* cpu.storeRelease32(WORD, want + 1);
      }
      if (me === 0) {
        let v = 0;
        const last = 2 * (WARMUP + rounds);
        while (v !== last) {
          yield* cpu.sync();
          v = cpu.load32(WORD);
        }
        t1 = cpu.clock;
      }
    };
  m.run([player(0), player(1)]);
  return (t1 - t0) / (2 * rounds);
}

/** Locked increments of WORD on `cpus` CPUs (1 or 2), n each: aggregate cycles per op. */
export function xaddLoop(m: Machine, n: number, cpus: number): number {
  let t0 = 0;
  const prog = function* (cpu: Cpu): Task {
    for (let i = 0; i < WARMUP; i++) yield* cpu.xadd32(WORD, 1);
  };
  m.run(m.cpus.map((c) => (c.id < cpus ? prog : undefined)));
  m.barrier();
  t0 = m.makespan;
  const body = function* (cpu: Cpu): Task {
    for (let i = 0; i < n; i++) yield* cpu.xadd32(WORD, 1);
  };
  m.run(m.cpus.map((c) => (c.id < cpus ? body : undefined)));
  return (m.makespan - t0) / (n * cpus);
}

/** Test-and-test-and-set: spin reading until free, then xchg; release with a plain store. */
export function* ttasAcquire(cpu: Cpu, va: number): Task {
  for (;;) {
    if ((yield* cpu.spinWhile32(va, 1)) === 0 && (yield* cpu.xchg32(va, 1)) === 0) return;
  }
}

/** TTAS acquire+release of one lock, n times on each of `cpus` CPUs: aggregate cycles per pair. */
export function ttasLoop(m: Machine, n: number, cpus: number): number {
  const loop = (count: number) =>
    function* (cpu: Cpu): Task {
      for (let i = 0; i < count; i++) {
        yield* ttasAcquire(cpu, WORD);
        yield* cpu.storeRelease32(WORD, 0);
      }
    };
  m.run(m.cpus.map((c) => (c.id < cpus ? loop(WARMUP) : undefined)));
  m.barrier();
  const t0 = m.makespan;
  m.run(m.cpus.map((c) => (c.id < cpus ? loop(n) : undefined)));
  return (m.makespan - t0) / (n * cpus);
}

/** The composites on a preset. */
export function composites(preset: string, overrides: object = {}): Record<string, number> {
  return {
    'handoff.oneway': handoff(calibMachine(preset, overrides), 200, false),
    'handoff.oneway.pause': handoff(calibMachine(preset, overrides), 200, true),
    'atomic.uncontended': xaddLoop(calibMachine(preset, overrides), 400, 1),
    'atomic.contended2': xaddLoop(calibMachine(preset, overrides), 400, 2),
    'ttas.1cpu': ttasLoop(calibMachine(preset, overrides), 400, 1),
    'ttas.2cpu': ttasLoop(calibMachine(preset, overrides), 400, 2),
  };
}
