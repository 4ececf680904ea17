// Replay throughput: a pairs-heavy trace (kmemu trace gen pairs: every one of 4 CPUs allocates
// and frees 64-byte objects in pairs) through the kernel on a 4-CPU amd64-host machine with the
// full memory model, in trace events per second of host time (generation included; it is
// ~10x faster than replay).

import type Benchmark from 'benchmark';
import { loadMachineConfig } from '../../emu/index.js';
import { generatedSource, replay } from '../../traces/index.js';
import { registerBenchSuite } from './suite.js';

const CPUS = 4;
const EVENTS = 300_000;

registerBenchSuite({
  name: 'replay',
  add: (suite: Benchmark.Suite) => {
    suite.add(`replay pairs, ${CPUS} CPUs amd64-host, ${EVENTS} events`, {
      defer: true,
      minSamples: 5,
      fn: (deferred: { resolve: () => void }) => {
        const source = generatedSource('pairs', { cpus: CPUS, events: EVENTS, seed: 1, size: 64 });
        void replay(source, { machine: loadMachineConfig('amd64-host', { cpus: CPUS }) }).then(() => deferred.resolve());
      },
    });
  },
  describe: (b) => `${((b.hz * EVENTS) / 1e3).toFixed(0)} k trace events/s`,
});
