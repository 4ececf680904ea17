// The out-of-order core (emu/core.ts): exact cycles for each rule of its table, on the
// coursework machine made out of order: 4 instructions a cycle, 2 load ports, 1 store port,
// 2 outstanding misses, a 64-instruction window. L1D hit 2, DRAM 100, locked op 10.
import { describe, expect, it } from 'vitest';
import type { Cpu, Machine, Task } from '../../emu/index.js';
import { VA_4K, testMachine } from './helpers.js';

const OOO = { cpu: { issueWidth: 4, loadPorts: 2, storePorts: 1, mlp: 2, robSize: 64 } };

/** Runs body on CPU 0 after a drain, and returns the cycles it took up to its final drain. */
function timed(m: Machine, body: (cpu: Cpu) => Task | void): { cycles: number; delta: (name: Parameters<ReturnType<Machine['snapshot']>['total']>[0]) => number } {
  let cycles = 0;
  let before = m.snapshot();
  m.run([
    function* (cpu: Cpu): Task {
      cpu.drain();
      before = m.snapshot();
      const t0 = cpu.clock;
      const r = body(cpu);
      if (r !== undefined) yield* r;
      cpu.drain();
      cycles = cpu.clock - t0;
    },
  ]);
  const d = m.snapshot().minus(before);
  return { cycles, delta: (name) => d.total(name) };
}

/**
 * A machine whose first page's first `lines` lines are in CPU 0's L1D and whose TLB maps it,
 * dirty (a first store through a clean entry would walk again to set D).
 */
function warm(lines: number, cpu: object = {}): Machine {
  const { m } = testMachine({ cpu: { ...OOO.cpu, ...cpu } });
  m.run([
    function* (cpu: Cpu): Task {
      cpu.store64(VA_4K + 56, 0);
      for (let i = 0; i < lines; i++) cpu.load64(VA_4K + 64 * i);
    },
  ]);
  return m;
}

