// Golden figures of vmem(9) on amd64-host: what one vmem_xalloc costs by the path it takes, on
// a fixed workload. An arena of 256 MiB with 4 KiB quanta and quantum caches up to 32 KiB is
// first fragmented (512 segments of 33–96 pages, every other one freed again: 256 free
// fragments on the power-of-two freelists, which begin above 32 quanta); then each phase runs
// 200 alloc/free pairs of one size:
// - qcache: vmem_alloc of 16 KiB, served by the quantum cache's UMA zone after its first fill;
// - instant fit (M_FIRSTFIT) and best fit (M_BESTFIT): vmem_xalloc of 48 pages (192 KiB): instant
//   fit takes the head of the first list whose every segment fits, best fit walks the list
//   that holds 32–63 pages for the smallest that does;
// - import: a child arena with no span of its own importing 64 KiB spans from the arena, each
//   allocation taking a new span and each free releasing it;
// - contended: both CPUs of a 2-CPU machine doing instant-fit pairs on one arena at once.
// Each operation is timed as a replay times it, from retirement to retirement, and filed under
// the path it completed on (vmem.qcache, vmem.xalloc, vmem.import, vmem.xfree). Per phase and
// path: operations, their cycles, and the cache-to-cache transfers and spin cycles of the phase.
import { describe, it } from 'vitest';
import { type Cpu, Machine, type Task, loadMachineConfig } from '../../emu/index.js';
import {
  M_BESTFIT, M_FIRSTFIT, M_NOWAIT, M_WAITOK, VMEM_ADDR_MAX, VMEM_ADDR_MIN, boot, vmem_alloc, vmem_create, vmem_free,
  vmem_set_import, vmem_startup, vmem_xalloc, vmem_xfree, vmemImportXalloc, type Kernel,
} from '../../kernel/index.js';
import { onCpu } from '../kernel/helpers.js';
import { expectGolden } from './golden.js';

const PAGE = 0x1000n;
const BASE = 0xfffffe0000000000n;
const labels = ['vmem.qcache', 'vmem.xalloc', 'vmem.import', 'vmem.xfree'];

/** Per path label: operations and their cycles, retire to retire. */
type Timing = Map<number, { ops: number; cycles: number }>;

/** Runs one vmem operation on cpu and files its cycles under the path it took. */
function* timed<T>(cpu: Cpu, t: Timing, op: Task<T>): Task<T> {
  const t0 = cpu.retired;
  const r = yield* op;
  const row = t.get(cpu.lastOpLabel) ?? { ops: 0, cycles: 0 };
  row.ops++;
  row.cycles += cpu.retired - t0;
  t.set(cpu.lastOpLabel, row);
  return r;
}

function machine(cpus: number): { m: Machine; k: Kernel } {
  const m = new Machine(loadMachineConfig('amd64-host', { cpus }));
  const k = boot(m);
  onCpu(m, 0, (cpu) => vmem_startup(k, cpu));
  return { m, k };
}

function* xalloc(k: Kernel, cpu: Cpu, vm: number, size: bigint, strat: number): Task<bigint> {
  const r = yield* vmem_xalloc(k, cpu, vm, size, 0n, 0n, 0n, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_NOWAIT | strat);
  if (r.error !== 0) throw new Error(`vmem_xalloc of ${size}: error ${r.error}`);
  return r.addr;
}

/** A 256 MiB arena left with 256 free fragments between 256 busy segments. */
function* fragmented(k: Kernel, cpu: Cpu): Task<number> {
  const vm = yield* vmem_create(k, cpu, 'golden', BASE, 256n << 20n, PAGE, 8n * PAGE, M_WAITOK);
  const segs: [bigint, bigint][] = [];
  for (let i = 0; i < 512; i++) {
    const size = BigInt((i * 37) % 64 + 33) * PAGE;
    segs.push([yield* xalloc(k, cpu, vm, size, M_BESTFIT), size]);
  }
  for (let i = 0; i < segs.length; i += 2) yield* vmem_xfree(k, cpu, vm, segs[i]![0], segs[i]![1]);
  return vm;
}

function figures(m: Machine, k: Kernel, phase: (t: Timing) => void): Record<string, Record<string, number>> {
  const t: Timing = new Map();
  const before = m.snapshot();
  phase(t);
  const d = m.snapshot().minus(before);
  const out: Record<string, Record<string, number>> = {};
  for (const l of labels) {
    const row = t.get(k.label[l as keyof typeof k.label]);
    if (row !== undefined) out[l] = { ...row, cyclesPerOp: Math.round((row.cycles / row.ops) * 10) / 10 };
  }
  out.phase = { c2cTransfers: d.total('coherence.c2cTransfer'), spinCycles: d.total('lock.spinCycles') };
  return out;
}

describe('golden: vmem', () => {
  it('cycles per vmem_xalloc by path: quantum cache, instant fit, best fit, import; and two CPUs on one arena', () => {
    const { m, k } = machine(1);
    const vm = onCpu(m, 0, (cpu) => fragmented(k, cpu));
    const pairs = (body: (cpu: Cpu, t: Timing) => Task) => (t: Timing) => onCpu(m, 0, function* (cpu) {
      for (let i = 0; i < 200; i++) yield* body(cpu, t);
    });
    const result: Record<string, unknown> = {};
    result.qcache = figures(m, k, pairs(function* (cpu, t) {
      const r = yield* timed(cpu, t, vmem_alloc(k, cpu, vm, 4n * PAGE, M_NOWAIT | M_FIRSTFIT));
      yield* timed(cpu, t, vmem_free(k, cpu, vm, r.addr, 4n * PAGE));
    }));
    for (const [name, strat] of [['instantFit', M_FIRSTFIT], ['bestFit', M_BESTFIT]] as const) {
      result[name] = figures(m, k, pairs(function* (cpu, t) {
        const a = yield* timed(cpu, t, xalloc(k, cpu, vm, 48n * PAGE, strat));
        yield* timed(cpu, t, vmem_xfree(k, cpu, vm, a, 48n * PAGE));
      }));
    }
    const child = onCpu(m, 0, function* (cpu) {
      const c = yield* vmem_create(k, cpu, 'child', 0n, 0n, PAGE, 0n, M_WAITOK);
      const { importfn, releasefn } = vmemImportXalloc(k);
      yield* vmem_set_import(k, cpu, c, importfn, releasefn, vm, 16n * PAGE);
      return c;
    });
    result.import = figures(m, k, pairs(function* (cpu, t) {
      const a = yield* timed(cpu, t, xalloc(k, cpu, child, 2n * PAGE, M_FIRSTFIT));
      yield* timed(cpu, t, vmem_xfree(k, cpu, child, a, 2n * PAGE));
    }));

    const two = machine(2);
    const shared = onCpu(two.m, 0, (cpu) => fragmented(two.k, cpu));
    result.contended2 = figures(two.m, two.k, (t) => two.m.runAll(function* (cpu) {
      for (let i = 0; i < 200; i++) {
        yield* cpu.checkpoint();
        const a = yield* timed(cpu, t, xalloc(two.k, cpu, shared, 48n * PAGE, M_FIRSTFIT));
        yield* timed(cpu, t, vmem_xfree(two.k, cpu, shared, a, 48n * PAGE));
      }
    }));
    expectGolden('vmem-paths', result);
  });
});
