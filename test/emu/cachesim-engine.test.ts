// DineroEngine (the non-inclusive mode's pending stack) on what the Dinero IV fixtures do not
// cover: a next level with shorter lines than the one above, whose fills and writebacks split.
import { describe, expect, it } from 'vitest';
import { ACCESS_READ, ACCESS_WRITE, CachesimHierarchy } from '../../emu/cachesim.js';

function counts(h: CachesimHierarchy, i: number) {
  const l = h.stats().levels[i]!;
  return {
    accesses: l.accesses, reads: l.reads, writes: l.writes, misses: l.misses, readMisses: l.readMisses,
    writeMisses: l.writeMisses, writebacks: l.writebacks, fills: l.fills, multiBlockRefs: l.multiBlockRefs,
  };
}

describe('DineroEngine', () => {
  it('cachesim splits a fill and a writeback into the shorter lines of the next level, fill first', () => {
    // L1 one 64-byte line; L2 one set of two 32-byte ways. r 0, w 40, r 0: each L1 miss reads
    // 64 bytes (two L2 lines) from L2; the last one then writes dirty 0x40 back, two whole L2
    // lines allocated without fetching, after its fill has evicted them. Dinero IV release 7
    // counts the same (-l1-usize 64 -l1-ubsize 64 -l1-uassoc 1 -l2-usize 64 -l2-ubsize 32 -l2-uassoc 2).
    const h = new CachesimHierarchy({
      levels: [{ size: 64, ways: 1, line: 64, policy: 'lru' }, { size: 64, ways: 2, line: 32, policy: 'lru' }],
      inclusive: false,
    });
    h.ref(ACCESS_READ, 0, 0x00, 4);
    h.ref(ACCESS_WRITE, 0, 0x40, 4);
    h.ref(ACCESS_READ, 0, 0x00, 4);
    expect(counts(h, 0)).toEqual({ accesses: 3, reads: 2, writes: 1, misses: 3, readMisses: 2, writeMisses: 1, writebacks: 1, fills: 3, multiBlockRefs: 0 });
    expect(counts(h, 1)).toEqual({ accesses: 8, reads: 6, writes: 2, misses: 8, readMisses: 6, writeMisses: 2, writebacks: 0, fills: 6, multiBlockRefs: 4 });
  });

  it('cachesim gives the same counts whatever the batches a trace is run in', () => {
    const n = 5000;
    const type = new Uint8Array(n);
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    const size = new Uint32Array(n);
    let x = 0x2545f491;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      type[i] = (x >>> 0) % 7 === 0 ? ACCESS_WRITE : ACCESS_READ;
      hi[i] = (x >>> 0) % 5 === 0 ? 0xffffffff : 0;
      lo[i] = ((x >>> 0) % 0x40000) | ((x & 1) << 31);
      size[i] = 1 << ((x >>> 3) & 7);
    }
    const levels = [{ size: 1024, ways: 2, line: 64, policy: 'lru' as const }, { size: 8192, ways: 4, line: 32, policy: 'fifo' as const }];
    const whole = new CachesimHierarchy({ levels, inclusive: false });
    whole.run(type, hi, lo, size, n);
    whole.flush();
    const pieces = new CachesimHierarchy({ levels, inclusive: false });
    for (let i = 0; i < n; i += 7) {
      const c = Math.min(7, n - i);
      pieces.run(type.subarray(i, i + c), hi.subarray(i, i + c), lo.subarray(i, i + c), size.subarray(i, i + c), c);
    }
    pieces.flush();
    expect(pieces.stats()).toEqual(whole.stats());
    expect(whole.stats().levels[1]!.multiBlockRefs).toBeGreaterThan(0);
  });
});
