// Exact-cycle tests of the hardware prefetchers (emu/prefetch.ts, memsys.ts prefetchLine) on
// the coursework machine (L1D 2, L2 10, LLC 30, DRAM 100, c2c 40 cycles; 8 L1D sets × 2 ways)
// with a prefetcher switched on, and on amd64-host as preset.
import { describe, expect, it } from 'vitest';
import { Machine, type Cpu, type CounterName } from '../../emu/index.js';
import { VA_4K, testMachine } from './helpers.js';

const L1_STREAM = { enabled: true, nextLine: true, stride: true, trigger: 2, degree: 1, distance: 1, tableSize: 4 };

/** Runs body on cpu0 and returns its cycles and the counter deltas asked for. */
function measure(m: Machine, body: (cpu: Cpu) => void, names: readonly CounterName[]): Record<string, number> {
  const out: Record<string, number> = {};
  m.run([function* (cpu) {
    cpu.load32(VA_4K + 15 * 4096); // the walk of the upper-level tables, outside the measurement
    cpu.translate(VA_4K, false);
    const before = m.snapshot();
    const t0 = cpu.clock;
    body(cpu);
    cpu.drain(); // the time the last access completes, not when the core dispatched it
    out['cycles'] = cpu.clock - t0;
    const d = m.snapshot().minus(before);
    for (const n of names) out[n] = d.get(0, n);
  }]);
  return out;
}

const LOADS: readonly CounterName[] = ['l1d.readMiss', 'l2.readMiss', 'dram.read', 'prefetch.issued', 'prefetch.useful', 'prefetch.late', 'prefetch.lateCycles'];

