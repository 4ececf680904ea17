// The shape of Bonwick & Adams 2001, Figure 3.8, on UMA: alloc/free pairs with 50 cycles of
// think time between, 8000 pairs per CPU, replayed on 16 CPUs of the xeon-8180 preset against
// one CPU. Throughput is operations / makespan. The makespan includes the warm-up: each CPU's
// first bucket fill takes a whole slab, and those 16 kmem_alloc3 calls serialize on kernel_map
// (about 155 000 cycles each at 16 CPUs against 25 000 alone), which is why the run is long.
import { describe, expect, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import { OP_ALLOC, OP_FREE, OP_MALLOC, OP_MFREE, OP_PALLOC, OP_PFREE, OP_THINK, OP_ZONE, replay, type EventSource, type ReplayReport, type TraceEvent } from '../../traces/index.js';

const ev = (cpu: number, op: number, f: Partial<TraceEvent> = {}): TraceEvent => ({ cpu, op, zone: 0, obj: 0, size: 0, name: '', flags: [], line: 0, ...f });

function pairs(cpus: number, n: number, think: number): EventSource {
  let i = 0;
  let obj = 1;
  let sentZone = false;
  return {
    async next() {
      if (i >= n) return null;
      const out: TraceEvent[] = [];
      if (!sentZone) {
        out.push(ev(0, OP_ZONE, { zone: 1, name: 'obj64', size: 64 }));
        sentZone = true;
      }
      for (const end = Math.min(n, i + 256); i < end; i++) {
        for (let c = 0; c < cpus; c++) {
          out.push(ev(c, OP_ALLOC, { zone: 1, obj }), ev(c, OP_THINK, { size: think }), ev(c, OP_FREE, { zone: 1, obj }));
          obj++;
        }
      }
      return out;
    },
  };
}

async function run(cpus: number, o: { pcpu: boolean; aligned: boolean }, n = 8000, syncQuantum?: number): Promise<ReplayReport> {
  const machine = loadMachineConfig('xeon-8180', { cpus, memory: { size: '64m' }, ...(syncQuantum === undefined ? {} : { syncQuantum }) });
  return replay(pairs(cpus, n, 50), { machine, allocator: 'uma', ...o });
}

const throughput = (r: ReplayReport) => (r.totals.allocations + r.totals.frees) / r.totals.makespanCycles;
const mean = (r: ReplayReport, path: string) => r.paths.find((p) => p.path === path)!.cycles.mean;

describe('uma scaling', () => {
  it('per-CPU buckets scale to 16 CPUs at least 12x; without them the zone lock holds throughput near or below 2x', async () => {
    const on1 = await run(1, { pcpu: true, aligned: true });
    const on16 = await run(16, { pcpu: true, aligned: true });
    // Without buckets the zone lock is saturated from the start: a shorter run shows it.
    const off1 = await run(1, { pcpu: false, aligned: false }, 2000);
    const off16 = await run(16, { pcpu: false, aligned: false }, 2000);
    const speedupOn = throughput(on16) / throughput(on1);
    const speedupOff = throughput(off16) / throughput(off1);
    expect(speedupOn).toBeGreaterThanOrEqual(12);
    expect(speedupOff).toBeLessThanOrEqual(2);
    // Per operation on 16 CPUs: the per-CPU bucket path against the locked slab path.
    const cpucache = mean(on16, 'uma.alloc.cpucache') + mean(on16, 'uma.free.cpucache');
    const locked = mean(off16, 'uma.alloc.slab') + mean(off16, 'uma.free.slab');
    expect(cpucache).toBeLessThan(locked / 10);
    // The per-CPU path costs about what it costs alone: no line moves between CPUs on it.
    expect(mean(on16, 'uma.alloc.cpucache')).toBeLessThan(1.2 * mean(on1, 'uma.alloc.cpucache'));
  }, 120_000);

  it('upstream\'s packed uma_cache array moves lines between neighbouring CPUs on the per-CPU path', async () => {
    // In strict order (quantum 0): with the out-of-order core a per-CPU operation is short
    // enough that the default 1000-cycle quantum lets a CPU run many of them ahead of its
    // neighbours, and their plain stores to the shared lines then rarely interleave (strict
    // order, 2005's 120-byte header: 120,118 transfers packed against 194 aligned).
    const packed = await run(16, { pcpu: true, aligned: false }, 8000, 0);
    const aligned = await run(16, { pcpu: true, aligned: true }, 8000, 0);
    const c2c = (r: ReplayReport) => ['uma.alloc.cpucache', 'uma.free.cpucache'].reduce((n, p) => n + r.paths.find((x) => x.path === p)!.c2cTransfers, 0);
    expect(c2c(packed)).toBeGreaterThan(10 * c2c(aligned));
    expect(throughput(packed)).toBeLessThan(throughput(aligned));
  }, 120_000);
});

describe('UmaAllocator', () => {
  it('replays zones, malloc(9) by size class and large mallocs, and pages; memory() counts UMA\'s pages and cached items', async () => {
    const events = [
      ev(0, OP_ZONE, { zone: 1, name: 'z', size: 200 }),
      ev(0, OP_ALLOC, { zone: 1, obj: 1 }),
      ev(1, OP_MALLOC, { size: 100, obj: 2 }),
      ev(1, OP_MALLOC, { size: 20_000, obj: 3 }),
      ev(0, OP_FREE, { zone: 1, obj: 1 }),
      ev(1, OP_MFREE, { obj: 2 }),
      ev(0, OP_MFREE, { obj: 3 }),
      ev(1, OP_PALLOC, { size: 1, obj: 4 }),
      ev(1, OP_PFREE, { obj: 4 }),
    ];
    let sent = false;
    const src: EventSource = { async next() { if (sent) return null; sent = true; return events; } };
    const r = await replay(src, { machine: loadMachineConfig('coursework', { cpus: 2, memory: { size: '32m' } }), allocator: 'uma' });
    expect(r.totals.allocations).toBe(4);
    expect(r.zones.map((z) => z.zone).sort()).toEqual(['malloc-128', 'malloc-large', 'pages', 'z']);
    expect(r.paths.map((p) => p.path)).toContain('uma.free.backend');
  });
});
