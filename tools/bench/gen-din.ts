// Writes the deterministic din trace the cachesim benchmark runs on, if it is not there yet.
//
// 5,000,000 references from Marsaglia's xorshift32 (x ^= x << 13; x ^= x >>> 17; x ^= x << 5,
// mod 2^32, seed 0x9E3779B9), three draws a, b, c per reference:
//   type  a % 100 < 70 ? read : write;  size 1 << ((a >>> 8) & 3), i.e. 1, 2, 4 or 8 bytes
//   b % 1000 picks the working set (c gives the offset, aligned down to the size):
//     < 900  hot:    16 KiB at 7ffd00000000 (fits L1 32k)
//     < 960  stream: a sequential 8 MiB ring at 555500000000, 8 bytes a step (c unused)
//     < 990  warm:   256 KiB at 555600000000 (fits L2 1m)
//     else   cold:   64 MiB at 7f0000000000
// Lines are `<r|w> <hex address> <hex size>`, 17 bytes each. With L1 32k:8:64:lru and
// L2 1m:16:64:lru this gives an L1 miss rate of 4.66% and an L2 local miss rate of 28%.
// The same recipe produced the reference file timed with Dinero IV (see BENCH_DINERO).

import * as fs from 'node:fs';
import * as path from 'node:path';

export const BENCH_DIN_REFERENCES = 5_000_000;
export const BENCH_DIN_PATH = path.join('bench-data', 'cachesim-5m.din');

/** Dinero IV release 7's pre-flush counts on this file with L1 32k:8:64:lru + L2 1m:16:64:lru. */
export const BENCH_DINERO = {
  l1: { accesses: 5_000_000, reads: 3_500_143, writes: 1_499_857, misses: 232_857, readMisses: 162_496, writeMisses: 70_361, writebacks: 95_620 },
  l2: { accesses: 328_477, reads: 232_857, writes: 95_620, misses: 92_820, readMisses: 92_465, writeMisses: 355, writebacks: 44_400 },
};

const HOT = 0x7ffd00000000;
const STREAM = 0x555500000000;
const WARM = 0x555600000000;
const COLD = 0x7f0000000000;

/** Generates the trace at `file` unless it exists; returns its path. */
export function ensureBenchDin(file = BENCH_DIN_PATH, references = BENCH_DIN_REFERENCES): string {
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
  process.stdout.write(`${ensureBenchDin(process.argv[2])}\n`);
}
