// Benchmark of `kmemu cachesim`'s work: read the 5 M-reference din file and run it through
// L1 32k:8:64:lru + L2 1m:16:64:lru (Dinero-compatible mode), as the CLI does: parsed on a
// worker thread while this one simulates (readDinPipelined).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type Benchmark from 'benchmark';
import { CachesimHierarchy } from '../../emu/index.js';
import type { CachesimStats } from '../../emu/index.js';
import { readDinPipelined } from '../../traces/index.js';
import { BENCH_DINERO, BENCH_DIN_REFERENCES, ensureBenchDin } from './gen-din.js';
import { registerBenchSuite } from './suite.js';

const LEVELS = [
  { size: 32 << 10, ways: 8, line: 64, policy: 'lru' },
  { size: 1 << 20, ways: 16, line: 64, policy: 'lru' },
] as const;

/** Runs the whole file once; returns the counts. */
export async function cachesimBenchRun(file: string): Promise<CachesimStats> {
  const h = new CachesimHierarchy({ levels: [...LEVELS], inclusive: false });
  await readDinPipelined(file, (b) => h.run(b.type, b.addrHi, b.addrLo, b.size, b.count));
  return h.stats();
}

let file = '';
/** Dinero IV's references/s on the same file and hierarchy, when $DINEROIV names its binary. */
let dineroRate: number | null = null;

/** Options of dineroIV for the hierarchy of LEVELS (write-back, write-allocate, demand fetch). */
const DINERO_ARGS = LEVELS.flatMap((l, i) => {
  const p = `-l${i + 1}-u`;
  return [`${p}size`, String(l.size), `${p}bsize`, String(l.line), `${p}assoc`, String(l.ways), `${p}repl`, 'l', `${p}fetch`, 'd',
    `${p}walloc`, 'a', `${p}wback`, 'a'];
}).concat(['-informat', 'D']);

/** The best of three whole runs of dineroIV on `trace` (wall time, its start-up included), in references/s. */
function timeDinero(binary: string, trace: string): number | null {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const input = fs.openSync(trace, 'r');
    const start = performance.now();
    const r = spawnSync(binary, DINERO_ARGS, { stdio: [input, 'ignore', 'ignore'] });
    const took = performance.now() - start;
    fs.closeSync(input);
    if (r.status !== 0) return null;
    best = Math.min(best, took);
  }
  return BENCH_DIN_REFERENCES / (best / 1000);
}

registerBenchSuite({
  name: 'cachesim',
  setup: async () => {
    file = ensureBenchDin();
    const dinero = process.env.DINEROIV;
    if (dinero !== undefined && fs.existsSync(dinero)) dineroRate = timeDinero(dinero, file);
    const stats = await cachesimBenchRun(file);
    for (const [i, want] of [BENCH_DINERO.l1, BENCH_DINERO.l2].entries()) {
      const got = stats.levels[i]!;
      for (const [k, v] of Object.entries(want)) {
        if (got[k as keyof typeof want] !== v) throw new Error(`cachesim bench: l${i + 1}.${k} is ${got[k as keyof typeof want]}, Dinero IV says ${v}`);
      }
    }
  },
  add: (suite: Benchmark.Suite) => {
    suite.add('cachesim din 5M refs, l1 32k:8:64:lru + l2 1m:16:64:lru', {
      defer: true,
      minSamples: 5,
      fn: (deferred: Benchmark.Deferred) => {
        cachesimBenchRun(file).then(() => deferred.resolve(), (err: unknown) => {
          throw err;
        });
      },
    });
  },
  describe: (bench: Benchmark) => `${((bench.hz * BENCH_DIN_REFERENCES) / 1e6).toFixed(2)} M references/s` +
    (dineroRate === null ? '' : ` (Dinero IV, whole command, best of 3: ${(dineroRate / 1e6).toFixed(2)} M references/s)`),
});
