import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import { sysctl } from '../../kernel/index.js';
import {
  OP_ALLOC, OP_FREE, OP_MALLOC, OP_MFREE, OP_PALLOC, OP_PFREE, OP_THINK, OP_ZONE, TraceReader, replay, type AllocatorName, type EventSource,
  type TraceEvent,
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

describe('replay: many CPUs, memory pressure, reused ids', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kmemu-replay-'));
  /** A trace file of these event lines; replayed through a TraceReader (names and lines in messages). */
  const traceFile = (name: string, lines: string[]) => {
    const file = join(dir, name);
    writeFileSync(file, `kmemu-trace 1\n${lines.join('\n')}\n`);
    return file;
  };
  const run = async (file: string, allocator: AllocatorName = 'vmzone', cpus = 4) =>
    replay(await TraceReader.open(file), { machine: loadMachineConfig('coursework', { cpus }), allocator });
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it.each(['vmzone', 'uma'] as const)('replay() boots 64 CPUs and replays one alloc/free pair on each (%s)', async (allocator) => {
    const t0 = performance.now();
    const r = await replay(source(pairs(64, 1), 64), { machine: machine(64), allocator });
    expect([r.totals.events, r.totals.allocations, r.totals.frees]).toEqual([193, 64, 64]);
    expect(r.cpus).toHaveLength(64);
    // Boot and replay on 64 CPUs take about 1 s on this host.
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it.each(['vmzone', 'uma'] as const)('a malloc bigger than the free memory fails at once with its line and the machine\'s memory (%s)', async (allocator) => {
    const file = traceFile('big.trace', ['0 m 100 2', '0 m 268435456 1']);
    await expect(run(file, allocator)).rejects.toThrow(
      `${file}:3: object 1: malloc of 268435456 bytes cannot be satisfied: the machine has 256 MiB of RAM (coursework), 237.1 MiB free after boot`,
    );
  });

  it('a page allocation bigger than the memory names its own object, not the next one', async () => {
    const file = traceFile('p20.trace', ['0 zone 1 z 64', '0 P 20 1', '0 a 1 2']);
    await expect(run(file)).rejects.toThrow(
      `${file}:3: object 1: allocation of 2^20 pages (4 GiB) cannot be satisfied: the machine has 256 MiB of RAM (coursework), 237.1 MiB free after boot`,
    );
  });

  it('memory that runs out with no CPU left to free any names the allocation that sleeps in vm_wait', async () => {
    const file = traceFile('oom.trace', range(1, 240).map((i) => `0 P 8 ${i}`));
    await expect(run(file)).rejects.toThrow(
      `${file}:237: object 236: allocation of 2^8 pages (1 MiB) cannot be satisfied: the machine has 256 MiB of RAM (coursework), ` +
        '1.5 MiB free and 235 MiB in 235 live objects of the trace, and no CPU will free any',
    );
  });

  it.each(['vmzone', 'uma'] as const)('memory that runs low while another CPU frees: the allocations sleep in vm_wait (kmem_alloc3 holding vm_token) and go on (%s)', async (allocator) => {
    // CPU0 takes 235 MiB of pages and then 64 KiB mallocs, which sleep in vm_wait inside
    // kmem_alloc3 until CPU1, after 50 M cycles of thinking, frees the pages. (The pageout
    // daemon's pass in vm_wait finds nothing to reclaim: UMA caches no free slabs here.)
    const file = traceFile('low.trace', [
      ...range(1, 235).map((i) => `0 P 8 ${i}`),
      ...range(300, 319).map((i) => `0 m 65536 ${i}`),
      '1 t 50000000',
      ...range(1, 235).map((i) => `1 Q ${i}`),
      ...range(300, 319).map((i) => `0 x ${i}`),
    ]);
    const r = await run(file, allocator);
    expect([r.totals.events, r.totals.allocations, r.totals.frees]).toEqual([511, 255, 255]);
    expect(r.totals.makespanCycles).toBe(allocator === 'vmzone' ? 68_953_988 : 68_973_063);
  });

  it('memory that runs out while UMA caches free items: the pageout daemon drains the depot and the allocation goes on (uma)', async () => {
    // 2000 items of 2048 bytes (1000 pages) allocated and freed: most of them wait in the zone's
    // depot. Then 17 MiB of page allocations on a 32 MiB machine, more than is free: the daemon,
    // woken below the paging threshold, runs at the end of an event (userret) and again in
    // vm_wait, and its uma_reclaim gives the depot's slabs back. Before the daemon this trace
    // ended in "no CPU will free any".
    const file = traceFile('reclaim.trace', [
      '0 zone 1 z 2048',
      ...range(1, 2000).map((i) => `0 a 1 ${i}`),
      ...range(1, 2000).map((i) => `0 f 1 ${i}`),
      ...range(5001, 5017).map((i) => `0 P 8 ${i}`),
    ]);
    let counts: (number | undefined)[] = [];
    const r = await replay(await TraceReader.open(file), {
      machine: loadMachineConfig('coursework', { cpus: 1, memory: { size: '32m' } }),
      allocator: 'uma',
      onFinish: (k) => {
        counts = ['vm.stats.vm.v_pdwakeups', 'vm.uma_reclaimed_pages', 'vm.stats.vm.v_free_count'].map((n) => sysctl(k, n));
      },
    });
    expect([r.totals.events, r.totals.allocations, r.totals.frees]).toEqual([4018, 2017, 2000]);
    expect(counts).toEqual([2, 955, 724]);
  });

  it('an id reused on another CPU after its free: each free matches the incarnation file order gives it', async () => {
    // CPU0's free of 5 is of CPU1's second incarnation: it waits for it instead of freeing its
    // own first one again (which left CPU1's free waiting forever: a deadlock).
    const file = traceFile('reuse.trace', ['0 zone 1 z 64', '0 a 1 5', '1 t 100000', '1 f 1 5', '1 a 1 5', '0 f 1 5']);
    const r = await run(file);
    expect([r.totals.events, r.totals.allocations, r.totals.frees, r.totals.makespanCycles]).toEqual([6, 2, 2, 101_007]);
    expect(r.cpus.map((c) => c.idleCycles)).toEqual([76_266, 0, 0, 0]);
  });
});

