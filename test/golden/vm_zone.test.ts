// Golden figures of vm_zone: a fixed alloc/free workload on 2 CPUs (coursework, 32 MiB) with
// upstream's per-CPU arrays in the zone header, with aligned vm_zpcpu slots, and with the
// per-CPU lists off. Per path label: ops, cycles, cache-to-cache transfers, invalidations,
// spin cycles.
import { describe, it } from 'vitest';
import { zalloc, zfree, zinit, type ZoneOptions } from '../../kernel/index.js';
import { bootedMachine, onCpu } from '../kernel/helpers.js';
import { expectGolden } from './golden.js';

const labels = ['zone.alloc.pcpu', 'zone.alloc.locked', 'zone.alloc.zget', 'zone.free.pcpu', 'zone.free.locked'];
const kinds = ['ops', 'cycles', 'coherence.c2cTransfer', 'coherence.c2cClean', 'coherence.invalidationSent', 'lock.spinCycles'] as const;

function measure(opts: ZoneOptions) {
  const { m, k } = bootedMachine({ cpus: 2 });
  const z = onCpu(m, 0, (cpu) => zinit(k, cpu, 'golden', 64, 0, 0, 1, opts))!;
  onCpu(m, 0, function* (cpu) {
    const warm: number[] = [];
    for (let i = 0; i < 400; i++) warm.push(yield* zalloc(k, cpu, z));
    for (const a of warm) yield* zfree(k, cpu, z, a);
  });
  m.barrier();
  const before = m.snapshot();
  m.runAll(function* (cpu) {
    const held: number[] = [];
    for (let i = 0; i < 200; i++) {
      yield* cpu.checkpoint();
      const a = yield* zalloc(k, cpu, z);
      cpu.store64(a + 16, i); // the consumer writes the object
      held.push(a);
      if (held.length > 8) yield* zfree(k, cpu, z, held.shift()!);
    }
    for (const a of held) yield* zfree(k, cpu, z, a);
  });
  const d = m.snapshot().minus(before);
  const out: Record<string, Record<string, number>> = {};
  for (const l of labels) {
    const row: Record<string, number> = {};
    for (const kind of kinds) row[kind] = d.total(kind, l);
    if (row.ops !== 0 || row.cycles !== 0) out[l] = row;
  }
  return { perLabel: out, makespan: Math.max(...d.clocks) };
}

describe('golden: vm_zone', () => {
  it('a 2-CPU alloc/free workload in both per-CPU layouts and with per-CPU lists off', () => {
    expectGolden('vm_zone-2cpu', {
      workload: 'coursework, 2 CPUs, 32 MiB; zone of 64-byte items warmed with 400; each CPU 200 zallocs holding 8, writing each object once',
      upstreamLayout: measure({}),
      alignedLayout: measure({ aligned: true }),
      perCpuOff: measure({ pcpu: false }),
    });
  });
});
