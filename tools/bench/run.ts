// `make bench`: runs every registered suite and prints its figures: the in-process suites with
// benchmark.js (ops/s ± relative margin of error, samples, and each suite's own figures), then
// the whole commands against their goals and Dinero IV (commands.bench.ts). A suite registers
// itself when imported: add one import line below for a new tools/bench/*.bench.ts.
//
//   node dist/tools/bench/run.js [SUITE]     (one suite: cachesim, machine, replay, view-vmzone, view-uma, commands)

import Benchmark from 'benchmark';
import { benchSuites } from './suite.js';
import './cachesim.bench.js';
import './machine.bench.js';
import './replay.bench.js';
import './view.bench.js';
import './commands.bench.js';

async function main(): Promise<void> {
  const only = process.argv[2];
  if (only !== undefined && !benchSuites.some((s) => s.name === only)) {
    throw new Error(`no suite ${JSON.stringify(only)}; expected one of ${benchSuites.map((s) => s.name).join(', ')}`);
  }
  for (const entry of benchSuites) {
    if (only !== undefined && entry.name !== only) continue;
    if (entry.setup !== undefined) await entry.setup();
    if (entry.run !== undefined) {
      await entry.run();
      continue;
    }
    if (entry.add === undefined) continue;
    const suite = new Benchmark.Suite(entry.name);
    entry.add(suite);
    await new Promise<void>((resolve, reject) => {
      suite
        .on('cycle', (event: Benchmark.Event) => {
          const b = event.target as unknown as Benchmark;
          const extra = entry.describe === undefined ? '' : `, ${entry.describe(b)}`;
          process.stdout.write(`${entry.name}: ${b.name}: ${b.hz.toFixed(3)} ops/s ±${b.stats.rme.toFixed(1)}% ` +
            `(${b.stats.sample.length} samples)${extra}\n`);
        })
        .on('error', (event: Benchmark.Event) => reject((event.target as unknown as Benchmark).error))
        .on('complete', () => resolve())
        .run({ async: true });
    });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
