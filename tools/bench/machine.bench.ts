// Benchmarks of the machine itself, with the full memory model (TLBs, walks, coherent caches):
// - loads and stores by one CPU within a 32 KiB working set (the per-access hot path);
// - the same over 4 MiB (TLB and cache misses, walks);
// - four CPUs taking turns on one TTAS spinlock around a small critical section (atomics,
//   synchronization points, spin waits, the lock line moving between caches).

import type Benchmark from 'benchmark';
import {
  KERNBASE, Machine, PAGE_4K, PageTableEditor, loadMachineConfig, spinAcquire, spinRelease, type Cpu, type Task,
} from '../../emu/index.js';
import { registerBenchSuite } from './suite.js';

const ACCESSES = 1_000_000;
const LOCK_ROUNDS = 20_000;

function mappedMachine(cpus: number): Machine {
  const m = new Machine(loadMachineConfig('amd64-host', { cpus }));
  let next = 0x10_0000;
  const alloc = () => ((next += 4096), next - 4096);
  const pt = new PageTableEditor(m.mem, alloc);
  const cr3 = alloc();
  pt.mapRange(cr3, KERNBASE, 0x100_0000, 4 << 20, PAGE_4K);
  for (const c of m.cpus) c.setCr3(cr3);
  return m;
}

function accessLoop(span: number) {
  return function* (cpu: Cpu): Task {
    let x = 12345;
    for (let i = 0; i < ACCESSES; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const va = KERNBASE + (((x >>> 8) % span) & ~7);
      if ((x & 0x30) === 0) cpu.store64(va, i);
      else cpu.load64(va);
    }
  };
}

function lockRounds(cpu: Cpu): Task {
  return (function* () {
    const lock = KERNBASE;
    for (let i = 0; i < LOCK_ROUNDS / 4; i++) {
      yield* cpu.checkpoint();
      yield* spinAcquire(cpu, lock);
      cpu.store64(KERNBASE + 64, i);
      cpu.compute(50);
      yield* spinRelease(cpu, lock);
      cpu.load64(KERNBASE + 4096 + cpu.id * 64);
      cpu.compute(200);
    }
  })();
}

registerBenchSuite({
  name: 'machine',
  add: (suite: Benchmark.Suite) => {
    suite.add('1 CPU, loads/stores in 32 KiB', () => mappedMachine(1).run([accessLoop(32 << 10)]), { minSamples: 5 });
    suite.add('1 CPU, loads/stores in 4 MiB', () => mappedMachine(1).run([accessLoop(4 << 20)]), { minSamples: 5 });
    suite.add('4 CPUs, one contended spinlock', () => mappedMachine(4).runAll(lockRounds), { minSamples: 5 });
  },
  describe: (b) => {
    const lock = (b.name ?? '').includes('spinlock');
    const perRun = lock ? LOCK_ROUNDS : ACCESSES;
    const unit = lock ? 'lock rounds/s' : 'accesses/s';
    return `${((b.hz * perRun) / 1e6).toFixed(2)} M ${unit}`;
  },
});
