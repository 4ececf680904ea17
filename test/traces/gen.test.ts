import { describe, expect, it } from 'vitest';
import { IMIX, KERNEL_MIX, generate, generatedHeader, generatedSource, workloads } from '../../traces/gen.js';
import type { GenOptions } from '../../traces/gen.js';
import {
  OP_ALLOC, OP_ARENA, OP_FREE, OP_MALLOC, OP_MBUF, OP_MFREE, OP_MFREEM, OP_PALLOC, OP_PFREE, OP_THINK, OP_VALLOC, OP_VFREE, OP_ZONE, opNames,
} from '../../traces/format.js';
import type { TraceEvent } from '../../traces/format.js';

/** The event as a line of the text format (FORMAT.md). */
function line(e: TraceEvent): string {
  switch (e.op) {
    case OP_ZONE:
      return [e.cpu, 'zone', e.zone, e.name, e.size, ...e.flags].join(' ');
    case OP_ALLOC:
    case OP_FREE:
      return `${e.cpu} ${opNames[e.op]} ${e.zone} ${e.obj}`;
    case OP_MALLOC:
    case OP_PALLOC:
      return `${e.cpu} ${opNames[e.op]} ${e.size} ${e.obj}`;
    case OP_THINK:
      return `${e.cpu} t ${e.size}`;
    case OP_MBUF:
      return `${e.cpu} b ${e.obj} ${e.mbuf === 'chain' ? `chain:${e.size}` : e.mbuf}`;
    default:
      return `${e.cpu} ${opNames[e.op]} ${e.obj}`;
  }
}

function run(workload: string, options: GenOptions): TraceEvent[] {
  return [...generate(workload, options)];
}

function first(workload: string, options: GenOptions, n: number): string[] {
  const out: string[] = [];
  for (const e of generate(workload, options)) {
    if (out.length === n) break;
    out.push(line(e));
  }
  return out;
}

interface Checked {
  /** Allocations and frees. */
  counted: number;
  allocs: number;
  frees: number;
  live: number;
  /** Frees on another CPU than the allocation. */
  remoteFrees: number;
  allocCpus: Set<number>;
  freeCpus: Set<number>;
  thinks: number;
}

/** Applies FORMAT.md's rules in stream order and counts; throws at the first broken rule. */
function check(events: readonly TraceEvent[], cpus: number): Checked {
  const zones = new Set<number>();
  const arenas = new Set<number>();
  const prelude = new Set<number>();
  const live = new Map<number, { op: number; zone: number; cpu: number }>();
  const c: Checked = { counted: 0, allocs: 0, frees: 0, live: 0, remoteFrees: 0, allocCpus: new Set(), freeCpus: new Set(), thinks: 0 };
  let started = false;
  events.forEach((e, i) => {
    const where = `event ${i} (${line(e)})`;
    if (!Number.isInteger(e.cpu) || e.cpu < 0 || e.cpu >= cpus) throw new Error(`${where}: CPU out of range`);
    if (e.op === OP_ARENA) {
      if (started) throw new Error(`${where}: arena after the first allocation`);
      if (arenas.has(e.zone) || e.vmem === undefined || e.vmem === null) throw new Error(`${where}: bad arena`);
      arenas.add(e.zone);
      return;
    }
    // vmem-frag's fragmentation phase (its xallocs carry align=, and their frees) is not counted.
    if ((e.op === OP_VALLOC && (e.vmem?.align ?? 0n) !== 0n) || (e.op === OP_VFREE && prelude.has(e.obj))) {
      if (e.op === OP_VALLOC) prelude.add(e.obj);
      else prelude.delete(e.obj);
      return;
    }
    if (e.op === OP_ZONE) {
      if (started) throw new Error(`${where}: zone after the first allocation`);
      if (zones.has(e.zone)) throw new Error(`${where}: zone created twice`);
      if (!(e.size > 0) || /\s/.test(e.name) || e.name === '') throw new Error(`${where}: bad zone`);
      zones.add(e.zone);
      return;
    }
    started = true;
    if (e.op === OP_THINK) {
      if (!Number.isSafeInteger(e.size) || e.size <= 0) throw new Error(`${where}: bad think time`);
      c.thinks++;
      return;
    }
    c.counted++;
    if (e.op === OP_ALLOC || e.op === OP_MALLOC || e.op === OP_PALLOC || e.op === OP_VALLOC || e.op === OP_MBUF) {
      if (e.op === OP_MBUF && !(e.mbuf === 'chain' ? e.size >= 1 && e.size <= 64 : e.size === 0 && e.mbuf !== undefined && e.mbuf !== null)) throw new Error(`${where}: bad mbuf kind`);
      if (e.op === OP_ALLOC && !zones.has(e.zone)) throw new Error(`${where}: zone not created`);
      if (e.op === OP_VALLOC && (!arenas.has(e.zone) || !(e.size > 0))) throw new Error(`${where}: bad vmem allocation`);
      if (e.op === OP_MALLOC && !(e.size > 0)) throw new Error(`${where}: bad malloc size`);
      if (live.has(e.obj)) throw new Error(`${where}: allocation of a live id`);
      live.set(e.obj, { op: e.op, zone: e.zone, cpu: e.cpu });
      c.allocs++;
      c.allocCpus.add(e.cpu);
      return;
    }
    const a = live.get(e.obj);
    if (!a) throw new Error(`${where}: free of object ${e.obj}, which is not live`);
    const kind = e.op === OP_FREE ? OP_ALLOC : e.op === OP_MFREE ? OP_MALLOC : e.op === OP_PFREE ? OP_PALLOC : e.op === OP_VFREE ? OP_VALLOC : e.op === OP_MFREEM ? OP_MBUF : -1;
    if (kind !== a.op) throw new Error(`${where}: free of the wrong kind`);
    if (e.op === OP_FREE && e.zone !== a.zone) throw new Error(`${where}: free to another zone`);
    live.delete(e.obj);
    c.frees++;
    c.freeCpus.add(e.cpu);
    if (e.cpu !== a.cpu) c.remoteFrees++;
  });
  c.live = live.size;
  return c;
}

