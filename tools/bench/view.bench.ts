// kmemu view's step API: events stepped per second with the full state computed and encoded
// as the server sends it (JSON), one event per step, on the bundled Linux capture on 2 CPUs of
// amd64-host; and a step back (re-execution from boot to the event before) from event 2,000.

import type Benchmark from 'benchmark';
import { fileURLToPath } from 'node:url';
import { loadMachineConfig } from '../../emu/index.js';
import { ViewSession } from '../view/session.js';
import { registerBenchSuite } from './suite.js';

const TRACE = fileURLToPath(new URL('../../../traces/examples/linux-6.18-kmem.trace.gz', import.meta.url));
const STEPS = 500;
const BACK_FROM = 2000;

for (const allocator of ['vmzone', 'uma'] as const) {
  let session: ViewSession | undefined;
  const open = () => ViewSession.open(TRACE, { machine: loadMachineConfig('amd64-host', { cpus: 2 }), allocator });
  registerBenchSuite({
    name: `view-${allocator}`,
    setup: async () => {
      session = await open();
    },
    add: (suite: Benchmark.Suite) => {
      suite.add(`view step 1 + state, ${allocator}, linux-6.18-kmem, 2 CPUs amd64-host`, {
        defer: true,
        minSamples: 5,
        fn: (deferred: { resolve: () => void }) => {
          void (async () => {
            for (let i = 0; i < STEPS; i++) {
              await session!.step(1);
              JSON.stringify(session!.state());
            }
            deferred.resolve();
          })();
        },
      });
      suite.add(`view back 1 from event ${BACK_FROM} + state, ${allocator}`, {
        defer: true,
        minSamples: 3,
        fn: (deferred: { resolve: () => void }) => {
          void (async () => {
            await session!.goto(BACK_FROM);
            await session!.goto(BACK_FROM - 1);
            JSON.stringify(session!.state());
            deferred.resolve();
          })();
        },
      });
    },
    describe: (b) => ((b.name ?? '').includes('back') ? `${(1000 / b.hz).toFixed(0)} ms per step back (and forward again)` : `${(b.hz * STEPS).toFixed(0)} steps/s with the state`),
  });
}
