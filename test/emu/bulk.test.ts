// Exact-cycle tests of the fast-string stores (cpu.storeFill as rep stosb, cpu.copyBytes as
// rep movsb; memsys.writeFullLine) on amd64-host with round latencies of its own (ZEN below:
// L1D 4, L2 14, LLC 45, DRAM 500 and ownership from the memory controller 500; 64 B a cycle
// into owned lines; 24 miss buffers), so that the preset's fit does not move them, and on
// coursework (DRAM 100; 8 B a cycle; 1 buffer). Every measure() ends with a drain: a fast
// string's lines complete after the front end moves on.
import { describe, expect, it } from 'vitest';
import { Machine, type Cpu, type CounterName } from '../../emu/index.js';
import { DATA_PA, VA_4K, testMachine } from './helpers.js';

const ZEN = {
  memory: { dramLatency: 500, ownershipLatency: 500 },
  l2: { hitLatency: 14 },
  llc: { hitLatency: 45 },
  coherence: { transferLatency: 90, invalidateLatency: 90, probeLatency: 60 },
  tlb: { walkLatency: 5, l2: { hitLatency: 7 } },
  cpu: { fillBuffers: 24 },
  prefetch: { l2: { degree: 4, distance: 16 } },
};

/** Runs body on cpu `id` and returns its cycles and the counter deltas asked for. */
function measure(m: Machine, body: (cpu: Cpu) => void, names: readonly CounterName[], id = 0, setup?: (cpu: Cpu) => void): Record<string, number> {
  const out: Record<string, number> = {};
  const programs = m.cpus.map((c) => (c.id !== id ? undefined : function* (cpu: Cpu) {
    setup?.(cpu);
    const before = m.snapshot();
    const t0 = cpu.clock;
    body(cpu);
    cpu.drain();
    out['cycles'] = cpu.clock - t0;
    const d = m.snapshot().minus(before);
    for (const n of names) out[n] = d.get(id, n);
  }));
  m.run(programs);
  return out;
}

const FILL: readonly CounterName[] = ['bulk.fullLines', 'l1d.writeMiss', 'llc.miss', 'dram.read', 'tlb.l2Miss', 'tlb.walkCycles'];

function scribble(m: Machine, pa: number, len: number): void {
  for (let i = 0; i < len; i++) m.mem.write8(pa + i, (i * 7 + 1) & 0xff);
}

function bytesAt(m: Machine, pa: number, len: number): number[] {
  return [...m.mem.readBytes(pa, len)];
}