/** Small per-workload options so that short traces cover several rounds, batches and hand-offs. */
const SMALL: Record<string, Partial<GenOptions>> = {
  'slab-bulk': { count: 5 },
  'slab-pairs': { count: 5 },
  'slab-concurrent-bulk': { count: 5 },
  'slab-concurrent-pairs': { count: 5 },
  'slab-remote': { count: 5 },
  'slab-producer': { count: 5 },
  larson: { chunks: 2, rounds: 2 },
  xmalloc: { batch: 8, size: 0 },
  'cache-scratch': { writes: 100 },
  'cache-thrash': { writes: 100 },
  'kernel-mix': {},
  'vmem-frag': { fragments: 20 },
  'vmem-kva': {},
  'net-forward': { ring: 16, batch: 4 },
  'net-local': { ring: 16 },
  'net-sockbuf': { batch: 4 },
};

function opts(workload: string, cpus: number, events: number, seed: string | number = 1): GenOptions {
  return { cpus, events, seed, ...SMALL[workload] };
}

describe('generate()', () => {
  it('has a small-options entry for every workload', () => {
    expect(Object.keys(SMALL).sort()).toEqual(workloads.map((w) => w.name).sort());
  });

  // The first events of each workload on 4 CPUs, seed 1, with the SMALL options (zone lines skipped).
  const pinned: Record<string, string[]> = {
    'slab-bulk': ['0 a 1 1', '0 a 1 2', '0 a 1 3', '0 a 1 4', '0 a 1 5', '0 f 1 1', '0 f 1 2', '0 f 1 3', '0 f 1 4', '0 f 1 5', '0 a 2 6', '0 a 2 7'],
    'slab-pairs': ['0 a 1 1', '0 f 1 1', '0 a 1 2', '0 f 1 2', '0 a 1 3', '0 f 1 3', '0 a 1 4', '0 f 1 4', '0 a 1 5', '0 f 1 5', '0 a 2 6', '0 f 2 6'],
    'slab-concurrent-bulk': ['0 a 1 1', '1 a 1 2', '2 a 1 3', '3 a 1 4', '0 a 1 5', '1 a 1 6', '2 a 1 7', '3 a 1 8', '0 a 1 9', '1 a 1 10', '2 a 1 11', '3 a 1 12'],
    'slab-concurrent-pairs': ['0 a 1 1', '1 a 1 2', '2 a 1 3', '3 a 1 4', '0 f 1 1', '1 f 1 2', '2 f 1 3', '3 f 1 4', '0 a 1 5', '1 a 1 6', '2 a 1 7', '3 a 1 8'],
    'slab-remote': ['1 a 1 1', '2 a 1 2', '3 a 1 3', '1 a 1 4', '2 a 1 5', '3 a 1 6', '1 a 1 7', '2 a 1 8', '3 a 1 9', '1 a 1 10', '2 a 1 11', '3 a 1 12'],
    'slab-producer': ['0 a 1 1', '1 f 1 1', '0 a 1 2', '2 f 1 2', '0 a 1 3', '3 f 1 3', '0 a 1 4', '1 f 1 4', '0 a 1 5', '2 f 1 5', '0 a 1 6', '3 f 1 6'],
    larson: ['0 m 516 1', '0 m 553 2', '0 m 328 3', '0 m 541 4', '0 m 284 5', '0 m 702 6', '0 m 83 7', '0 m 394 8', '0 x 1', '1 x 4', '2 x 5', '3 x 7'],
    xmalloc: ['1 m 72 1', '3 m 72 2', '1 m 64 3', '3 m 32 4', '1 m 24 5', '3 m 48 6', '1 m 768 7', '3 m 2048 8', '1 m 512 9', '3 m 2048 10', '1 m 2048 11', '3 m 64 12'],
    'cache-scratch': ['0 m 8 1', '0 m 8 2', '0 m 8 3', '0 m 8 4', '0 x 1', '1 x 2', '2 x 3', '3 x 4', '0 m 8 5', '1 m 8 6', '2 m 8 7', '3 m 8 8'],
    'cache-thrash': ['0 m 8 1', '1 m 8 2', '2 m 8 3', '3 m 8 4', '0 t 100', '1 t 100', '2 t 100', '3 t 100', '0 x 1', '1 x 2', '2 x 3', '3 x 4'],
    'kernel-mix': ['0 a 1 1', '1 m 64 2', '2 a 2 3', '3 a 4 4', '0 f 1 1', '1 a 1 5', '2 a 4 6', '3 a 1 7', '0 a 2 8', '1 f 1 5', '2 a 1 9', '3 f 1 7'],
  };
  for (const [name, expected] of Object.entries(pinned)) {
    it(`${name} starts with the pinned events for seed 1 on 4 CPUs`, () => {
      const got = first(name, opts(name, 4, 1000), 80).filter((l) => !l.includes(' zone '));
      expect(got.slice(0, 12)).toEqual(expected);
    });
  }

  it('slab-* create zones kmalloc-8 to kmalloc-4096 first, on CPU 0, and go through them round by round', () => {
    const ev = run('slab-bulk', { cpus: 2, events: 200, seed: 1, count: 5 });
    expect(ev.slice(0, 10).map(line)).toEqual([8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096].map((s, i) => `0 zone ${i + 1} kmalloc-${s} ${s}`));
    const allocZones = ev.filter((e) => e.op === OP_ALLOC).map((e) => e.zone);
    expect(allocZones.slice(0, 25)).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5]);
    expect(allocZones[50]).toBe(1); // round 10 is back at 8 bytes
  });

  it('--size gives one zone; api malloc gives malloc(9) of that size', () => {
    expect(first('slab-pairs', { cpus: 1, events: 4, seed: 1, size: 100 }, 10)).toEqual(['0 zone 1 kmalloc-128 128', '0 a 1 1', '0 f 1 1', '0 a 1 2', '0 f 1 2']);
    expect(first('slab-pairs', { cpus: 1, events: 4, seed: 1, size: 100, api: 'malloc' }, 10)).toEqual(['0 m 100 1', '0 x 1', '0 m 100 2', '0 x 2']);
  });

  for (const w of workloads) {
    it(`${w.name} is deterministic, valid, and has exactly M allocations and frees, none live at the end for even M`, () => {
      for (const cpus of [w.minCpus, 4, 7]) {
        const a = run(w.name, opts(w.name, cpus, 2000));
        const b = run(w.name, opts(w.name, cpus, 2000));
        expect(b.map(line)).toEqual(a.map(line));
        const c = check(a, cpus);
        expect(c.counted).toBe(2000);
        expect(c.allocs).toBe(1000);
        expect(c.live).toBe(0);
        const odd = check(run(w.name, opts(w.name, cpus, 1001)), cpus);
        expect([odd.counted, odd.allocs, odd.live]).toEqual([1001, 501, 1]);
      }
    });

    it(`${w.name} with 0 events has only its zones (arenas, and vmem-frag's fragmentation phase)`, () => {
      const c = check(run(w.name, opts(w.name, 4, 0)), 4);
      expect([c.counted, c.thinks]).toEqual([0, 0]);
    });
  }

  it('every workload ends with its budget spent and nothing live, on odd CPU counts and tiny budgets too', () => {
    for (const w of workloads) {
      for (const cpus of [1, 2, 3, 5, 16]) {
        if (cpus < w.minCpus) continue;
        for (const events of [1, 2, 3, 18, 100]) {
          const c = check(run(w.name, opts(w.name, cpus, events, events)), cpus);
          expect([w.name, cpus, c.counted, c.live]).toEqual([w.name, cpus, events, events % 2]);
        }
      }
    }
  });

  it('the seed changes the random workloads and only them', () => {
    for (const name of ['larson', 'xmalloc', 'kernel-mix']) {
      expect(run(name, opts(name, 4, 500, 1)).map(line)).not.toEqual(run(name, opts(name, 4, 500, 2)).map(line));
    }
    expect(run('slab-pairs', opts('slab-pairs', 4, 500, 1)).map(line)).toEqual(run('slab-pairs', opts('slab-pairs', 4, 500, 2)).map(line));
  });

  it('slab-bulk and slab-pairs run on CPU 0 alone', () => {
    for (const name of ['slab-bulk', 'slab-pairs']) {
      const c = check(run(name, opts(name, 4, 1000)), 4);
      expect([...c.allocCpus, ...c.freeCpus]).toEqual([0, 0]);
    }
  });

  it('slab-concurrent-* allocate and free on every CPU, each its own objects', () => {
    for (const name of ['slab-concurrent-bulk', 'slab-concurrent-pairs']) {
      const c = check(run(name, opts(name, 4, 1000)), 4);
      expect([...c.allocCpus].sort()).toEqual([0, 1, 2, 3]);
      expect(c.remoteFrees).toBe(0);
    }
  });

  it('slab-concurrent-bulk frees nothing before every CPU has finished allocating its round', () => {
    const ev = run('slab-concurrent-bulk', opts('slab-concurrent-bulk', 4, 200)).filter((e) => e.op !== OP_ZONE);
    expect(ev.slice(0, 20).every((e) => e.op === OP_ALLOC)).toBe(true);
    expect(ev.slice(20, 40).every((e) => e.op === OP_FREE)).toBe(true);
  });

  it('slab-remote allocates on CPUs 1..N-1 and frees everything on CPU 0', () => {
    const c = check(run('slab-remote', opts('slab-remote', 4, 1000)), 4);
    expect([...c.freeCpus]).toEqual([0]);
    expect([...c.allocCpus].sort()).toEqual([1, 2, 3]);
    expect(c.remoteFrees).toBe(500);
  });

  it('slab-producer allocates on CPU 0 alone and frees on the others, evenly', () => {
    const ev = run('slab-producer', opts('slab-producer', 4, 1200));
    const c = check(ev, 4);
    expect([...c.allocCpus]).toEqual([0]);
    expect([...c.freeCpus].sort()).toEqual([1, 2, 3]);
    const perCpu = [1, 2, 3].map((cpu) => ev.filter((e) => e.op === OP_FREE && e.cpu === cpu).length);
    expect(perCpu).toEqual([200, 200, 200]);
  });

  it('slab-remote and slab-producer need two CPUs', () => {
    expect(() => run('slab-remote', { cpus: 1, events: 10, seed: 1 })).toThrow(/option --cpus: expected an integer from 2 to 4096, got 1/);
    expect(() => run('slab-producer', { cpus: 1, events: 10, seed: 1 })).toThrow(/from 2 to 4096/);
  });

  it('larson frees objects allocated on other CPUs, with sizes in [minSize, maxSize)', () => {
    const ev = run('larson', { cpus: 4, events: 4000, seed: 1, chunks: 16, rounds: 2, minSize: 10, maxSize: 20 });
    const c = check(ev, 4);
    expect(c.remoteFrees).toBeGreaterThan(100);
    const sizes = ev.filter((e) => e.op === OP_MALLOC).map((e) => e.size);
    expect(Math.min(...sizes)).toBe(10);
    expect(Math.max(...sizes)).toBe(19);
  });

  it('larson with api zone uses one zone per power-of-two class', () => {
    const ev = run('larson', { cpus: 2, events: 400, seed: 1, chunks: 8, minSize: 8, maxSize: 100, api: 'zone' });
    expect(ev.filter((e) => e.op === OP_ZONE).map(line)).toEqual(['0 zone 1 kmalloc-8 8', '0 zone 2 kmalloc-16 16', '0 zone 3 kmalloc-32 32', '0 zone 4 kmalloc-64 64', '0 zone 5 kmalloc-128 128']);
    check(ev, 2);
  });

  it('xmalloc allocates on odd CPUs and frees on even ones; each batch structure is freed after its objects', () => {
    const ev = run('xmalloc', { cpus: 4, events: 2000, seed: 1, batch: 8 });
    const c = check(ev, 4);
    expect([...c.allocCpus].sort()).toEqual([1, 3]);
    expect([...c.freeCpus].sort()).toEqual([0, 2]);
    expect(c.remoteFrees).toBe(1000);
    const mallocs = ev.filter((e) => e.op === OP_MALLOC && e.cpu === 1);
    expect(mallocs.slice(0, 9).map((e) => e.size)).toEqual([72, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024]);
  });

  it('xmalloc on one CPU fills and frees batches in turn', () => {
    const ev = run('xmalloc', { cpus: 1, events: 24, seed: 1, batch: 2, size: 64 });
    expect(ev.map(line)).toEqual(['0 m 24 1', '0 m 64 2', '0 m 64 3', '0 x 2', '0 x 3', '0 x 1', '0 m 24 4', '0 m 64 5', '0 m 64 6', '0 x 5', '0 x 6', '0 x 4',
      '0 m 24 7', '0 m 64 8', '0 m 64 9', '0 x 8', '0 x 9', '0 x 7', '0 m 24 10', '0 m 64 11', '0 m 64 12', '0 x 11', '0 x 12', '0 x 10']);
  });

  it('cache-scratch: CPU 0 allocates one object per CPU and each CPU frees its own, then loops with the writes as think time', () => {
    const ev = run('cache-scratch', { cpus: 4, events: 40, seed: 1, writes: 250 });
    expect(ev.slice(0, 8).map(line)).toEqual(['0 m 8 1', '0 m 8 2', '0 m 8 3', '0 m 8 4', '0 x 1', '1 x 2', '2 x 3', '3 x 4']);
    const c = check(ev, 4);
    expect(c.remoteFrees).toBe(3);
    expect(ev.filter((e) => e.op === OP_THINK).every((e) => e.size === 250)).toBe(true);
  });

  it('cache-thrash: every CPU allocates, thinks `writes` cycles and frees, with no remote frees', () => {
    const ev = run('cache-thrash', { cpus: 2, events: 8, seed: 1, writes: 300 });
    expect(ev.map(line)).toEqual(['0 m 8 1', '1 m 8 2', '0 t 300', '1 t 300', '0 x 1', '1 x 2', '0 m 8 3', '1 m 8 4', '0 t 300', '1 t 300', '0 x 3', '1 x 4']);
  });

  it('--think adds exponential think time after allocations and frees, not counted as events', () => {
    const ev = run('slab-concurrent-pairs', { cpus: 2, events: 2000, seed: 1, count: 10, think: 500 });
    const c = check(ev, 2);
    expect(c.counted).toBe(2000);
    const t = ev.filter((e) => e.op === OP_THINK).map((e) => e.size);
    expect(t.length).toBeGreaterThan(1900);
    const mean = t.reduce((a, b) => a + b, 0) / 2000;
    expect(mean).toBeGreaterThan(450);
    expect(mean).toBeLessThan(550);
  });

  it('kernel-mix allocates with the frequencies of its table', () => {
    const events = 200_000;
    const ev = run('kernel-mix', { cpus: 4, events, seed: 7 });
    const c = check(ev, 4);
    const zoneName = new Map<number, string>();
    for (const e of ev) if (e.op === OP_ZONE) zoneName.set(e.zone, e.name);
    const seen = new Map<string, number>();
    for (const e of ev) {
      const key = e.op === OP_ALLOC ? zoneName.get(e.zone)! : e.op === OP_MALLOC ? `kmalloc-${e.size}` : e.op === OP_PALLOC ? 'page' : undefined;
      if (key !== undefined) seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const total = KERNEL_MIX.reduce((s, r) => s + r[3], 0);
    for (const [, name, , allocs] of KERNEL_MIX) {
      const expected = (allocs / total) * c.allocs;
      if (allocs >= 48) expect(Math.abs((seen.get(name) ?? 0) - expected) / expected).toBeLessThan(0.05);
    }
    expect(seen.get('names_cache')! / c.allocs).toBeCloseTo(897 / total, 2);
    expect(c.remoteFrees / c.frees).toBeGreaterThan(0.05);
    expect(c.remoteFrees / c.frees).toBeLessThan(0.25);
  });

  it('kernel-mix mixes short and long lifetimes', () => {
    const ev = run('kernel-mix', { cpus: 2, events: 100_000, seed: 3 });
    const born = new Map<number, number>();
    const lifetimes: number[] = [];
    ev.forEach((e, i) => {
      if (e.op === OP_ALLOC || e.op === OP_MALLOC || e.op === OP_PALLOC) born.set(e.obj, i);
      else if (e.op === OP_FREE || e.op === OP_MFREE || e.op === OP_PFREE) lifetimes.push(i - born.get(e.obj)!);
    });
    const short = lifetimes.filter((l) => l <= 40).length / lifetimes.length;
    const long = lifetimes.filter((l) => l >= 1000).length / lifetimes.length;
    expect(short).toBeGreaterThan(0.4);
    expect(long).toBeGreaterThan(0.25);
  });

  it('kernel-mix flags the reclaimable caches', () => {
    const zones = run('kernel-mix', { cpus: 1, events: 0, seed: 1 }).map(line);
    expect(zones[0]).toBe('0 zone 1 names_cache 4096');
    expect(zones).toContain('0 zone 10 dentry 192 reclaim');
    expect(zones.length).toBe(KERNEL_MIX.filter((r) => r[0] === 'zone').length);
  });

  it('interleaves CPUs by simulated time: equal work goes round-robin', () => {
    const ev = run('slab-concurrent-pairs', { cpus: 3, events: 12, seed: 1, size: 64 });
    expect(ev.slice(1).map((e) => e.cpu)).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
  });

  it('pairs is slab-concurrent-pairs', () => {
    expect(run('pairs', opts('slab-concurrent-pairs', 4, 300)).map(line)).toEqual(run('slab-concurrent-pairs', opts('slab-concurrent-pairs', 4, 300)).map(line));
  });

  it('rejects an unknown workload, an option it does not take, and bad values, naming them', () => {
    expect(() => generate('slab', { cpus: 1, events: 1, seed: 1 })).toThrow(/unknown workload "slab": expected one of slab-bulk, /);
    expect(() => generate('kernel-mix', { cpus: 1, events: 1, seed: 1, size: 64 })).toThrow('option --size does not apply to workload kernel-mix (it takes: --think)');
    expect(() => generate('larson', { cpus: 4, events: 1, seed: 1, minSize: 100, maxSize: 50 })).toThrow('option --max-size: expected an integer from 101 to 1073741824, got 50');
    expect(() => generate('slab-pairs', { cpus: 0, events: 1, seed: 1 })).toThrow(/option --cpus/);
    expect(() => generate('slab-pairs', { cpus: 1, events: 1.5, seed: 1 })).toThrow(/option --events: .* got 1.5/);
    expect(() => generate('cache-thrash', { cpus: 1, events: 1, seed: 1, size: 0 })).toThrow(/option --size/);
  });

  it('streams: two million events go through one at a time', () => {
    let n = 0;
    for (const e of generate('slab-concurrent-pairs', { cpus: 4, events: 2_000_000, seed: 1 })) if (e.op !== OP_ZONE) n++;
    expect(n).toBe(2_000_000);
  });
});

