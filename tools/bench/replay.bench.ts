// Replay throughput: a pairs-heavy trace (each of 4 CPUs allocates and frees 64-byte objects
// with a little think time, holding a few at a time) through the kernel on a 4-CPU amd64-host
// machine with the full memory model, in trace events per second of host time.

import type Benchmark from 'benchmark';
import { loadMachineConfig } from '../../emu/index.js';
import { OP_ALLOC, OP_FREE, OP_THINK, OP_ZONE, newEvent, replay, type EventSource, type TraceEvent } from '../../traces/index.js';
import { registerBenchSuite } from './suite.js';

const CPUS = 4;
const ROUNDS = 25_000; // per CPU: an alloc, a think, a free
export const REPLAY_BENCH_EVENTS = 1 + CPUS * ROUNDS * 3;

/** The trace as a stream of batches, made on the fly (no file, no parsing). */
function pairsSource(): EventSource {
  let round = 0;
  let zoned = false;
  const held: number[][] = Array.from({ length: CPUS }, () => []);
  let next = 1;
  return {
    async next() {
      if (round >= ROUNDS) return null;
      const batch: TraceEvent[] = [];
      const push = (cpu: number, op: number, zone: number, obj: number, size: number) => {
        const e = newEvent();
        Object.assign(e, { cpu, op, zone, obj, size });
        batch.push(e);
      };
      if (!zoned) {
        batch.push({ ...newEvent(), op: OP_ZONE, zone: 1, name: 'pairs64', size: 64 });
        zoned = true;
      }
      for (let r = 0; r < 512 && round < ROUNDS; r++, round++) {
        for (let c = 0; c < CPUS; c++) {
          const obj = next++;
          push(c, OP_ALLOC, 1, obj, 0);
          push(c, OP_THINK, 0, 0, 40);
          held[c]!.push(obj);
          push(c, OP_FREE, 1, held[c]!.length > 4 ? held[c]!.shift()! : held[c]!.pop()!, 0);
        }
      }
      return batch;
    },
  };
}

registerBenchSuite({
  name: 'replay',
  add: (suite: Benchmark.Suite) => {
    suite.add(`replay pairs, ${CPUS} CPUs amd64-host, ${REPLAY_BENCH_EVENTS} events`, {
      defer: true,
      minSamples: 5,
      fn: (deferred: { resolve: () => void }) => {
        void replay(pairsSource(), { machine: loadMachineConfig('amd64-host', { cpus: CPUS }) }).then(() => deferred.resolve());
      },
    });
  },
  describe: (b) => `${((b.hz * REPLAY_BENCH_EVENTS) / 1e3).toFixed(0)} k trace events/s`,
});
