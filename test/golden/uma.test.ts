// Golden figures of UMA: a fixed alloc/free workload on 1, 2 and 8 CPUs (coursework, 32 MiB),
// with per-CPU buckets and without. Each CPU allocates 300 64-byte items holding up to 100 —
// more than a bucket, so buckets move through the depot — writing each once, then frees the
// rest. A kernel without INVARIANTS (whose uma_dbg takes the zone lock on every operation).
// Per path label: ops, cycles, cache-to-cache transfers, invalidations, spin cycles.
import { describe, it } from 'vitest';
import { M_WAITOK, UMA_ALIGN_PTR, uma_zalloc, uma_zcreate, uma_zfree, umaOptions, umaZoneStats, type UmaZoneOptions } from '../../kernel/index.js';
import { bootedMachine, onCpu } from '../kernel/helpers.js';
import { expectGolden } from './golden.js';

const labels = ['cpucache', 'depot', 'slab', 'backend'].flatMap((p) => [`uma.alloc.${p}`, `uma.free.${p}`]);
const kinds = ['ops', 'cycles', 'coherence.c2cTransfer', 'coherence.c2cClean', 'coherence.invalidationSent', 'lock.spinCycles'] as const;

function measure(cpus: number, opts: UmaZoneOptions) {
  const { m, k } = bootedMachine({ cpus });
  umaOptions(k).invariants = false;
  const z = onCpu(m, 0, (cpu) => uma_zcreate(k, cpu, 'golden', 64, undefined, undefined, undefined, undefined, UMA_ALIGN_PTR, 0, opts));
  m.barrier();
  const before = m.snapshot();
  m.runAll(function* (cpu) {
    const held: number[] = [];
    for (let i = 0; i < 300; i++) {
      yield* cpu.checkpoint();
      const a = yield* uma_zalloc(k, cpu, z, M_WAITOK);
      cpu.store64(a + 16, i);
      held.push(a);
      if (held.length > 100) yield* uma_zfree(k, cpu, z, held.shift()!);
    }
    for (const a of held) yield* uma_zfree(k, cpu, z, a);
  });
  const d = m.snapshot().minus(before);
  const perLabel: Record<string, Record<string, number>> = {};
  for (const l of labels) {
    const row: Record<string, number> = {};
    for (const kind of kinds) row[kind] = d.total(kind, l);
    if (row.ops !== 0 || row.cycles !== 0) perLabel[l] = row;
  }
  const s = umaZoneStats(k).find((x) => x.name === 'golden')!;
  return { perLabel, makespan: Math.max(...d.clocks), zone: { used: s.used, free: s.free, requests: s.requests, kegPages: s.kegPages } };
}

describe('golden: uma', () => {
  for (const cpus of [1, 2, 8]) {
    it(`a ${cpus}-CPU alloc/free workload with per-CPU buckets and without`, () => {
      expectGolden(`uma-${cpus}cpu`, {
        workload: `coursework, ${cpus} CPU${cpus > 1 ? 's' : ''}, 32 MiB, no INVARIANTS; zone of 64-byte items; each CPU 300 uma_zallocs holding 100, writing each object once`,
        buckets: measure(cpus, {}),
        bucketsOff: measure(cpus, { pcpu: false }),
      });
    });
  }
});
