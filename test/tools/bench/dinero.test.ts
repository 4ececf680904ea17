import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { countDifferences, dineroArgs, dineroLevelCounts, parseDineroReport } from '../../../tools/bench/dinero.js';
import { BENCH_DIN_7M3 } from '../../../tools/bench/gen-din.js';

// dineroIV release 7's stdout on bench-data/cachesim-7.3m.din (its banner of authors left out).
const REPORT = readFileSync('test/fixtures/bench/dineroIV-r7-cachesim-7.3m.txt', 'utf8');
const LEVELS = [{ size: 32768, ways: 8, line: 64 }, { size: 1048576, ways: 16, line: 64 }];

describe('dineroArgs()', () => {
  it('gives the options of unified LRU, write-back, write-allocate, demand-fetch levels and din input', () => {
    expect(dineroArgs(LEVELS).join(' ')).toBe('-l1-usize 32768 -l1-ubsize 64 -l1-uassoc 8 -l1-urepl l -l1-ufetch d -l1-uwalloc a -l1-uwback a ' +
      '-l2-usize 1048576 -l2-ubsize 64 -l2-uassoc 16 -l2-urepl l -l2-ufetch d -l2-uwalloc a -l2-uwback a -informat D');
  });
});

describe('parseDineroReport()', () => {
  it('reads the Demand Fetches, Demand Misses and bytes rows of each level of a real report', () => {
    expect(parseDineroReport(REPORT)).toEqual([
      {
        name: 'l1-ucache',
        fetches: { total: 7300000, instrn: 0, data: 7300000, read: 5110292, write: 2189708, misc: 0 },
        misses: { total: 340357, instrn: 0, data: 340357, read: 237426, write: 102931, misc: 0 },
        bytesFromMemory: 21782848,
        bytesToMemory: 8981312,
      },
      {
        name: 'l2-ucache',
        fetches: { total: 480690, instrn: 0, data: 480690, read: 340357, write: 140333, misc: 0 },
        misses: { total: 134128, instrn: 0, data: 134128, read: 133391, write: 737, misc: 0 },
        bytesFromMemory: 8537024,
        bytesToMemory: 5115264,
      },
    ]);
  });

  it('throws naming the level when a row is missing', () => {
    const cut = REPORT.split('\n').filter((l) => !(l.startsWith(' Bytes To Memory') && l.endsWith('5115264'))).join('\n');
    expect(() => parseDineroReport(cut)).toThrow('Dinero IV report: level l2-ucache has no "Bytes To Memory" row');
  });

  it('throws when there is no level at all', () => {
    expect(() => parseDineroReport('dineroIV: unknown option -l1-foo\n')).toThrow('Dinero IV report: expected a level such as "l1-ucache", found none');
  });
});

describe('dineroLevelCounts()', () => {
  it('turns the report into the counts pinned for the 7.3 M-reference file (writebacks: Bytes To Memory / 64)', () => {
    const [l1, l2] = parseDineroReport(REPORT).map((l) => dineroLevelCounts(l, 64));
    expect(l1).toEqual({ accesses: 7300000, reads: 5110292, writes: 2189708, misses: 340357, readMisses: 237426, writeMisses: 102931, writebacks: 140333 });
    expect({ l1, l2 }).toEqual(BENCH_DIN_7M3.dinero);
  });

  it('throws when Bytes To Memory is not a whole number of lines', () => {
    const l2 = parseDineroReport(REPORT)[1]!;
    expect(() => dineroLevelCounts(l2, 4096)).toThrow("Dinero IV report: l2-ucache's Bytes To Memory 5115264 is not a multiple of the 4096-byte line");
  });
});

describe('countDifferences()', () => {
  it('names each count that differs, with both values, and nothing when they agree', () => {
    const want = BENCH_DIN_7M3.dinero.l2;
    expect(countDifferences('l2', { ...want }, want)).toEqual([]);
    expect(countDifferences('l2', { ...want, misses: 134127, writebacks: 0 }, want)).toEqual([
      'l2.misses is 134127, Dinero IV says 134128',
      'l2.writebacks is 0, Dinero IV says 79926',
    ]);
  });
});
