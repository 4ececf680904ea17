// Benchmark of `kmemu cachesim`'s work, in process: read the 5 M-reference din file and run it
// through L1 32k:8:64:lru + L2 1m:16:64:lru (Dinero-compatible mode), as the CLI does: parsed on
// a worker thread while this one simulates (readDinPipelined). Warm: the modules are loaded and
// the JIT has seen earlier samples, and no process starts. That is the simulator's own speed,
// not what a user waits for: the whole command, beside Dinero IV as a whole command, is the
// `commands` suite's (commands.bench.ts).

import type Benchmark from 'benchmark';
import { CachesimHierarchy } from '../../emu/index.js';
import type { CachesimStats } from '../../emu/index.js';
import { readDinPipelined } from '../../traces/index.js';
import { countDifferences } from './dinero.js';
import { BENCH_DIN_5M, ensureBenchDin } from './gen-din.js';
import { registerBenchSuite } from './suite.js';

const LEVELS = [
  { size: 32 << 10, ways: 8, line: 64, policy: 'lru' },
  { size: 1 << 20, ways: 16, line: 64, policy: 'lru' },
] as const;

/** Runs the whole file once; returns the counts, after the end flush `--flush` (and Dinero IV) make. */
export async function cachesimBenchRun(file: string): Promise<CachesimStats> {
  const h = new CachesimHierarchy({ levels: [...LEVELS], inclusive: false });
  await readDinPipelined(file, (b) => h.run(b.type, b.addrHi, b.addrLo, b.size, b.count));
  h.flush();
  return h.stats();
}

let file = '';

registerBenchSuite({
  name: 'cachesim',
  setup: async () => {
    file = ensureBenchDin(BENCH_DIN_5M.references, BENCH_DIN_5M.path);
    const stats = await cachesimBenchRun(file);
    const wrong = [BENCH_DIN_5M.dinero.l1, BENCH_DIN_5M.dinero.l2].flatMap((want, i) => countDifferences(`l${i + 1}`, stats.levels[i]!, want));
    if (wrong.length > 0) throw new Error(`cachesim bench: ${wrong.join('; ')}`);
  },
  add: (suite: Benchmark.Suite) => {
    suite.add('cachesim in process (warm, no start-up), din 5M refs, l1 32k:8:64:lru + l2 1m:16:64:lru', {
      defer: true,
      minSamples: 5,
      fn: (deferred: Benchmark.Deferred) => {
        cachesimBenchRun(file).then(() => deferred.resolve(), (err: unknown) => {
          throw err;
        });
      },
    });
  },
  describe: (bench: Benchmark) => `${((bench.hz * BENCH_DIN_5M.references) / 1e6).toFixed(2)} M references/s in process ` +
    '(the whole command and Dinero IV: suite commands)',
});
