// The cachesim hierarchy: hand-computed cases for each rule, then every case of
// test/fixtures/din/expected.json, whose counts come from Dinero IV release 7 (64-bit
// addresses, write-back, write-allocate) before its end-of-run flush (`expected`) and after it
// (`withFinalFlush`), and must equal kmemu cachesim --non-inclusive's exactly.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACCESS_COPYBACK, ACCESS_INVALIDATE, ACCESS_READ, ACCESS_WRITE, ACCESS_IFETCH, CachesimHierarchy } from '../../emu/cachesim.js';
import { readDin } from '../../traces/din.js';
import { KMEMU_VERSION } from '../../traces/run.js';
import { cachesimJson, parseLevelSpec } from '../../tools/cachesim.js';

type Ref = [type: number, hi: number, lo: number, size: number];
const R = ACCESS_READ;
const W = ACCESS_WRITE;

function sim(specs: string[], inclusive: boolean, refs: Ref[]): CachesimHierarchy {
  const h = new CachesimHierarchy({ levels: specs.map((s, i) => parseLevelSpec(`--l${i + 1}`, s)), inclusive });
  for (const [t, hi, lo, size] of refs) h.ref(t, hi, lo, size);
  return h;
}

/** The counters of level `i` that a test cares about. */
function counts(h: CachesimHierarchy, i: number) {
  const l = h.stats().levels[i]!;
  return {
    accesses: l.accesses, reads: l.reads, writes: l.writes, misses: l.misses, readMisses: l.readMisses,
    writeMisses: l.writeMisses, writebacks: l.writebacks, fills: l.fills,
  };
}

