// Replaying vmem events (format version 2) on the emulated machine: exact per-path cycles of a
// small hand-written trace, ENOMEM counted and its free skipped, both allocators, and the shape
// of the vmem-frag experiment (counts, not host timings).
import { describe, expect, it } from 'vitest';
import { loadMachineConfig } from '../../emu/index.js';
import { TraceReader, generate, generatedSource, replay } from '../../traces/index.js';
import type { ReplayReport } from '../../traces/index.js';
import { runFragExperiment } from '../../tools/vmem.js';

const coursework = (cpus: number) => loadMachineConfig('coursework', { cpus });

async function replayFile(file: string, allocator: 'vmzone' | 'uma' = 'vmzone'): Promise<ReplayReport> {
  const reader = await TraceReader.open(file);
  try {
    return await replay(reader, { machine: coursework(2), allocator, traceName: 'vmem-2cpu.trace' });
  } finally {
    await reader.close();
  }
}

const brief = (rows: NonNullable<ReplayReport['vmem']>['allocs']) => rows.map((p) => [p.path, p.ops, p.cycles.total]);

describe('replay of vmem events', () => {
  it('replay() files v and V under the vmem paths with exact cycles, counts the ENOMEM and skips its free', async () => {
    const r = await replayFile('test/fixtures/traces/vmem-2cpu.trace');
    expect(r.vmem).toBeDefined();
    const v = r.vmem!;
    expect(v.arenas).toBe(2);
    expect(v.failures).toBe(1);
    expect(v.skippedFrees).toBe(1);
    expect(brief(v.allocs)).toEqual([['vmem.import', 3, 26357], ['vmem.xalloc', 1, 3332], ['vmem.qcache', 1, 145]]);
    expect(brief(v.frees)).toEqual([['vmem.xfree', 2, 1749], ['vmem.qcache', 2, 872]]);
    expect(r.totals.allocations).toBe(4);
    expect(r.totals.frees).toBe(4);
    expect(r.zones.map((z) => z.zone).sort()).toEqual(['arena:kernel_arena', 'arena:kmem']);
  });

  it('replay() of vmem events runs on UMA as on vmzone, on the same paths (the caches under them differ)', async () => {
    const a = await replayFile('test/fixtures/traces/vmem-2cpu.trace', 'vmzone');
    const b = await replayFile('test/fixtures/traces/vmem-2cpu.trace', 'uma');
    const shape = (r: ReplayReport) => ({ ...r.vmem, allocs: r.vmem!.allocs.map((p) => [p.path, p.ops]).sort(), frees: r.vmem!.frees.map((p) => [p.path, p.ops]).sort() });
    expect(shape(b)).toEqual(shape(a));
  });

  it('a version-1 replay has no vmem section', async () => {
    const r = await replay(generatedSource('slab-pairs', { cpus: 1, events: 20, seed: 1 }), { machine: coursework(1) });
    expect(r.vmem).toBeUndefined();
  });
});

describe('vmem generators', () => {
  const text = (w: string, o: Parameters<typeof generate>[1]) => [...generate(w, o)].map((e) => JSON.stringify(e, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))).join('\n');

  it.each(['vmem-frag', 'vmem-kva'])('%s gives the same events for the same arguments, other events for another seed', (w) => {
    const o = { cpus: 2, events: 200, seed: 7, fragments: 32 };
    const opts = w === 'vmem-frag' ? o : { cpus: 2, events: 200, seed: 7 };
    expect(text(w, opts)).toBe(text(w, opts));
    expect(text(w, { ...opts, seed: 8 })).not.toBe(text(w, opts));
  });

  it('vmem-frag leaves exactly F free segments between busy ones: 3F+1 xallocs, F frees, no two adjacent, the last kept', () => {
    const f = 100;
    const evs = [...generate('vmem-frag', { cpus: 1, events: 0, seed: 3, fragments: f })];
    const allocs = evs.filter((e) => e.op === 10);
    const frees = evs.filter((e) => e.op === 11).map((e) => e.obj);
    expect(allocs.length).toBe(3 * f + 1);
    expect(allocs.every((e) => e.vmem?.align === 4096n)).toBe(true);
    expect(frees.length).toBe(f);
    const idx = frees.map((obj) => allocs.findIndex((e) => e.obj === obj)).sort((a, b) => a - b);
    for (let i = 1; i < idx.length; i++) expect(idx[i]! - idx[i - 1]!).toBeGreaterThan(1);
    expect(idx[idx.length - 1]).toBeLessThan(3 * f);
  });

  it('vmem-kva allocates whole pages from kmem, which imports from kernel_arena, and frees them all', () => {
    const evs = [...generate('vmem-kva', { cpus: 4, events: 1000, seed: 1 })];
    expect(evs.slice(0, 2).map((e) => [e.name, e.vmem?.parent, e.vmem?.importQuantum])).toEqual([['kernel_arena', -1, 0n], ['kmem', 1, 2097152n]]);
    const allocs = evs.filter((e) => e.op === 10);
    expect(allocs.length).toBe(500);
    expect(allocs.every((e) => e.size % 4096 === 0 && e.zone === 2)).toBe(true);
    expect(new Set(allocs.map((e) => e.cpu))).toEqual(new Set([0, 1, 2, 3]));
    expect(evs.filter((e) => e.op === 11).length).toBe(500);
  });
});

describe('the fragmentation experiment (Bonwick & Adams 2001 §4.5)', () => {
  it('instant fit stays flat as fragments grow while best fit grows; with quantum caches the small common sizes never reach the arena', async () => {
    const cells = await runFragExperiment({ fragments: [64, 512], events: 400, seed: '1', machine: loadMachineConfig('amd64-host', { cpus: 1 }) });
    const cell = (f: number, c: string) => cells.find((x) => x.fragments === f && x.config === c)!;
    const instant64 = cell(64, 'instant fit').allocs.mean;
    const instant512 = cell(512, 'instant fit').allocs.mean;
    const best64 = cell(64, 'best fit').allocs.mean;
    const best512 = cell(512, 'best fit').allocs.mean;
    expect(Math.abs(instant512 - instant64)).toBeLessThan(0.1 * instant64);
    expect(best512).toBeGreaterThan(2 * best64);
    // Every allocation of the measured phase is one of the 200 pairs; with quantum caches of 8
    // quanta the sizes 1, 2, 4, 8 quanta are quantum-cache hits except each size's first miss.
    for (const f of [64, 512]) {
      const q = cell(f, 'instant fit + qcache');
      expect(q.allocs.ops).toBe(200);
      const hits = q.paths.find((p) => p.path === 'vmem.qcache')!.ops;
      const arena = q.paths.find((p) => p.path === 'vmem.xalloc')!.ops;
      expect(hits + arena).toBe(200);
      expect(cell(f, 'instant fit').paths.map((p) => p.path)).toEqual(['vmem.xalloc']);
      // The 56-quantum allocations and at most one miss per small size reach the arena.
      const big = [...generate('vmem-frag', { cpus: 1, events: 400, seed: 1, fragments: f, qcacheMax: 8 })]
        .filter((e) => e.op === 10 && e.vmem?.align === undefined && e.size === 56 * 4096).length;
      expect(arena - big).toBeGreaterThanOrEqual(0);
      expect(arena - big).toBeLessThanOrEqual(4);
    }
  }, 120_000);
});