describe('fast strings', () => {
  it('storeFill() zeroes a cold 4 KiB page on amd64-host in 1,515 cycles, and the bytes are zero', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    scribble(m, DATA_PA, 4096);
    const r = measure(m, (cpu) => cpu.storeFill(VA_4K, 4096, 0), FILL, 0, (cpu) => cpu.translate(VA_4K, true));
    // 64 whole lines, none cached: each is owned from the memory controller after 500 cycles
    // without a DRAM read, 24 at a time, one a cycle: lines 0-23 leave at 0-23, 24-47 when the
    // first round returns (500-523), 48-63 at 1000-1015; the last is owned at 1515.
    expect(r).toEqual({ cycles: 1515, 'bulk.fullLines': 64, 'l1d.writeMiss': 64, 'llc.miss': 64, 'dram.read': 0, 'tlb.l2Miss': 0, 'tlb.walkCycles': 0 });
    expect(bytesAt(m, DATA_PA, 4096).every((b) => b === 0)).toBe(true);
    expect(m.memsys.check()).toEqual([]);
  });

  it('storeFill() of a page already in L1D costs the store port: 64 lines at 64 B a cycle, then the last hit', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    const r = measure(m, (cpu) => {
      cpu.storeFill(VA_4K, 4096, 0);
      cpu.drain();
      const t0 = cpu.clock;
      cpu.storeFill(VA_4K, 4096, 0xa5);
      // The front end moves on after the 64th store issues (64 cycles); the last hit is in
      // by 67.
      expect(cpu.clock - t0).toBe(64);
      cpu.drain();
      expect(cpu.clock - t0).toBe(67);
    }, ['bulk.bytes']);
    expect(r['bulk.bytes']).toBe(8192);
    expect(bytesAt(m, DATA_PA, 4096).every((b) => b === 0xa5)).toBe(true);
  });

  it('storeFill() across two pages pays the page walk of the second page\'s TLB miss', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    const r = measure(m, (cpu) => cpu.storeFill(VA_4K, 8192, 0), FILL, 0, (cpu) => cpu.translate(VA_4K, true));
    // Page 0 as above issues its last line at 1015. Then page 1's walk stalls the stream for
    // 41 cycles (walk start 5, four loads hitting L1D at 4, the locked D-bit update 4 + 16),
    // and page 1's lines take the buffers as they free: 8 at once, the rest behind page 0's.
    expect(r).toEqual({
      cycles: 3007, 'bulk.fullLines': 128, 'l1d.writeMiss': 128, 'llc.miss': 128, 'dram.read': 0, 'tlb.l2Miss': 1, 'tlb.walkCycles': 41,
    });
  });

  it('copyBytes() copies a cold 4 KiB page on amd64-host, reading the source with the prefetchers\' help', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    scribble(m, DATA_PA, 4096);
    const r = measure(m, (cpu) => cpu.copyBytes(VA_4K + 4096, VA_4K, 4096), [...FILL, 'l1d.readMiss', 'prefetch.issued'], 0, (cpu) => {
      cpu.translate(VA_4K, false);
      cpu.translate(VA_4K + 4096, true);
    });
    // The source lines are read (64 DRAM reads: 3 demand misses start the L1D stream, the
    // prefetchers bring the other 61 and 61 more into L2), the destination lines owned without
    // data; both share the 24 miss buffers.
    expect(r).toEqual({
      cycles: 2013, 'bulk.fullLines': 64, 'l1d.writeMiss': 64, 'l1d.readMiss': 3, 'llc.miss': 128, 'dram.read': 64,
      'prefetch.issued': 122, 'tlb.l2Miss': 0, 'tlb.walkCycles': 0,
    });
    expect(bytesAt(m, DATA_PA + 4096, 4096)).toEqual(bytesAt(m, DATA_PA, 4096));
  });

  it('copyBytes() between differently aligned buffers copies every byte', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    scribble(m, DATA_PA, 8192);
    measure(m, (cpu) => cpu.copyBytes(VA_4K + 2 * 4096 + 5, VA_4K + 3000, 5000), []);
    expect(bytesAt(m, DATA_PA + 2 * 4096 + 5, 5000)).toEqual(bytesAt(m, DATA_PA + 3000, 5000));
  });

  it('a partial first and last line are ordinary stores: read for ownership', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    const r = measure(m, (cpu) => cpu.storeFill(VA_4K + 8, 112, 0), FILL, 0, (cpu) => cpu.translate(VA_4K, true));
    // Two DRAM reads for ownership overlapping in two buffers, the second issued a cycle later.
    expect(r).toEqual({ cycles: 501, 'bulk.fullLines': 0, 'l1d.writeMiss': 2, 'llc.miss': 2, 'dram.read': 2, 'tlb.l2Miss': 0, 'tlb.walkCycles': 0 });
  });

  it('a whole line no cache holds is owned after the memory controller\'s grant (memory.ownershipLatency), without a DRAM read', () => {
    const { m } = testMachine({ ...ZEN, memory: { dramLatency: 500, ownershipLatency: 200 } }, 'amd64-host');
    const r = measure(m, (cpu) => cpu.storeFill(VA_4K, 64, 0), FILL, 0, (cpu) => cpu.translate(VA_4K, true));
    expect(r).toEqual({ cycles: 200, 'bulk.fullLines': 1, 'l1d.writeMiss': 1, 'llc.miss': 1, 'dram.read': 0, 'tlb.l2Miss': 0, 'tlb.walkCycles': 0 });
  });

  it('a whole line another CPU holds Modified is invalidated without a transfer', () => {
    const { m } = testMachine(ZEN, 'amd64-host');
    measure(m, (cpu) => cpu.store64(VA_4K, 1), [], 1);
    const r = measure(m, (cpu) => cpu.storeFill(VA_4K, 64, 0), ['coherence.invalidationSent', 'coherence.c2cTransfer', 'dram.read'], 0, (cpu) => cpu.translate(VA_4K, true));
    // One invalidation round (amd64-host's invalidateLatency, 90), no data: the line's 64
    // bytes are all overwritten.
    expect(r).toEqual({ cycles: 90, 'coherence.invalidationSent': 1, 'coherence.c2cTransfer': 0, 'dram.read': 0 });
    expect(m.memsys.lineState(1, DATA_PA).l2).toBe('I');
    expect(m.memsys.lineState(0, DATA_PA).l2).toBe('M');
  });

  it('coursework zeroes a cold page one line at a time: 64 × its DRAM round trip', () => {
    const { m } = testMachine();
    const r = measure(m, (cpu) => cpu.storeFill(VA_4K, 4096, 0), FILL, 0, (cpu) => cpu.translate(VA_4K, true));
    expect(r).toEqual({ cycles: 6400, 'bulk.fullLines': 64, 'l1d.writeMiss': 64, 'llc.miss': 64, 'dram.read': 0, 'tlb.l2Miss': 0, 'tlb.walkCycles': 0 });
  });
});
