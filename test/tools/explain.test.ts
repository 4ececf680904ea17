import { describe, expect, it } from 'vitest';
import type { PathStats, RegionStats, ReplayReport } from '../../traces/index.js';
import { explainCompare, legend, wrap } from '../../tools/explain.js';
import { runCompare, type ReplayCliOptions } from '../../tools/replay.js';

function region(label: string, cycles: number, spinCycles = 0): RegionStats {
  return { label, cycles, l1dMisses: 0, llcMisses: 0, tlbMisses: 0, c2cTransfers: 0, spinCycles, idleCycles: 0 };
}

function path(p: string, ops: number): PathStats {
  return {
    path: p, ops, cycles: { total: 0, mean: 0, p50: 0, p99: 0, max: 0 },
    l1dMisses: 0, l2Misses: 0, llcMisses: 0, tlbMisses: 0, walkCycles: 0, c2cTransfers: 0, invalidations: 0, spinCycles: 0,
  };
}

function report(o: { cycles: number; ops: number; regions: RegionStats[]; paths?: PathStats[]; pages?: number; cached?: number }): ReplayReport {
  return {
    schema: 'kmemu.report/1',
    trace: { name: 't', cpus: 2 },
    machine: { name: 'coursework', cpus: 2, clockGHz: 1 },
    allocator: { name: 'vmzone', perCpuCaching: true, alignedPerCpu: false, touchLines: 1 },
    totals: {
      events: o.ops, allocations: o.ops / 2, frees: o.ops / 2, thinkCycles: 0, makespanCycles: o.cycles,
      allocatorCycles: o.cycles, allocatorOps: o.ops, memory: { pages: o.pages ?? 4, cachedFreeItems: o.cached ?? 0 },
    },
    paths: o.paths ?? [],
    zones: [],
    regions: o.regions,
    cpus: [],
  } as unknown as ReplayReport;
}

describe('explainCompare()', () => {
  it('says how much cheaper caching made an operation and which lock the spinning moved to', () => {
    const a = report({ cycles: 1000, ops: 10, regions: [region('zone.alloc.pcpu', 600), region('kmem.alloc', 400, 100)] });
    const b = report({ cycles: 5000, ops: 10, regions: [region('zone.alloc.locked', 4900, 3000), region('kmem.alloc', 100, 10)] });
    expect(explainCompare(a, b)).toBe(wrap(
      'Per-CPU caching makes an allocator operation 5.00× cheaper here (100.0 cycles per operation with per-CPU caching, 500.0 without). ' +
        'The paths it changes take 60.0% of the cycles with it and 98.0% without. ' +
        'Spin: 100 cycles with per-CPU caching, 100.0% of it on the kernel_map lock and the VM token (kmem.alloc); ' +
        '3,010 without, 99.7% of it on the zone spinlock (zone.alloc.locked). ' +
        'Turning the caches off moved the spinning from the kernel_map lock and the VM token to the zone spinlock.',
      100,
    ));
  });

  it('blames lockless per-CPU paths that move lines between CPUs on shared lines, and points at --aligned', () => {
    const fast = { ...region('zone.alloc.pcpu', 800), c2cTransfers: 25 };
    const a = report({ cycles: 1000, ops: 100, regions: [fast, region('kmem.alloc', 200)] });
    const b = report({ cycles: 3000, ops: 100, regions: [region('zone.alloc.locked', 3000)] });
    expect(explainCompare(a, b).replace(/\n/g, ' ')).toContain(
      "The per-CPU paths take no lock, yet they caused 25 cache-to-cache transfers (0.25 per operation): lines shared by several CPUs' per-CPU state or by the zone header (false sharing; --aligned gives each CPU its own lines).",
    );
    a.allocator.alignedPerCpu = true;
    expect(explainCompare(a, b).replace(/\n/g, ' ')).toContain('(0.25 per operation): lines shared by several CPUs\' per-CPU state or by the zone header. ');
  });

  it('names where the cycles went when the cached paths are a small share, and the zone growth caching caused', () => {
    const regions = (fast: string) => [region('vm_page.zero', 500), region('replay.wait', 300), region(fast, 100), region('think', 10)];
    const a = report({ cycles: 1000, ops: 10, regions: regions('zone.alloc.pcpu'), paths: [path('zone.alloc.zget', 30)], pages: 60, cached: 500 });
    const b = report({ cycles: 1020, ops: 10, regions: regions('zone.alloc.locked'), paths: [path('zone.alloc.zget', 20)], pages: 40 });
    expect(explainCompare(a, b)).toBe(wrap(
      'Per-CPU caching changes the cost of an allocator operation little here (100.0 cycles per operation with per-CPU caching, 102.0 without: 1.02×). ' +
        'The paths it changes take 11.0% of the cycles with it and 11.0% without. ' +
        "Most of the run is elsewhere: 54.9% zeroing a newly allocated page (vm_page.zero), 33.0% a CPU idle until an object another CPU allocates exists, as the trace's causal order demands (replay.wait). " +
        'Items parked on per-CPU caches (500 at the end) made the zones grow 30 times instead of 20, holding 60 pages instead of 40: more page allocation, under the VM token. ' +
        'No CPU spun on a lock in either run.',
      100,
    ));
  });

  it('compare ends with the why paragraph and the legend, and --no-legend leaves the legend out', async () => {
    const opts = { machine: 'coursework', cpus: '4', allocator: 'vmzone', touch: '1', sysctl: [], zones: '8' } as ReplayCliOptions;
    const run = async (o: Partial<ReplayCliOptions>) => {
      const out: string[] = [];
      await runCompare('test/fixtures/traces/pairs-4cpu.trace', { ...opts, ...o }, { out: (t) => void out.push(t), err: () => undefined });
      return out.join('');
    };
    const text = await run({});
    expect(text).toMatch(/\nL1D misses per op +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d×\n/);
    expect(text).toMatch(/\npath +per-CPU ops +mean +L1D +LLC +TLB +locked ops +mean +L1D +LLC +TLB\n/);
    const why = text.slice(text.indexOf('\nwhy:\n') + 6, text.indexOf('\n\nlegend:\n')).replace(/\n/g, ' ');
    expect(why).toMatch(/^Per-CPU caching makes an allocator operation \d+\.\d\d× cheaper here/);
    // zget also holds the zone spinlock; whether the run spins there too, and where the per-CPU
    // run spins (the kernel_map lock, the VM token of zone creation), depends on timing.
    expect(why).toMatch(/ without, \d+\.\d% of it on the zone spinlock \((zone\.(alloc|free)\.locked|zone\.alloc\.zget)(, (zone\.(alloc|free)\.locked|zone\.alloc\.zget))*\)\. Turning the caches off moved the spinning from the .+ to the zone spinlock\.$/);
    expect(text).toContain('\n  c2c                cache-to-cache transfers');
    expect(text).toContain('\n  zone.alloc.pcpu    zalloc from the CPU\'s own free list, no lock\n');
    expect(await run({ legend: false })).not.toContain('legend:');
  });
});

describe('legend()', () => {
  it('lists the columns, then only the labels it is given that it knows', () => {
    const text = legend(['zone.alloc.zget', 'no.such.label']);
    expect(text.split('\n')[0]).toBe('legend:');
    expect(text).toContain('\n  zone.alloc.zget  zget: new pages for a zone whose list is empty');
    expect(text).not.toContain('no.such.label');
  });
});

describe('wrap()', () => {
  it('breaks at spaces within the width and keeps a longer word whole', () => {
    expect(wrap('aa bb cc dddddddd e', 5)).toBe('aa bb\ncc\ndddddddd\ne');
  });
});