describe('hardware prefetch', () => {
  it('a sequential stream of loads starts next-line prefetches at its third miss (trigger 2) and they arrive late at distance 1', () => {
    const { m } = testMachine({ prefetch: { l1d: L1_STREAM } });
    const r = measure(m, (cpu) => {
      for (let i = 0; i < 8; i++) cpu.load64(VA_4K + i * 64);
    }, LOADS);
    // Lines 0-2 miss to DRAM (100 each); line 2 confirms the stride and prefetches line 3 at
    // the start of its access. Each later line is the first use of a prefetch issued at the
    // start of the access before: line 3 comes 100 cycles after its prefetch left (in time),
    // line 4 only 2 after (it waits 100 - 2 - 2 = 96), line 5 98 after (in time), and so on:
    // 3×100 + 2 + 98 + 2 + 98 + 2. Line 7 prefetches line 8, never used.
    expect(r).toEqual({
      cycles: 502, 'l1d.readMiss': 3, 'l2.readMiss': 3, 'dram.read': 9,
      'prefetch.issued': 6, 'prefetch.useful': 5, 'prefetch.late': 2, 'prefetch.lateCycles': 192,
    });
  });

  it('a stream that does work between lines finds prefetches at distance 2 in time', () => {
    const { m } = testMachine({ prefetch: { l1d: { ...L1_STREAM, degree: 2, distance: 2 } } });
    const r = measure(m, (cpu) => {
      for (let i = 0; i < 8; i++) {
        cpu.load64(VA_4K + i * 64);
        cpu.compute(100);
      }
    }, LOADS);
    // 3 misses (300) + 5 hits in time (2 each) + 8 × 100 of work; the prefetches of lines 8
    // and 9 run past the stream and are issued but never used.
    expect(r).toEqual({
      cycles: 1110, 'l1d.readMiss': 3, 'l2.readMiss': 3, 'dram.read': 10,
      'prefetch.issued': 7, 'prefetch.useful': 5, 'prefetch.late': 0, 'prefetch.lateCycles': 0,
    });
  });

  it('a stride of 3 lines is detected; with stride detection off the same loads prefetch nothing', () => {
    const strided = (cpu: Cpu) => {
      for (let i = 0; i < 6; i++) {
        cpu.load64(VA_4K + i * 3 * 64);
        cpu.compute(200);
      }
    };
    const on = measure(testMachine({ prefetch: { l1d: L1_STREAM } }).m, strided, LOADS);
    // Lines 0, 3, 6 miss; 6 confirms stride 3 and prefetches 9; 9 prefetches 12, 12 prefetches 15.
    expect(on).toEqual({
      cycles: 1506, 'l1d.readMiss': 3, 'l2.readMiss': 3, 'dram.read': 7,
      'prefetch.issued': 4, 'prefetch.useful': 3, 'prefetch.late': 0, 'prefetch.lateCycles': 0,
    });
    const off = measure(testMachine({ prefetch: { l1d: { ...L1_STREAM, stride: false } } }).m, strided, LOADS);
    expect(off).toEqual({
      cycles: 1800, 'l1d.readMiss': 6, 'l2.readMiss': 6, 'dram.read': 6,
      'prefetch.issued': 0, 'prefetch.useful': 0, 'prefetch.late': 0, 'prefetch.lateCycles': 0,
    });
  });

  it('coursework prefetches nothing: a sequential stream costs a DRAM miss per line, as before prefetchers existed', () => {
    const { m } = testMachine();
    expect(m.config.prefetch.l1d.enabled || m.config.prefetch.l2.enabled).toBe(false);
    const r = measure(m, (cpu) => {
      for (let i = 0; i < 8; i++) cpu.load64(VA_4K + i * 64);
    }, LOADS);
    expect(r).toEqual({
      cycles: 800, 'l1d.readMiss': 8, 'l2.readMiss': 8, 'dram.read': 8,
      'prefetch.issued': 0, 'prefetch.useful': 0, 'prefetch.late': 0, 'prefetch.lateCycles': 0,
    });
  });

  it('an L2 prefetcher fills L2 only: the demand misses L1D and hits L2', () => {
    const { m } = testMachine({ prefetch: { l2: { ...L1_STREAM, degree: 2, distance: 2 } } });
    const r = measure(m, (cpu) => {
      for (let i = 0; i < 8; i++) {
        cpu.load64(VA_4K + i * 64);
        cpu.compute(100);
      }
    }, [...LOADS, 'l2.readHit', 'prefetch.issuedL2']);
    // 3 DRAM misses, then 5 L2 hits (10 each), 800 of work.
    expect(r).toEqual({
      cycles: 1150, 'l1d.readMiss': 8, 'l2.readMiss': 3, 'l2.readHit': 5, 'dram.read': 10,
      'prefetch.issued': 7, 'prefetch.issuedL2': 7, 'prefetch.useful': 5, 'prefetch.late': 0, 'prefetch.lateCycles': 0,
    });
  });

  it('a line another CPU holds Modified is not prefetched: the owner keeps it and the demand pays the transfer', () => {
    const { m } = testMachine({ prefetch: { l1d: L1_STREAM } });
    m.run([undefined, function* (cpu) {
      cpu.store64(VA_4K + 3 * 64, 7);
    }]);
    const r = measure(m, (cpu) => {
      for (let i = 0; i < 4; i++) cpu.load64(VA_4K + i * 64);
    }, [...LOADS, 'prefetch.skippedOwned', 'coherence.c2cTransfer']);
    // Line 2 would prefetch line 3, which CPU1 holds M: skipped. Line 3 is then a demand
    // read of a dirty line elsewhere: a cache-to-cache transfer (40), and prefetches line 4.
    expect(r).toEqual({
      cycles: 340, 'l1d.readMiss': 4, 'l2.readMiss': 4, 'dram.read': 4,
      'prefetch.issued': 1, 'prefetch.useful': 0, 'prefetch.late': 0, 'prefetch.lateCycles': 0,
      'prefetch.skippedOwned': 1, 'coherence.c2cTransfer': 1,
    });
    expect(m.memsys.check()).toEqual([]);
  });

  it('amd64-host streams a 4 KiB page of loads with both prefetchers', () => {
    // Round latencies of our own (DRAM 500; the L2 prefetcher 4 lines a time, 16 ahead), so
    // that the preset's fit does not move the arithmetic.
    const { m } = testMachine({ memory: { dramLatency: 500 }, l2: { hitLatency: 14 }, prefetch: { l2: { degree: 4, distance: 16 } } }, 'amd64-host');
    const r = measure(m, (cpu) => {
      for (let off = 0; off < 4096; off += 8) cpu.load64(VA_4K + off);
    }, [...LOADS, 'prefetch.issuedL2']);
    // 3 DRAM misses (500) before the L1D stream is confirmed, then 509 loads of prefetched
    // lines. The out-of-order core dispatches the independent loads 4 a cycle, far ahead of
    // the prefetches, so 61 first uses wait for their fills (25,498 cycles in all, overlapped):
    // the page completes in about three DRAM round trips. An in-order core without prefetch:
    // 64 × 500 + 448 × 4 = 33,792.
    expect(r).toEqual({
      cycles: 1424, 'l1d.readMiss': 3, 'l2.readMiss': 3, 'dram.read': 64,
      'prefetch.issued': 122, 'prefetch.issuedL2': 61, 'prefetch.useful': 122, 'prefetch.late': 61, 'prefetch.lateCycles': 25498,
    });
    expect(m.memsys.check()).toEqual([]);
  });
});
