// Golden figures of the kernel VM: boot on the coursework machine (2 CPUs, 32 MiB) and a fixed
// kmem_alloc3 / touch / kmem_free sequence, per CPU and per path label.
import { describe, it } from 'vitest';
import type { CounterSnapshot } from '../../emu/index.js';
import { kmem_alloc3, kmem_free } from '../../kernel/index.js';
import { bootedMachine } from '../kernel/helpers.js';
import { expectGolden } from './golden.js';

const kinds = ['cycles', 'mem.loads', 'mem.stores', 'mem.atomics', 'l1d.readMiss', 'l1d.writeMiss', 'llc.miss', 'coherence.c2cTransfer', 'tlb.walkLoads', 'ipi.sent', 'lock.spinCycles'] as const;

function byLabel(s: CounterSnapshot): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const label of s.labels) {
    const row: Record<string, number> = {};
    for (const kind of kinds) {
      const v = s.total(kind, label);
      if (v !== 0) row[kind] = v;
    }
    if (Object.keys(row).length > 0) out[label] = row;
  }
  return out;
}

describe('golden: kernel', () => {
  it('boot and a kmem_alloc3 / touch / kmem_free sequence cost what they cost', () => {
    const { m, k } = bootedMachine({ cpus: 2 });
    const afterBoot = m.snapshot();
    let va = 0;
    m.run([
      function* (cpu) {
        va = yield* kmem_alloc3(k, cpu, k.kernel_map, 2 * 4096, 0);
        cpu.store64(va, 1);
      },
    ]);
    m.barrier();
    m.run([undefined, function* (cpu) { cpu.store64(va + 4096, 2); }]);
    m.barrier();
    m.run([function* (cpu) { yield* kmem_free(k, cpu, k.kernel_map, va, 2 * 4096); }]);
    const end = m.snapshot();
    expectGolden('kernel-boot-kmem', {
      machine: 'coursework, 2 CPUs, 32 MiB',
      bootClocks: afterBoot.clocks,
      boot: byLabel(afterBoot),
      sequence: byLabel(end.minus(afterBoot)),
      finalClocks: end.clocks,
    });
  });
});