describe('CachesimHierarchy', () => {
  it('cachesim counts a line-crossing read as two accesses', () => {
    const h = sim(['256:2:64:lru'], false, [[R, 0, 0x103c, 8]]);
    expect(counts(h, 0)).toEqual({ accesses: 2, reads: 2, writes: 0, misses: 2, readMisses: 2, writeMisses: 0, writebacks: 0, fills: 2 });
    expect(h.stats().levels[0]!.multiBlockRefs).toBe(1);
    expect(h.references).toBe(1);
  });

  it('cachesim counts a reference spanning three lines as three accesses, the middle one a whole-line write', () => {
    const h = sim(['1k:4:32:lru', '4k:4:32:lru'], false, [[W, 0, 0x1010, 0x40]]);
    // 0x1010-0x104f touches lines 0x1000, 0x1020 (whole), 0x1040: two fills, one allocation without fetch.
    expect(counts(h, 0)).toEqual({ accesses: 3, reads: 0, writes: 3, misses: 3, readMisses: 0, writeMisses: 3, writebacks: 0, fills: 2 });
    expect(counts(h, 1)).toEqual({ accesses: 2, reads: 2, writes: 0, misses: 2, readMisses: 2, writeMisses: 0, writebacks: 0, fills: 2 });
  });

  it('cachesim refreshes LRU order on a hit but keeps FIFO order', () => {
    // One set of two ways: A B A C A. LRU evicts B for C, so the last A hits; FIFO evicts A.
    const refs: Ref[] = [[R, 0, 0x000, 4], [R, 0, 0x040, 4], [W, 0, 0x000, 4], [R, 0, 0x080, 4], [R, 0, 0x000, 4]];
    expect(counts(sim(['128:2:64:lru'], false, refs), 0)).toEqual(
      { accesses: 5, reads: 4, writes: 1, misses: 3, readMisses: 3, writeMisses: 0, writebacks: 0, fills: 3 });
    // FIFO: C evicts dirty A (a writeback), A then evicts B.
    expect(counts(sim(['128:2:64:fifo'], false, refs), 0)).toEqual(
      { accesses: 5, reads: 4, writes: 1, misses: 4, readMisses: 4, writeMisses: 0, writebacks: 1, fills: 4 });
  });

  it('cachesim sends the fill of a miss to the next level before the dirty victim', () => {
    // L1 one line, L2 two direct-mapped sets; 0x000 and 0x080 share L2 set 0. The fill of 0x080
    // evicts 0x000 from L2 first, so the victim's writeback misses there too (3 L2 misses, not 2).
    const h = sim(['64:1:64:lru', '128:1:64:lru'], false, [[W, 0, 0x000, 4], [R, 0, 0x080, 4]]);
    expect(counts(h, 0)).toEqual({ accesses: 2, reads: 1, writes: 1, misses: 2, readMisses: 1, writeMisses: 1, writebacks: 1, fills: 2 });
    expect(counts(h, 1)).toEqual({ accesses: 3, reads: 2, writes: 1, misses: 3, readMisses: 2, writeMisses: 1, writebacks: 0, fills: 2 });
  });

  it('cachesim allocates a whole-line write without fetching and fetches for a partial one', () => {
    const h = sim(['1k:2:64:lru', '4k:4:64:lru'], false, [[W, 0, 0x1000, 0x40], [W, 0, 0x2000, 8]]);
    expect(counts(h, 0)).toEqual({ accesses: 2, reads: 0, writes: 2, misses: 2, readMisses: 0, writeMisses: 2, writebacks: 0, fills: 1 });
    expect(counts(h, 1)).toEqual({ accesses: 1, reads: 1, writes: 0, misses: 1, readMisses: 1, writeMisses: 0, writebacks: 0, fills: 1 });
  });

  it('cachesim fetches below when a writeback does not cover a line of the bigger-line level', () => {
    // L1 one 32-byte line, L2 one 128-byte line: the 32-byte writeback of 0x000 misses in L2
    // (0x080 took its line) and, being partial, makes L2 fetch.
    const h = sim(['32:1:32:lru', '128:1:128:lru'], false, [[W, 0, 0x000, 4], [R, 0, 0x080, 4]]);
    expect(counts(h, 1)).toEqual({ accesses: 3, reads: 2, writes: 1, misses: 3, readMisses: 2, writeMisses: 1, writebacks: 0, fills: 3 });
  });

  it('cachesim keeps 64-bit kernel addresses exact', () => {
    // Same low 32 bits, different high words: four distinct lines in one 4-way set, then all hit.
    const refs: Ref[] = [
      [R, 0xffffffff, 0x80001040, 8], [R, 0x00000000, 0x80001040, 8], [R, 0x80000000, 0x80001040, 8], [R, 0xffff8880, 0x80001040, 8],
    ];
    const h = sim(['256:4:64:lru'], false, [...refs, ...refs]);
    expect(counts(h, 0)).toEqual({ accesses: 8, reads: 8, writes: 0, misses: 4, readMisses: 4, writeMisses: 0, writebacks: 0, fills: 4 });
  });

  it('cachesim splits a reference that crosses a 4 GiB boundary of a kernel address', () => {
    const h = sim(['1k:2:64:lru'], false, [[R, 0xffffffff, 0xfffffffc, 8], [R, 0x00000000, 0x00000000, 4], [R, 0x00000001, 0x00000000, 4]]);
    // The second piece is line 0x1_0000_0000 of the high word 0: the third reference hits it.
    expect(counts(h, 0)).toEqual({ accesses: 4, reads: 4, writes: 0, misses: 3, readMisses: 3, writeMisses: 0, writebacks: 0, fills: 3 });
  });

  it('cachesim back-invalidates upper copies when an inclusive lower level evicts', () => {
    // L2 direct-mapped with 4 sets: 0x000 and 0x100 share set 0. Reading 0x100 evicts 0x000
    // from L2 and so from L1, whose copy is dirty: written back with L2's victim.
    const refs: Ref[] = [[W, 0, 0x000, 4], [R, 0, 0x100, 4], [R, 0, 0x000, 4]];
    const inc = sim(['128:2:64:lru', '256:1:64:lru'], true, refs);
    expect(counts(inc, 0)).toEqual({ accesses: 3, reads: 2, writes: 1, misses: 3, readMisses: 2, writeMisses: 1, writebacks: 1, fills: 3 });
    expect(inc.stats().levels[0]!.backInvalidations).toBe(2);
    expect(counts(inc, 1)).toEqual({ accesses: 3, reads: 3, writes: 0, misses: 3, readMisses: 3, writeMisses: 0, writebacks: 1, fills: 3 });
    const non = sim(['128:2:64:lru', '256:1:64:lru'], false, refs);
    expect(counts(non, 0)).toEqual({ accesses: 3, reads: 2, writes: 1, misses: 2, readMisses: 1, writeMisses: 1, writebacks: 0, fills: 2 });
    expect(non.stats().levels[0]!.backInvalidations).toBe(0);
    expect(counts(non, 1)).toEqual({ accesses: 2, reads: 2, writes: 0, misses: 2, readMisses: 2, writeMisses: 0, writebacks: 0, fills: 2 });
  });

  it('cachesim fetches from below on an inclusive whole-line write miss', () => {
    const h = sim(['1k:2:64:lru', '4k:4:64:lru'], true, [[W, 0, 0x1000, 0x40]]);
    expect(counts(h, 0).fills).toBe(1);
    expect(counts(h, 1)).toEqual({ accesses: 1, reads: 1, writes: 0, misses: 1, readMisses: 1, writeMisses: 0, writebacks: 0, fills: 1 });
  });

  it('cachesim copies a dirty line back on a c record and drops it without writeback on a v record', () => {
    const h = sim(['1k:2:64:lru', '4k:4:64:lru'], false, [
      [W, 0, 0x1000, 4], [ACCESS_COPYBACK, 0, 0x1000, 1], [W, 0, 0x1000, 4], [ACCESS_INVALIDATE, 0, 0x1000, 1], [R, 0, 0x1000, 4],
    ]);
    // c: the line is copied back (a write at L2), then L2 copies it on to memory; v drops the
    // second write's dirty data in both levels.
    expect(counts(h, 0)).toEqual({ accesses: 3, reads: 1, writes: 2, misses: 2, readMisses: 1, writeMisses: 1, writebacks: 1, fills: 2 });
    expect(h.stats().levels[0]!.copybacks).toBe(1);
    expect(counts(h, 1)).toEqual({ accesses: 3, reads: 2, writes: 1, misses: 2, readMisses: 2, writeMisses: 0, writebacks: 1, fills: 2 });
  });

  it('cachesim takes sizes as Dinero does in non-inclusive mode: mod 65536, 0 at a line start covering 64 KiB', () => {
    const h = sim(['64k:4:64:lru'], false, [[R, 0, 0x10000, 0], [R, 0, 0x20004, 0], [R, 0, 0x40000, 0x10040]]);
    // 1024 lines + 1 line + the 0x40 bytes left of 0x10040.
    expect(counts(h, 0).accesses).toBe(1024 + 1 + 1);
    const inc = sim(['64k:4:64:lru'], true, [[R, 0, 0x10000, 0], [R, 0, 0x40000, 0x10040]]);
    expect(counts(inc, 0).accesses).toBe(1 + 1025);
  });

  it('cachesim counts instruction fetches in their own column and forwards their fills as fetches', () => {
    const h = sim(['1k:2:64:lru', '4k:4:64:lru'], false, [[ACCESS_IFETCH, 0, 0x400, 4], [ACCESS_IFETCH, 0, 0x404, 4]]);
    const [l1, l2] = h.stats().levels;
    expect([l1!.ifetches, l1!.ifetchMisses, l1!.reads, l2!.ifetches, l2!.reads]).toEqual([2, 1, 0, 1, 0]);
  });

  it('cachesim counts TLB lookups per 4 KiB page touched', () => {
    const h = new CachesimHierarchy({ levels: [parseLevelSpec('--l1', '1k:2:64:lru')], inclusive: false, tlb: { entries: 2, ways: 2 } });
    for (const [t, hi, lo, size] of [[R, 0, 0x0ffc, 8], [R, 0, 0x1000, 4], [R, 0, 0x2000, 4], [R, 0, 0x0000, 4]] as Ref[]) h.ref(t, hi, lo, size);
    // 0x0ffc+8 touches pages 0 and 1; page 2 evicts page 0 (LRU), which then misses again.
    expect(h.stats().tlb).toEqual({ entries: 2, ways: 2, pageSize: 4096, accesses: 5, misses: 4 });
  });
});

