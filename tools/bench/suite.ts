// The registry of benchmark suites: each tools/bench/*.bench.ts registers itself on import, so
// adding a suite to `make bench` is one import line in run.ts.

import type Benchmark from 'benchmark';

export interface BenchSuite {
  name: string;
  /** Prepares inputs (e.g. generates a data file); runs before the suite. */
  setup?: () => Promise<void> | void;
  /** Adds this suite's benchmark.js benchmarks. */
  add?: (suite: Benchmark.Suite) => void;
  /** Extra figures for one finished benchmark, e.g. references/s; printed after ops/s. */
  describe?: (bench: Benchmark) => string;
  /** A suite that measures and prints by itself instead of through benchmark.js (whole commands). */
  run?: () => Promise<void>;
}

export const benchSuites: BenchSuite[] = [];

export function registerBenchSuite(suite: BenchSuite): void {
  benchSuites.push(suite);
}