describe('generatedHeader()', () => {
  it('records the command with every option of the workload', () => {
    expect(generatedHeader('pairs', { cpus: 4, events: 100, seed: 'x' })).toEqual({
      meta: { source: 'kmemu trace gen slab-concurrent-pairs --cpus 4 --events 100 --seed x --size 0 --count 10000 --api zone --think 0', cpus: '4' },
      cpus: 4,
    });
  });
});

describe('generatedSource()', () => {
  it('hands out the generated events in batches, then null', async () => {
    const src = generatedSource('slab-pairs', { cpus: 1, events: 10, seed: 1, size: 8 }, 4);
    const sizes: number[] = [];
    let all: TraceEvent[] = [];
    for (let b = await src.next(); b !== null; b = await src.next()) {
      sizes.push(b.length);
      all = all.concat(b);
    }
    expect(sizes).toEqual([4, 4, 3]);
    expect(all.map(line)).toEqual(run('slab-pairs', { cpus: 1, events: 10, seed: 1, size: 8 }).map(line));
  });
});

describe('net workloads', () => {
  const mbufs = (ev: readonly TraceEvent[]) => ev.filter((e) => e.op === OP_MBUF);
  const kinds = (ev: readonly TraceEvent[]) => {
    const n: Record<string, number> = {};
    for (const e of mbufs(ev)) {
      const k = e.mbuf === 'chain' ? `chain:${e.size}` : e.mbuf!;
      n[k] = (n[k] ?? 0) + 1;
    }
    return n;
  };

  it('IMIX is the Simple IMIX: 7:4:1 of 40-, 576- and 1500-byte packets', () => {
    expect(IMIX).toEqual([[40, 7], [576, 4], [1500, 1]]);
  });

  it('net-forward starts by filling CPU 0\'s ring with clusters, then receives: 40-byte packets copied to a pkthdr mbuf', () => {
    const ev = run('net-forward', { cpus: 2, events: 40, seed: 1, ring: 4, batch: 2 });
    expect(ev.slice(0, 4).map(line)).toEqual(['0 b 1 cluster', '0 b 2 cluster', '0 b 3 cluster', '0 b 4 cluster']);
    expect(new Set(mbufs(ev).map((e) => e.cpu))).toEqual(new Set([0]));
    expect(new Set(ev.filter((e) => e.op === OP_MFREEM).map((e) => e.cpu))).toEqual(new Set([1]));
  });

  it('net-forward: every B is on the other CPU of its rx/tx pair than its b, on 2, 4 and 7 CPUs (CPU 6 idles)', () => {
    for (const cpus of [2, 4, 7]) {
      const ev = run('net-forward', { cpus, events: 6000, seed: 3, ring: 64, batch: 8 });
      const c = check(ev, cpus);
      expect([c.counted, c.live, c.remoteFrees]).toEqual([6000, 0, 3000]);
      const allocCpu = new Map<number, number>();
      for (const e of ev) {
        if (e.op === OP_MBUF) allocCpu.set(e.obj, e.cpu);
        else if (e.op === OP_MFREEM) expect([e.obj, e.cpu]).toEqual([e.obj, allocCpu.get(e.obj)! + 1]);
      }
      const rx = [...new Set(mbufs(ev).map((e) => e.cpu))].sort();
      expect(rx).toEqual(Array.from({ length: Math.floor(cpus / 2) }, (_, i) => 2 * i));
      expect(ev.some((e) => e.cpu === 6)).toBe(false);
    }
  });

  it('net-forward sizes follow IMIX in counts: 7 of every 12 packets are copied (pkthdr), 5 leave in a cluster that is refilled', () => {
    // One CPU pair, a ring of 32 (one refill per 32 cluster packets): the budget of 12,000
    // allocations is the ring, the pkthdr copies and the refills.
    const ev = run('net-forward', { cpus: 2, events: 24000, seed: 5, ring: 32, batch: 16 });
    const n = kinds(ev);
    expect(n.cluster! + n.pkthdr!).toBe(12000);
    // pkthdr : clusters received (refills, 32 at a time, and the 32 left in the ring at the end).
    const received = n.cluster!;
    const packets = n.pkthdr! + received;
    expect(Math.abs(n.pkthdr! / packets - 7 / 12)).toBeLessThan(0.002);
    expect(kinds(run('net-forward', { cpus: 2, events: 200, seed: 5, ring: 8, size: 1500 }))).toEqual({ cluster: 100 });
    expect(kinds(run('net-forward', { cpus: 2, events: 200, seed: 5, ring: 8, size: 64 }))).toEqual({ cluster: 8, pkthdr: 92 });
    // 114 bytes + the 14-byte Ethernet header is the largest frame iflib copies (IFLIB_RX_COPY_THRESH 128).
    expect(kinds(run('net-forward', { cpus: 2, events: 200, seed: 5, ring: 8, size: 114 })).pkthdr).toBe(92);
    expect(kinds(run('net-forward', { cpus: 2, events: 200, seed: 5, ring: 8, size: 115 }))).toEqual({ cluster: 100 });
  });

  it('net-forward frees batch transmit completions at a time on the tx CPU', () => {
    // 64-byte packets are all copied: each is handed to CPU 1 by its pkthdr allocation.
    const ev = run('net-forward', { cpus: 2, events: 2000, seed: 2, ring: 16, batch: 8, size: 64 });
    const lastAlloc = ev.map((e) => e.op).lastIndexOf(OP_MBUF);
    let outstanding = 0;
    let freed = 0;
    for (const [i, e] of ev.entries()) {
      if (e.op === OP_MBUF && e.mbuf === 'pkthdr') outstanding++;
      if (e.op !== OP_MFREEM) continue;
      // Each pass starts with at least `batch` completions to reclaim (until the rx CPU is done).
      if (freed % 8 === 0 && i < lastAlloc) expect(outstanding).toBeGreaterThanOrEqual(8);
      freed++;
      outstanding--;
    }
    expect(freed).toBe(1000);
  });

  it('net-local receives and frees on every CPU, each its own packets', () => {
    const ev = run('net-local', { cpus: 4, events: 4000, seed: 1, ring: 16 });
    const c = check(ev, 4);
    expect([...c.allocCpus].sort()).toEqual([0, 1, 2, 3]);
    expect([...c.freeCpus].sort()).toEqual([0, 1, 2, 3]);
    expect([c.counted, c.live, c.remoteFrees]).toEqual([4000, 0, 0]);
    // A copied packet is freed at once: each pkthdr's B is the CPU's next event.
    const next = new Map<number, TraceEvent>();
    for (let i = ev.length - 1; i >= 0; i--) {
      const e = ev[i]!;
      if (e.op === OP_MBUF && e.mbuf === 'pkthdr') expect(line(next.get(e.cpu)!)).toBe(`${e.cpu} B ${e.obj}`);
      next.set(e.cpu, e);
    }
  });

  it('net-sockbuf writes chains of ceil(S/MLEN) mbufs, IMIX in counts: chain:1, chain:3 and chain:7 as 7:4:1', () => {
    const ev = run('net-sockbuf', { cpus: 2, events: 2400, seed: 4, batch: 16 });
    expect(kinds(ev)).toEqual({ 'chain:1': 700, 'chain:3': 400, 'chain:7': 100 });
    expect(kinds(run('net-sockbuf', { cpus: 1, events: 20, seed: 4, size: 217 }))).toEqual({ 'chain:2': 10 });
    expect(kinds(run('net-sockbuf', { cpus: 1, events: 20, seed: 4, size: 216 }))).toEqual({ 'chain:1': 10 });
  });

  it('net-sockbuf: the reader (the writer\'s partner) frees in bulk, batch chains at once, while the writer waits', () => {
    const ev = run('net-sockbuf', { cpus: 2, events: 1000, seed: 4, batch: 10 }).filter((e) => e.op !== OP_THINK);
    expect(new Set(ev.filter((e) => e.op === OP_MBUF).map((e) => e.cpu))).toEqual(new Set([0]));
    expect(new Set(ev.filter((e) => e.op === OP_MFREEM).map((e) => e.cpu))).toEqual(new Set([1]));
    // The stream alternates runs of 10 writes and runs of 10 frees, each freeing the run before.
    const runs: string[] = [];
    for (const e of ev) {
      const k = e.op === OP_MBUF ? 'b' : 'B';
      if (runs.length > 0 && runs.at(-1)![0] === k) runs[runs.length - 1] += k;
      else runs.push(k);
    }
    expect(runs).toEqual(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 'b' : 'B').repeat(10)));
    for (let i = 0; i < ev.length; i += 20) expect(ev.slice(i + 10, i + 20).map((e) => e.obj)).toEqual(ev.slice(i, i + 10).map((e) => e.obj));
  });

  it('net-* refuse a packet size above the 1500-byte MTU and a ring of more than 4096 descriptors', () => {
    expect(() => run('net-local', { cpus: 1, events: 10, seed: 1, size: 1501 })).toThrow('option --size: expected an integer from 0 to 1500, got 1501');
    expect(() => run('net-forward', { cpus: 2, events: 10, seed: 1, ring: 4097 })).toThrow('option --ring: expected an integer from 1 to 4096, got 4097');
    expect(() => run('net-forward', { cpus: 1, events: 10, seed: 1 })).toThrow('option --cpus: expected an integer from 2 to 4096, got 1');
    expect(() => run('net-sockbuf', { cpus: 2, events: 10, seed: 1, ring: 8 })).toThrow('option --ring does not apply to workload net-sockbuf (it takes: --size --batch --think)');
  });

  it('net-* are deterministic and the seed changes them (IMIX order), not a fixed size', () => {
    for (const w of ['net-forward', 'net-local', 'net-sockbuf']) {
      const o = { cpus: 4, events: 3000, seed: 1, ...SMALL[w] };
      expect(run(w, o).map(line)).toEqual(run(w, o).map(line));
      expect(run(w, { ...o, seed: 2 }).map(line)).not.toEqual(run(w, o).map(line));
      expect(run(w, { ...o, seed: 2, size: 576 }).map(line)).toEqual(run(w, { ...o, size: 576 }).map(line));
    }
  });

  it('generatedHeader() of a net workload records its options', () => {
    expect(generatedHeader('net-forward', { cpus: 2, events: 100, seed: 1 }).meta.source).toBe('kmemu trace gen net-forward --cpus 2 --events 100 --seed 1 --size 0 --ring 1024 --batch 32 --think 0');
  });
});