const dir = path.join(import.meta.dirname, '..', 'fixtures', 'din');

interface Case {
  trace: string;
  note?: string;
  refs: number;
  levels: { spec: string }[];
  expected: Record<string, number | string>[];
  withFinalFlush: Record<string, number | string>[];
  dineroArgs: string;
}

const cases = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Case[];

async function run(c: Case, flush: boolean): Promise<Record<string, number | string>[]> {
  const levels = c.levels.map((l, i) => parseLevelSpec(`--l${i + 1}`, l.spec));
  const h = new CachesimHierarchy({ levels, inclusive: false });
  const r = await readDin(path.join(dir, c.trace), (b) => h.run(b.type, b.addrHi, b.addrLo, b.size, b.count));
  expect(r.references).toBe(c.refs);
  if (flush) h.flush();
  // Through the kmemu.cachesim/1 document, so that what the CLI prints is what is compared.
  const doc = cachesimJson(h.stats(), {
    kmemu: KMEMU_VERSION,
    format: 'din',
    hierarchy: { levels, inclusive: false, tlb: null, seed: 1, flush },
    trace: { name: c.trace, sha256: r.sha256 },
  });
  return doc.levels as unknown as Record<string, number | string>[];
}

function pick(rows: Record<string, number | string>[], like: Record<string, number | string>[]): Record<string, number | string>[] {
  return rows.map((row, i) => Object.fromEntries(Object.keys(like[i] ?? {}).map((k) => [k, row[k]!])));
}

describe('cachesim --non-inclusive equals Dinero IV on every fixture of expected.json', () => {
  it('has fixtures', () => {
    expect(cases.length).toBeGreaterThan(0);
  });
  for (const c of cases) {
    const label = `${c.trace} on ${c.levels.map((l) => l.spec).join(' + ')}`;
    it(`cachesim counts ${label} as Dinero IV does before its final flush`, async () => {
      const got = await run(c, false);
      expect(pick(got, c.expected)).toEqual(c.expected);
    });
    it(`cachesim --flush counts ${label} as Dinero IV does after its final flush`, async () => {
      const got = await run(c, true);
      expect(pick(got, c.withFinalFlush)).toEqual(c.withFinalFlush);
    });
  }
});
