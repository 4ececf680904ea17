// Benchmark of `kmemu cachesim`'s work: read the 5 M-reference din file and run it through
// L1 32k:8:64:lru + L2 1m:16:64:lru (Dinero-compatible mode), as the CLI does.

import type Benchmark from 'benchmark';
import { CachesimHierarchy } from '../../emu/index.js';
import type { CachesimStats } from '../../emu/index.js';
import { readDin } from '../../traces/index.js';
import { BENCH_DINERO, BENCH_DIN_REFERENCES, ensureBenchDin } from './gen-din.js';
import { registerBenchSuite } from './suite.js';

const LEVELS = [
  { size: 32 << 10, ways: 8, line: 64, policy: 'lru' },
  { size: 1 << 20, ways: 16, line: 64, policy: 'lru' },
] as const;

/** Runs the whole file once; returns the counts. */
export async function cachesimBenchRun(file: string): Promise<CachesimStats> {
  const h = new CachesimHierarchy({ levels: [...LEVELS], inclusive: false });
  await readDin(file, (b) => h.run(b.type, b.addrHi, b.addrLo, b.size, b.count));
  return h.stats();
}

let file = '';

registerBenchSuite({
  name: 'cachesim',
  setup: async () => {
    file = ensureBenchDin();
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
  describe: (bench: Benchmark) => `${((bench.hz * BENCH_DIN_REFERENCES) / 1e6).toFixed(2)} M references/s`,
});