describe('core', () => {
  it('a pointer chase costs the load-to-use latency per load', () => {
    const m = warm(9);
    m.run([
      function* (cpu: Cpu): Task {
        for (let i = 0; i < 8; i++) cpu.storePtr(VA_4K + 64 * i, VA_4K + 64 * (i + 1));
      },
    ]);
    const r = timed(m, (cpu) => {
      let p = VA_4K;
      for (let i = 0; i < 8; i++) p = cpu.loadPtr(p);
      expect(p).toBe(VA_4K + 64 * 8);
    });
    expect(r.cycles).toBe(8 * 2);
    expect(r.delta('mem.loads')).toBe(8);
    expect(r.delta('l1d.readHit')).toBe(8);
    expect(r.delta('cycles')).toBe(16);
  });

  it('independent loads that hit cost their throughput: ceil(n / loadPorts) - 1 cycles, then the last one\'s latency', () => {
    const m = warm(12);
    const r = timed(m, (cpu) => {
      for (let i = 0; i < 12; i++) cpu.load64(VA_4K + 64 * i);
    });
    expect(r.cycles).toBe(12 / 2 - 1 + 2);
    expect(r.delta('l1d.readHit')).toBe(12);
    expect(r.delta('mem.cycles')).toBe(7);
  });

  it('independent stores that hit cost one store port a cycle', () => {
    const m = warm(6);
    const r = timed(m, (cpu) => {
      for (let i = 0; i < 6; i++) cpu.store64(VA_4K + 64 * i, i);
    });
    // One store port: six dispatch cycles; the last store commits a cycle after it executes (a
    // store has no load-to-use latency).
    expect(r.cycles).toBe(6 - 1 + 1);
    expect(r.delta('l1d.writeHit')).toBe(6);
  });

  it('independent misses overlap up to the MLP: four DRAM misses with two miss slots cost two latencies', () => {
    const m = warm(1);
    const r = timed(m, (cpu) => {
      for (let i = 1; i <= 4; i++) cpu.load64(VA_4K + 64 * i);
    });
    expect(r.cycles).toBe(2 * 100);
    expect(r.delta('dram.read')).toBe(4);
    expect(r.delta('l1d.readMiss')).toBe(4);
  });

  it('a locked operation drains: it waits for the outstanding misses, then costs its access and lockedOpLatency', () => {
    const m = warm(1);
    const r = timed(m, function* (cpu) {
      cpu.load64(VA_4K + 64);
      cpu.load64(VA_4K + 128);
      expect(yield* cpu.xadd32(VA_4K, 1)).toBe(0);
      cpu.load64(VA_4K + 8);
    });
    // Both misses are back at 100; the xadd's line is in L1D (E): 2 + 10. The load after it
    // opens a new cycle at 112 and completes at 114.
    expect(r.cycles).toBe(100 + 2 + 10 + 2);
    expect(r.delta('mem.atomics')).toBe(1);
  });

  it('cpu.work(n) costs ceil(n / issueWidth) cycles from a fresh cycle and fills a started one first', () => {
    const m = warm(1);
    const r = timed(m, (cpu) => {
      const t0 = cpu.clock;
      cpu.work(10);
      expect(cpu.clock - t0).toBe(3);
      cpu.work(2);
      expect(cpu.clock - t0).toBe(3);
      cpu.work(1);
      expect(cpu.clock - t0).toBe(4);
    });
    expect(r.cycles).toBe(4);
    expect(r.delta('cpu.work')).toBe(13);
    expect(r.delta('mem.cycles')).toBe(0);
  });

  it('the page walk of a dependent load starts when its address is ready, and adds to its latency', () => {
    const m = warm(1);
    m.run([function* (cpu: Cpu): Task { cpu.storePtr(VA_4K, VA_4K + 5 * 4096); }]);
    const r = timed(m, (cpu) => {
      const p = cpu.loadPtr(VA_4K); // an L1D hit: the pointer is ready at 2
      cpu.load64(p); // page 5 is in no TLB: the walk waits for p
    });
    // 2 for the pointer; then the walk: walkLatency 2, its four loads (the PML4 and PDPT lines
    // hit L1D, 2 each; the PD and PT lines, which page 0's walk brought in, hit L2, 10 each)
    // and the locked update of the PTE's A bit (2 + 10); then the line from DRAM, 100.
    expect(r.cycles).toBe(2 + (2 + 2 + 2 + 10 + 10 + 2 + 10) + 100);
    expect(r.delta('tlb.walkCycles')).toBe(38);
    expect(r.delta('tlb.adUpdate')).toBe(1);
  });

  it('a mispredicted branch on a loaded value waits for the load, then the penalty', () => {
    const m = warm(1, { mispredictPenalty: 7, machineClearPenalty: 20 });
    const r = timed(m, (cpu) => {
      const t0 = cpu.clock;
      cpu.load64(VA_4K + 64); // a DRAM miss, dispatched in t0's cycle: back at t0 + 100
      expect(cpu.clock - t0).toBe(1);
      cpu.mispredict();
      expect(cpu.clock - t0).toBe(100 + 7);
      cpu.load64(VA_4K + 128);
      cpu.machineClear();
      expect(cpu.clock - t0).toBe(107 + 100 + 20);
    });
    expect(r.cycles).toBe(227);
  });

  it('retired waits for loads in flight, not for stores: a store miss drains later', () => {
    const m = warm(1);
    m.run([function* (cpu: Cpu): Task {
      cpu.load64(VA_4K);
      cpu.drain();
      const t0 = cpu.clock;
      cpu.store64(VA_4K + 64 * 3, 1); // a write miss: ownership from DRAM, 100
      expect([cpu.clock - t0, cpu.retired - t0]).toEqual([1, 1]);
      cpu.load64(VA_4K + 64 * 5); // a read miss, in the same cycle (a load port is free)
      expect([cpu.clock - t0, cpu.retired - t0]).toEqual([1, 100]);
      cpu.drain(); // waits for both
      expect(cpu.clock - t0).toBe(100);
    }]);
  });

  it('a taken branch ends the dispatch cycle', () => {
    const m = warm(1);
    const r = timed(m, (cpu) => {
      cpu.work(1);
      cpu.branch();
      cpu.work(1);
    });
    expect(r.cycles).toBe(2);
  });

  it('a mix: a dereference waits for its pointer while independent loads and work go on', () => {
    const m = warm(4);
    m.run([
      function* (cpu: Cpu): Task {
        cpu.storePtr(VA_4K, VA_4K + 128);
      },
    ]);
    const r = timed(m, (cpu) => {
      const p = cpu.loadPtr(VA_4K); // cycle 0, ready at 2
      cpu.load64(VA_4K + 64); // cycle 0, ready at 2
      cpu.load64(VA_4K + 192); // cycle 1, ready at 3
      cpu.load64(p + 8); // cycle 1, waits for p: ready at 4
      cpu.work(8); // the rest of cycle 1's slots, then cycles 2 and 3 (and two slots of 4)
    });
    expect(r.cycles).toBe(4);
    expect(r.delta('mem.loads')).toBe(4);
    expect(r.delta('cpu.work')).toBe(8);
  });

  it('with robSize 1 the core is in order and blocking: each access costs its whole latency', () => {
    const { m } = testMachine({ cpu: { issueWidth: 4, loadPorts: 2, storePorts: 1, mlp: 2, robSize: 1 } });
    m.run([(cpu: Cpu) => (function* (): Task { cpu.load64(VA_4K); })()]);
    const r = timed(m, (cpu) => {
      for (let i = 1; i <= 2; i++) cpu.load64(VA_4K + 64 * i);
      cpu.load64(VA_4K);
    });
    expect(r.cycles).toBe(100 + 100 + 2);
  });
});
