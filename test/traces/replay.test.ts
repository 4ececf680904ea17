import { describe, expect, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import {
  OP_ALLOC, OP_FREE, OP_MALLOC, OP_MFREE, OP_PALLOC, OP_PFREE, OP_THINK, OP_ZONE, replay, type EventSource, type TraceEvent,
} from '../../traces/index.js';

const ev = (cpu: number, op: number, f: Partial<TraceEvent> = {}): TraceEvent => ({ cpu, op, zone: 0, obj: 0, size: 0, name: '', flags: [], line: 0, ...f });

function source(events: TraceEvent[], batch = 3): EventSource {
  let i = 0;
  return {
    async next() {
      if (i >= events.length) return null;
      const b = events.slice(i, i + batch);
      i += batch;
      return b;
    },
  };
}

/** Each CPU: n alloc/free pairs of a 64-byte zone with think time between. */
function pairs(cpus: number, n: number, think = 50): TraceEvent[] {
  const out = [ev(0, OP_ZONE, { zone: 1, name: 'obj64', size: 64 })];
  let obj = 1;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < cpus; c++) {
      out.push(ev(c, OP_ALLOC, { zone: 1, obj }), ev(c, OP_THINK, { size: think }), ev(c, OP_FREE, { zone: 1, obj }));
      obj++;
    }
  }
  return out;
}

const machine = (cpus: number) => loadMachineConfig('coursework', { cpus, memory: { size: '32m' } });

describe('replay', () => {
  it('counts every event and files every allocation and free under the path it took', async () => {
    const r = await replay(source(pairs(2, 50)), { machine: machine(2) });
    expect([r.totals.events, r.totals.allocations, r.totals.frees, r.totals.thinkCycles]).toEqual([301, 100, 100, 100 * 50]);
    expect(r.totals.allocatorOps).toBe(200);
    expect(r.paths.map((p) => p.path).sort()).toEqual(['zone.alloc.pcpu', 'zone.alloc.zget', 'zone.free.pcpu']);
    expect(r.zones.find((z) => z.zone === 'obj64')!.ops).toBe(200);
    expect(r.schema).toBe('kmemu.report/1');
  });

  it('a free of an object another CPU allocates later in time waits, idle, for the allocation', async () => {
    // CPU1's first event frees object 7, which CPU0 allocates after thinking 20 000 cycles.
    const events = [
      ev(0, OP_ZONE, { zone: 1, name: 'z', size: 64 }),
      ev(1, OP_FREE, { zone: 1, obj: 7 }),
      ev(0, OP_THINK, { size: 20_000 }),
      ev(0, OP_ALLOC, { zone: 1, obj: 7 }),
    ];
    const r = await replay(source(events, 1), { machine: machine(2) });
    expect(r.totals.frees).toBe(1);
    expect(r.cpus[1]!.idleCycles).toBeGreaterThan(20_000);
    expect(r.regions.find((x) => x.label === 'replay.wait')!.idleCycles).toBeGreaterThan(20_000);
  });

  it('the consumer writes the first --touch lines of each object', async () => {
    const t1 = await replay(source(pairs(1, 20)), { machine: machine(1), touch: 1 });
    const t3 = await replay(source(pairs(1, 20)), { machine: machine(1), touch: 3 });
    const touched = (r: typeof t1) => r.regions.find((x) => x.label === 'consumer.touch')!;
    // 64-byte objects: a second and third line do not exist, so the touch stays one line.
    expect(touched(t3).cycles).toBe(touched(t1).cycles);
    const big = [ev(0, OP_ZONE, { zone: 1, name: 'big', size: 512 }), ev(0, OP_ALLOC, { zone: 1, obj: 1 }), ev(0, OP_FREE, { zone: 1, obj: 1 })];
    const b1 = await replay(source(big), { machine: machine(1), touch: 1 });
    const b3 = await replay(source(big), { machine: machine(1), touch: 3 });
    expect(touched(b3).cycles).toBeGreaterThan(touched(b1).cycles);
  });

  it('folds a trace recorded on more CPUs onto the machine\'s, trace CPU c on CPU c mod N', async () => {
    const r = await replay(source(pairs(4, 10)), { machine: machine(2) });
    expect(r.trace.cpus).toBe(4);
    expect(r.totals.allocations).toBe(40);
    expect(r.cpus).toHaveLength(2);
  });

  it('replays malloc and page events', async () => {
    const events = [
      ev(0, OP_MALLOC, { size: 100, obj: 1 }),
      ev(0, OP_MALLOC, { size: 9000, obj: 2 }),
      ev(0, OP_PALLOC, { size: 1, obj: 3 }),
      ev(0, OP_MFREE, { obj: 1 }),
      ev(0, OP_MFREE, { obj: 2 }),
      ev(0, OP_PFREE, { obj: 3 }),
    ];
    const r = await replay(source(events), { machine: machine(1) });
    expect(r.totals.allocations).toBe(3);
    expect(r.zones.map((z) => z.zone).sort()).toEqual(['malloc-128', 'malloc-large', 'pages']);
    expect(r.paths.find((p) => p.path === 'vm_page.alloc')!.ops).toBe(1);
  });

  it('on contended alloc/free pairs the per-CPU path costs less per operation than the locked path', async () => {
    const on = await replay(source(pairs(4, 200, 20), 64), { machine: machine(4), pcpu: true });
    const off = await replay(source(pairs(4, 200, 20), 64), { machine: machine(4), pcpu: false });
    const mean = (r: typeof on) => r.totals.allocatorCycles / r.totals.allocatorOps;
    expect(mean(on)).toBeLessThan(mean(off));
    expect(on.totals.makespanCycles).toBeLessThan(off.totals.makespanCycles);
    expect(off.paths.find((p) => p.path === 'zone.free.locked')!.spinCycles).toBeGreaterThan(0);
  });

  it('is deterministic', async () => {
    const a = await replay(source(pairs(3, 30)), { machine: machine(3) });
    const b = await replay(source(pairs(3, 30)), { machine: machine(3) });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });
});
