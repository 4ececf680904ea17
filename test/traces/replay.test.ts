import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import { sysctl, sysctl_vm_zone, uma_vmstat_z } from '../../kernel/index.js';
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


describe('replay: --warmup (steady-state windows)', () => {
  const PAIRS = 'test/fixtures/traces/pairs-4cpu.trace';
  const NET = 'test/fixtures/traces/net-forward-2cpu.trace';
  /** pairs-4cpu on 4 CPUs of coursework (vm_zone), its end state (sysctl vm.zone) kept in `zones`. */
  const pairsRun = async (warmup?: number, allocator: AllocatorName = 'vmzone') => {
    let zones = '';
    const r = await replay(await TraceReader.open(PAIRS), {
      machine: loadMachineConfig('coursework', { cpus: 4 }),
      allocator,
      ...(warmup === undefined ? {} : { warmup }),
      onFinish: (k) => {
        zones = allocator === 'vmzone' ? sysctl_vm_zone(k) : uma_vmstat_z(k);
      },
    });
    return { r, zones };
  };
  const ops = (r: { paths: { path: string; ops: number }[] }, path: string) => r.paths.find((p) => p.path === path)?.ops ?? 0;

  it('replay() with warmup 0 gives the same report as without the option', async () => {
    const [a, b] = [await pairsRun(), await pairsRun(0)];
    expect(b.r).toEqual(a.r);
    expect(JSON.stringify(b.r)).toBe(JSON.stringify(a.r));
    expect(a.r.run.warmup).toBeUndefined();
    expect(a.r.totals.warmup).toBeUndefined();
  });

  it('replay() with warmup 100 reports each CPU\'s window after its 100th event and ends in the same state', async () => {
    const full = (await pairsRun()).r;
    const { r, zones } = await pairsRun(100);
    // CPU0 has 510 events (10 zones, 250 pairs), CPUs 1-3 500 each: 400 events of warm-up, and
    // the zone creations and 45 pairs of CPU0's and 50 pairs of each other CPU's in it.
    expect(r.run.warmup).toBe(100);
    expect(r.totals.warmup).toEqual({ events: 400, allocations: 195, frees: 195, thinkCycles: 0, allocatorOps: 390, allocatorCycles: 171_509 });
    expect([r.totals.events, r.totals.allocations, r.totals.frees]).toEqual([2010 - 400, 1000 - 195, 1000 - 195]);
    // The same operations as the full run, with the same latencies: the window's are the rest.
    expect(r.totals.allocatorOps).toBe(full.totals.allocatorOps - r.totals.warmup!.allocatorOps);
    expect(r.totals.allocatorCycles).toBe(full.totals.allocatorCycles - r.totals.warmup!.allocatorCycles);
    expect([r.totals.allocatorOps, r.totals.allocatorCycles, r.totals.makespanCycles]).toEqual([1610, 342_653, 102_606]);
    expect(r.paths.reduce((n, p) => n + p.ops, 0)).toBe(r.totals.allocatorOps);
    expect(r.zones.reduce((n, z) => n + z.ops, 0)).toBe(r.totals.allocatorOps);
    expect(r.totals.makespanCycles).toBeLessThan(full.totals.makespanCycles);
    const cycles = (x: typeof r) => x.regions.reduce((n, g) => n + g.cycles, 0);
    expect(cycles(r)).toBeLessThan(cycles(full));
    // Per CPU: the window's cycles are the CPU's clock at the end less at its window's start.
    expect(r.cpus.map((c) => c.busyCycles + c.spinCycles + c.idleCycles)).toEqual([40_689, 102_606, 102_275, 101_185]);
    expect(r.totals.memory).toEqual(full.totals.memory);
    expect(zones).toBe((await pairsRun()).zones);
  });

  it('after the warm-up, steady-state pairs cost less per operation: the zone\'s first allocations (zget) are left out', async () => {
    const mean = (x: { totals: { allocatorCycles: number; allocatorOps: number } }) => x.totals.allocatorCycles / x.totals.allocatorOps;
    const full = (await pairsRun()).r;
    const steady = (await pairsRun(100)).r;
    expect([ops(full, 'zone.alloc.zget'), ops(steady, 'zone.alloc.zget')]).toEqual([3, 0]);
    expect(steady.regions.find((x) => x.label === 'zone.alloc.zget')).toBeUndefined();
    expect(mean(steady)).toBeLessThan(mean(full));
    expect([Math.round(mean(full) * 10) / 10, Math.round(mean(steady) * 10) / 10]).toEqual([257.1, 212.8]);
    // UMA: the slab layer's and the backend's allocations, and the depot's, are all in the warm-up.
    const uFull = (await pairsRun(undefined, 'uma')).r;
    const uSteady = (await pairsRun(100, 'uma')).r;
    expect(uFull.paths.map((p) => p.path).sort()).toEqual(['uma.alloc.backend', 'uma.alloc.cpucache', 'uma.alloc.depot', 'uma.free.cpucache', 'uma.free.depot', 'uma.free.slab']);
    expect(uSteady.paths.map((p) => [p.path, p.ops])).toEqual([['uma.free.cpucache', 805], ['uma.alloc.cpucache', 805]]);
    expect(mean(uSteady)).toBeLessThan(mean(uFull));
  });

  it('a CPU with warmup events or fewer contributes nothing; past every CPU\'s events the window is empty', async () => {
    // CPUs 1-3 have exactly 500 events: only CPU0's last 10 pairs' events are measured.
    const r = (await pairsRun(500)).r;
    expect(r.totals.events).toBe(10);
    expect(r.totals.warmup!.events).toBe(2000);
    expect(r.cpus.slice(1).map((c) => [c.busyCycles, c.spinCycles, c.idleCycles])).toEqual([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
    expect(r.totals.makespanCycles).toBe(r.cpus[0]!.busyCycles + r.cpus[0]!.spinCycles + r.cpus[0]!.idleCycles);
    const none = (await pairsRun(10_000)).r;
    expect([none.totals.events, none.totals.allocatorOps, none.totals.makespanCycles, none.paths, none.zones, none.regions]).toEqual([0, 0, 0, [], [], []]);
    expect(none.totals.warmup!.events).toBe(2010);
    expect(none.totals.memory).toEqual(r.totals.memory);
  });

  it('net-forward (UMA, amd64-host): after a warm-up past the packet zone\'s bucket fills, m_getcl\'s largest latency is a cache hit\'s', async () => {
    const run = async (warmup: number) =>
      replay(await TraceReader.open(NET), { machine: loadMachineConfig('amd64-host', { cpus: 2 }), allocator: 'uma', warmup });
    const full = await run(0);
    const steady = await run(800);
    // CPU0 takes the 1000 packets, CPU1 frees them. The fills by mb_zinit_pack of the packet
    // zone's buckets, in allocations 1, 129, 385 and 769 (the 2005 rule grows the bucket at
    // each), are the full run's largest: 171 342 cycles for the last. The window is the last
    // 200 of each CPU's events.
    const getcl = (r: typeof full) => r.mbuf!.allocs.find((p) => p.path === 'mbuf.getcl')!;
    expect([getcl(full).ops, getcl(full).cycles.max, getcl(full).cycles.total]).toEqual([1000, 171_342, 582_768]);
    expect([getcl(steady).ops, getcl(steady).cycles.max, getcl(steady).cycles.total, getcl(steady).cycles.mean]).toEqual([200, 287, 8079, 40.4]);
    expect(steady.mbuf!.frees.map((p) => [p.path, p.ops, p.cycles.max])).toEqual([['mbuf.free_ext', 200, 269]]);
    expect(steady.totals.warmup).toEqual({ events: 1600, allocations: 800, frees: 800, thinkCycles: 0, allocatorOps: 1600, allocatorCycles: 665_599 });
    expect([steady.totals.events, steady.totals.allocatorOps, steady.totals.allocatorCycles, steady.totals.makespanCycles]).toEqual([400, 400, 23_776, 60_133]);
    expect(steady.totals.allocatorCycles).toBe(full.totals.allocatorCycles - steady.totals.warmup!.allocatorCycles);
    expect(steady.mbuf!.netstat).toEqual(full.mbuf!.netstat);
  });

  it('replay() refuses a warmup that is not a whole number of events', async () => {
    await expect(replay(source(pairs(1, 1)), { machine: machine(1), warmup: -1 })).rejects.toThrow('replay: warmup: expected a number of events per CPU of 0 or more, got -1');
    await expect(replay(source(pairs(1, 1)), { machine: machine(1), warmup: 1.5 })).rejects.toThrow('got 1.5');
  });
});
