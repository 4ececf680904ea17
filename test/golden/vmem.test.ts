// Golden figures of vmem replay (trace format version 2): the per-path cycles of vmem_alloc and
// vmem_free on a fixed KVA workload (a kernel arena importing from kernel_arena, 2 CPUs) and on
// a fragmented arena with each strategy (coursework machine).
import { describe, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import { generatedSource, replay } from '../../traces/index.js';
import type { GenOptions, ReplayReport } from '../../traces/index.js';
import { expectGolden } from './golden.js';

async function vmemFigures(workload: string, o: GenOptions): Promise<unknown> {
  const r: ReplayReport = await replay(generatedSource(workload, o), { machine: loadMachineConfig('coursework', { cpus: o.cpus }) });
  const rows = (ps: NonNullable<ReplayReport['vmem']>['allocs']) => ps.map((p) => ({ path: p.path, ops: p.ops, cycles: p.cycles }));
  return { totals: r.totals, vmem: { ...r.vmem!, allocs: rows(r.vmem!.allocs), frees: rows(r.vmem!.frees) }, cpus: r.cpus };
}

describe('golden: vmem', () => {
  it('vmem-kva on 2 CPUs: v and V by path (import, xalloc, xfree)', async () => {
    expectGolden('vmem-kva-2cpu', await vmemFigures('vmem-kva', { cpus: 2, events: 600, seed: 1 }));
  });

  it('vmem-frag with 256 fragments: instant fit, best fit, and instant fit with quantum caches of 8 quanta', async () => {
    expectGolden('vmem-frag-256', {
      firstfit: await vmemFigures('vmem-frag', { cpus: 1, events: 200, seed: 1, fragments: 256 }),
      bestfit: await vmemFigures('vmem-frag', { cpus: 1, events: 200, seed: 1, fragments: 256, strategy: 'bestfit' }),
      qcache: await vmemFigures('vmem-frag', { cpus: 1, events: 200, seed: 1, fragments: 256, qcacheMax: 8 }),
    });
  });
});
