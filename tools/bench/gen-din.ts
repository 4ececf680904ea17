// Writes the deterministic din traces the cachesim benchmarks run on, if they are not there yet:
// the in-process suite's 5 M-reference file and the whole-command suite's 7.3 M-reference one,
// both of this recipe (the 5 M file is the 7.3 M file's first 5 M lines).
//
// N references from Marsaglia's xorshift32 (x ^= x << 13; x ^= x >>> 17; x ^= x << 5,
// mod 2^32, seed 0x9E3779B9), three draws a, b, c per reference:
//   type  a % 100 < 70 ? read : write;  size 1 << ((a >>> 8) & 3), i.e. 1, 2, 4 or 8 bytes
//   b % 1000 picks the working set (c gives the offset, aligned down to the size):
//     < 900  hot:    16 KiB at 7ffd00000000 (fits L1 32k)
//     < 960  stream: a sequential 8 MiB ring at 555500000000, 8 bytes a step (c unused)
//     < 990  warm:   256 KiB at 555600000000 (fits L2 1m)
//     else   cold:   64 MiB at 7f0000000000
// Lines are `<r|w> <hex address> <hex size>`, 17 bytes each. With L1 32k:8:64:lru and
// L2 1m:16:64:lru this gives an L1 miss rate of 4.66% and an L2 local miss rate of 28%.
// Dinero IV release 7 (64-bit addresses) ran on the files this writes; BENCH_DIN_5M and
// BENCH_DIN_7M3 pin the counts it printed.
//
//   node dist/tools/bench/gen-din.js [REFERENCES [OUT]]   (default: 5000000, bench-data/cachesim-5m.din)

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DineroLevelCounts } from './dinero.js';

/** A din file of this recipe and Dinero IV's counts on it with L1 32k:8:64:lru + L2 1m:16:64:lru. */
export interface BenchDin {
  references: number;
  path: string;
  /**
   * What dineroIV -l1-usize 32768 -l1-ubsize 64 -l1-uassoc 8 -l2-usize 1048576 -l2-ubsize 64
   * -l2-uassoc 16 (all -lN-urepl l -lN-ufetch d -lN-uwalloc a -lN-uwback a) -informat D prints
   * (dineroArgs): counted after its end flush, as `kmemu cachesim --non-inclusive --flush` counts.
   */
  dinero: { l1: DineroLevelCounts; l2: DineroLevelCounts };
}

export const BENCH_DIN_5M: BenchDin = {
  references: 5_000_000,
  path: path.join('bench-data', 'cachesim-5m.din'),
  dinero: {
    l1: { accesses: 5_000_000, reads: 3_500_143, writes: 1_499_857, misses: 232_857, readMisses: 162_496, writeMisses: 70_361, writebacks: 95_985 },
    l2: { accesses: 328_842, reads: 232_857, writes: 95_985, misses: 93_002, readMisses: 92_465, writeMisses: 537, writebacks: 55_773 },
  },
};

export const BENCH_DIN_7M3: BenchDin = {
  references: 7_300_000,
  path: path.join('bench-data', 'cachesim-7.3m.din'),
  dinero: {
    l1: { accesses: 7_300_000, reads: 5_110_292, writes: 2_189_708, misses: 340_357, readMisses: 237_426, writeMisses: 102_931, writebacks: 140_333 },
    l2: { accesses: 480_690, reads: 340_357, writes: 140_333, misses: 134_128, readMisses: 133_391, writeMisses: 737, writebacks: 79_926 },
  },
};

const HOT = 0x7ffd00000000;
const STREAM = 0x555500000000;
const WARM = 0x555600000000;
const COLD = 0x7f0000000000;

/** Generates the trace of `references` references at `file` unless it exists; returns its path. */
export function ensureBenchDin(references: number, file: string): string {
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let x = 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
  let stream = 0;
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  let text = '';
  for (let i = 0; i < references; i++) {
    const a = next();
    const b = next();
    const c = next();
    const size = 1 << ((a >>> 8) & 3);
    const p = b % 1000;
    let address: number;
    // Bases are below 2^47 and offsets below 2^26, so these sums are exact doubles.
    if (p < 900) address = HOT + (c & 0x3fff);
    else if (p < 960) {
      address = STREAM + stream;
      stream = (stream + 8) & 0x7fffff;
    } else if (p < 990) address = WARM + (c & 0x3ffff);
    else address = COLD + (c & 0x3ffffff);
    address -= address % size;
    text += `${a % 100 < 70 ? 'r' : 'w'} ${address.toString(16)} ${size.toString(16)}\n`;
    if (text.length >= 1 << 20) {
      fs.writeSync(fd, text);
      text = '';
    }
  }
  fs.writeSync(fd, text);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return file;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const references = Number(process.argv[2] ?? BENCH_DIN_5M.references);
  if (!Number.isInteger(references) || references < 1) throw new Error(`gen-din: expected a number of references, got ${JSON.stringify(process.argv[2])}`);
  const known = [BENCH_DIN_5M, BENCH_DIN_7M3].find((d) => d.references === references);
  const file = process.argv[3] ?? known?.path ?? path.join('bench-data', `cachesim-${references}.din`);
  process.stdout.write(`${ensureBenchDin(references, file)}\n`);
}
