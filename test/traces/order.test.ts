// Strict order against run-ahead: the figure README.md ("Sync quantum") states. With a quantum,
// a CPU's plain accesses reach the caches ahead of earlier-in-time accesses of the others, and
// the coherence traffic of lines shared without a lock (upstream's packed per-CPU arrays) is
// undercounted.
import { describe, expect, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import { TraceReader, replay } from '../../traces/index.js';

async function traffic(syncQuantum: number | undefined, allocator: 'vmzone' | 'uma') {
  const machine = loadMachineConfig('amd64-host', { cpus: 4, ...(syncQuantum === undefined ? {} : { syncQuantum }) });
  const r = await replay(await TraceReader.open('test/fixtures/traces/pairs-4cpu-8k.trace'), { machine, allocator });
  return r.paths.reduce((n, p) => n + p.c2cTransfers + p.invalidations, 0);
}

describe('synchronization quantum', () => {
  it('amd64-host orders strictly by default: the same transfers and invalidations as syncQuantum 0', async () => {
    expect(await traffic(undefined, 'vmzone')).toBe(await traffic(0, 'vmzone'));
  });

  it.each([['vmzone', 11279, 248], ['uma', 5045, 540]] as const)(
    'run-ahead (syncQuantum 1000) undercounts the coherence traffic of pairs on %s: %i strict, %i run ahead',
    async (allocator, strict, ahead) => {
      expect(await traffic(0, allocator)).toBe(strict);
      expect(await traffic(1000, allocator)).toBe(ahead);
    },
  );
});
