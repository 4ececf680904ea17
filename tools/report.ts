// Printing replay reports (kmemu.report/1) and comparisons (kmemu.compare/1) as tables, and
// building the comparison document, whose zod schema is here (the one definition; its type is
// inferred from it and docs/schemas/kmemu.compare-1.schema.json is generated from it).

import { z } from 'zod';
import { compareRunSchema, replayReportSchema, type PathStats, type RegionStats, type ReplayReport } from '../traces/index.js';
import { explainCompare, legend } from './explain.js';
import { formatInt } from './format.js';

export const COMPARE_SCHEMA = 'kmemu.compare/1';

const replayReport = replayReportSchema.meta({ id: 'ReplayReport' });

const perOpPair = z
  .object({
    perCpu: z.number().describe('mean cycles, per-CPU caching on'),
    locked: z.number().describe('mean cycles, every request locked'),
    ratio: z.number().nullable().describe('locked ÷ per-CPU (null when per-CPU is 0)'),
  });
const opsMean = z.object({ ops: z.number().int().min(0).describe('operations on the path'), meanCycles: z.number().min(0).describe('their mean latency (cycles)') });

export const compareDocSchema = z
  .object({
    schema: z.literal(COMPARE_SCHEMA).describe('this document\'s schema and version'),
    run: compareRunSchema,
    perCpu: replayReport.describe('the kmemu.report/1 of the replay with per-CPU caching on'),
    locked: replayReport.describe('the kmemu.report/1 of the same replay with it off (every request locked)'),
    ratios: z
      .object({
        cyclesPerOp: z.number().nullable().describe('allocator cycles per operation, locked ÷ per-CPU'),
        makespan: z.number().nullable().describe('makespan, locked ÷ per-CPU'),
        spinCycles: z
          .object({ perCpu: z.number().int().min(0).describe('spin cycles, per-CPU caching on'), locked: z.number().int().min(0).describe('spin cycles, locked') })
          .describe('lock spin cycles of both runs, summed over the CPUs'),
        operations: z
          .object({ alloc: perOpPair.describe('mean cycles per allocation'), free: perOpPair.describe('mean cycles per free') })
          .describe('mean cycles per allocation and per free, both runs, and their ratio'),
        paths: z
          .array(z.object({ path: z.string().describe('the path label'), perCpu: opsMean.describe('per-CPU caching on'), locked: opsMean.describe('locked') }))
          .describe('every path of either run, by name'),
      })
      .describe('the two runs compared'),
  })
  .describe('one trace replayed twice, per-CPU caching on and off');

const int = formatInt;
const fix = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');

function table(header: string[], rows: (string | number)[][], leftColumns = 1): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? int(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) => r.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

function seconds(r: ReplayReport, cycles: number): string {
  const s = cycles / (r.machine.clockGHz * 1e9);
  return s >= 1 ? `${fix(s, 2)} s` : s >= 1e-3 ? `${fix(s * 1e3, 2)} ms` : `${fix(s * 1e6, 1)} µs`;
}

function pathRows(paths: readonly PathStats[]): (string | number)[][] {
  return paths.map((p) => [
    p.path, p.ops, p.cycles.total, fix(p.cycles.mean), p.cycles.p50, p.cycles.p99, p.l1dMisses, p.llcMisses, p.tlbMisses, p.walkCycles, p.c2cTransfers, p.spinCycles,
  ]);
}

const pathHeader = ['path', 'ops', 'cycles', 'mean', 'p50', 'p99', 'L1D miss', 'LLC miss', 'TLB miss', 'walk cyc', 'c2c', 'spin cyc'];

/** The heading's note of a warm-up ('' without one). */
function warmupNote(warmup: number | undefined, leftOut?: number): string {
  if (warmup === undefined) return '';
  return `; measured after a warm-up of ${int(warmup)} event${warmup === 1 ? '' : 's'} per CPU${leftOut === undefined ? '' : ` (${int(leftOut)} left out)`}`;
}

/** A replay report as text. `zones` limits the per-zone section to the costliest zones. */
export function formatReport(r: ReplayReport, zones = 8, showLegend = true): string {
  const t = r.totals;
  const lines: string[] = [];
  lines.push(
    `${r.trace.name || 'trace'} on ${r.machine.name} (${r.machine.cpus} CPU${r.machine.cpus > 1 ? 's' : ''}, ${r.machine.clockGHz} GHz)` +
      `${r.trace.cpus > r.machine.cpus ? `, folded from ${r.trace.cpus} trace CPUs` : ''}; allocator ${r.allocator.name}, per-CPU caching ` +
      `${r.allocator.perCpuCaching ? 'on' : 'off'}${r.allocator.alignedPerCpu ? ' (aligned per-CPU state)' : ''}, touch ${r.allocator.touchLines} line${r.allocator.touchLines === 1 ? '' : 's'}` +
      warmupNote(r.run.warmup, r.totals.warmup?.events),
  );
  lines.push(
    `events ${int(t.events)}, allocations ${int(t.allocations)}, frees ${int(t.frees)}; makespan ${int(t.makespanCycles)} cycles (${seconds(r, t.makespanCycles)}); ` +
      `allocator ${int(t.allocatorCycles)} cycles in ${int(t.allocatorOps)} ops, ${fix(t.allocatorCycles / Math.max(1, t.allocatorOps))} per op`,
  );
  lines.push(`memory held by the allocator: ${int(t.memory.pages)} pages, ${int(t.memory.cachedFreeItems)} free items cached`);
  lines.push('', 'operations by the path they completed on:', table(pathHeader, pathRows(r.paths)));
  const total = r.regions.reduce((n, x) => n + x.cycles, 0);
  lines.push(
    '',
    'where the cycles went (by path label):',
    table(
      ['label', 'cycles', 'share', 'L1D miss', 'LLC miss', 'TLB miss', 'c2c', 'spin cyc', 'idle cyc'],
      r.regions.map((x) => [x.label, x.cycles, `${fix((100 * x.cycles) / Math.max(1, total))}%`, x.l1dMisses, x.llcMisses, x.tlbMisses, x.c2cTransfers, x.spinCycles, x.idleCycles]),
    ),
  );
  if (r.vmem !== undefined) {
    const v = r.vmem;
    const rows = (op: string, ps: typeof v.allocs) => ps.map((p) => [op, p.path, p.ops, p.cycles.total, fix(p.cycles.mean), p.cycles.p50, p.cycles.p99, p.cycles.max]);
    lines.push(
      '',
      `vmem (${v.arenas} arena${v.arenas === 1 ? '' : 's'}): allocations and frees by the path they completed on; ${int(v.failures)} failed (ENOMEM), ${int(v.skippedFrees)} free${v.skippedFrees === 1 ? '' : 's'} of them skipped`,
      table(['op', 'path', 'ops', 'cycles', 'mean', 'p50', 'p99', 'max'], [...rows('v', v.allocs), ...rows('V', v.frees)], 2),
    );
  }
  if (r.mbuf !== undefined) {
    const b = r.mbuf;
    const rows = (op: string, ps: typeof b.allocs) => ps.map((p) => [op, p.path, p.ops, p.cycles.total, fix(p.cycles.mean), p.cycles.p50, p.cycles.p99, p.cycles.max]);
    lines.push(
      '',
      `mbufs (${b.packetZone ? 'm_getcl from the packet zone' : 'no packet zone: m_getcl is m_gethdr + m_clget'}): allocations and frees by the path they completed on; ${int(b.failures)} failed, ${int(b.skippedFrees)} free${b.skippedFrees === 1 ? '' : 's'} of them skipped`,
      table(['op', 'path', 'ops', 'cycles', 'mean', 'p50', 'p99', 'max'], [...rows('b', b.allocs), ...rows('B', b.frees)], 2),
    );
  }
  lines.push('', 'per CPU:', table(['cpu', 'busy cyc', 'spin cyc', 'idle cyc'], r.cpus.map((c) => [`cpu${c.cpu}`, c.busyCycles, c.spinCycles, c.idleCycles])));
  const shown = r.zones.slice(0, zones);
  if (shown.length > 0) {
    lines.push('', `zones (${shown.length < r.zones.length ? `the ${shown.length} costliest of ${r.zones.length}` : 'all'}, by cycles):`);
    const rows: (string | number)[][] = [];
    for (const z of shown) for (const p of z.paths) rows.push([z.zone, ...pathRows([p])[0]!]);
    lines.push(table(['zone', ...pathHeader], rows, 2));
  }
  if (showLegend) lines.push('', legend([...new Set([...r.paths.map((p) => p.path), ...r.regions.map((x) => x.label)])]));
  return lines.join('\n');
}

/** Whether a path is an allocation's or a free's: zones' and UMA's `.alloc`/`.free`, vmem's xalloc/xfree, mbuf(9)'s get/free. */
export function pathKind(path: string): 'alloc' | 'free' | undefined {
  if (path.includes('.alloc') || path.endsWith('.xalloc') || path.startsWith('mbuf.get') || path === 'mbuf.clget') return 'alloc';
  if (path.includes('.free') || path.endsWith('.xfree')) return 'free';
  return undefined;
}

export function mean(paths: readonly PathStats[], kind: 'alloc' | 'free'): { ops: number; mean: number } {
  const sel = paths.filter((p) => pathKind(p.path) === kind);
  const ops = sel.reduce((n, p) => n + p.ops, 0);
  return { ops, mean: sel.reduce((n, p) => n + p.cycles.total, 0) / Math.max(1, ops) };
}

export type CompareDoc = z.infer<typeof compareDocSchema>;

export function compareDoc(perCpu: ReplayReport, locked: ReplayReport): CompareDoc {
  const perOp = (r: ReplayReport) => r.totals.allocatorCycles / Math.max(1, r.totals.allocatorOps);
  const spin = (r: ReplayReport) => r.cpus.reduce((n, c) => n + c.spinCycles, 0);
  const op = (kind: 'alloc' | 'free') => {
    const a = mean(perCpu.paths, kind);
    const b = mean(locked.paths, kind);
    return { perCpu: a.mean, locked: b.mean, ratio: b.mean / a.mean };
  };
  const names = [...new Set([...perCpu.paths, ...locked.paths].map((p) => p.path))].sort();
  const find = (r: ReplayReport, n: string) => r.paths.find((p) => p.path === n);
  const { pcpu: _pcpu, ...allocator } = perCpu.run.allocator;
  return {
    schema: COMPARE_SCHEMA,
    run: { ...perCpu.run, allocator },
    perCpu,
    locked,
    ratios: {
      cyclesPerOp: perOp(locked) / perOp(perCpu),
      makespan: locked.totals.makespanCycles / perCpu.totals.makespanCycles,
      spinCycles: { perCpu: spin(perCpu), locked: spin(locked) },
      operations: { alloc: op('alloc'), free: op('free') },
      paths: names.map((n) => ({
        path: n,
        perCpu: { ops: find(perCpu, n)?.ops ?? 0, meanCycles: find(perCpu, n)?.cycles.mean ?? 0 },
        locked: { ops: find(locked, n)?.ops ?? 0, meanCycles: find(locked, n)?.cycles.mean ?? 0 },
      })),
    },
  };
}

/** Per-operation counts of a run: every miss and transfer of the run over its allocator operations. */
export function perOp(r: ReplayReport) {
  const ops = Math.max(1, r.totals.allocatorOps);
  const all = (f: (x: RegionStats) => number) => r.regions.reduce((n, x) => n + f(x), 0) / ops;
  return {
    cycles: r.totals.allocatorCycles / ops,
    l1d: all((x) => x.l1dMisses),
    llc: all((x) => x.llcMisses),
    tlb: all((x) => x.tlbMisses),
    c2c: all((x) => x.c2cTransfers),
  };
}

/**
 * A comparison as text: the two runs side by side, by path with their misses, where the cycles
 * went, why it came out so, and (unless `showLegend` is false) the legend of the words used.
 */
export function formatCompare(d: CompareDoc, showLegend = true): string {
  const a = d.perCpu;
  const b = d.locked;
  const pa = perOp(a);
  const pb = perOp(b);
  const lines: string[] = [];
  lines.push(
    `${a.trace.name || 'trace'} on ${a.machine.name} (${a.machine.cpus} CPU${a.machine.cpus > 1 ? 's' : ''}), allocator ${a.allocator.name}: ` +
      `per-CPU caching on vs off (every request on the locked path)${warmupNote(d.run.warmup)}`,
  );
  const row = (label: string, x: number, y: number, digits = 0) => [label, digits ? fix(x, digits) : x, digits ? fix(y, digits) : y, `${fix(y / x, 2)}×`];
  lines.push(
    '',
    table(
      ['', 'per-CPU', 'locked', 'locked ÷ per-CPU'],
      [
        row('cycles per operation', pa.cycles, pb.cycles, 1),
        row('  per allocation', d.ratios.operations.alloc.perCpu, d.ratios.operations.alloc.locked, 1),
        row('  per free', d.ratios.operations.free.perCpu, d.ratios.operations.free.locked, 1),
        row('L1D misses per op', pa.l1d, pb.l1d, 2),
        row('LLC misses per op', pa.llc, pb.llc, 2),
        row('TLB misses per op', pa.tlb, pb.tlb, 2),
        row('c2c per op', pa.c2c, pb.c2c, 2),
        row('allocator cycles', a.totals.allocatorCycles, b.totals.allocatorCycles),
        row('spin cycles', d.ratios.spinCycles.perCpu, d.ratios.spinCycles.locked),
        row('makespan (cycles)', a.totals.makespanCycles, b.totals.makespanCycles),
      ],
    ),
  );
  const perPath = (p: PathStats | undefined) =>
    p === undefined || p.ops === 0 ? [0, '-', '-', '-', '-'] : [p.ops, fix(p.cycles.mean), fix(p.l1dMisses / p.ops, 2), fix(p.llcMisses / p.ops, 2), fix(p.tlbMisses / p.ops, 2)];
  lines.push(
    '',
    'by path (ops; mean cycles; L1D, LLC and TLB misses per op in the path\'s own code):',
    table(
      ['path', 'per-CPU ops', 'mean', 'L1D', 'LLC', 'TLB', 'locked ops', 'mean', 'L1D', 'LLC', 'TLB'],
      d.ratios.paths.map((p) => [p.path, ...perPath(a.paths.find((x) => x.path === p.path)), ...perPath(b.paths.find((x) => x.path === p.path))]),
    ),
  );
  const total = a.regions.reduce((n, x) => n + x.cycles, 0);
  const totalB = b.regions.reduce((n, x) => n + x.cycles, 0);
  const labels = [...new Set([...a.regions.slice(0, 10), ...b.regions.slice(0, 10)].map((x) => x.label))];
  lines.push(
    '',
    'where the cycles went (by path label):',
    table(
      ['label', 'per-CPU cycles', 'share', 'c2c', 'spin cyc', 'locked cycles', 'share', 'c2c', 'spin cyc'],
      labels.map((l) => {
        const x = a.regions.find((r) => r.label === l);
        const y = b.regions.find((r) => r.label === l);
        return [
          l, x?.cycles ?? 0, `${fix((100 * (x?.cycles ?? 0)) / Math.max(1, total))}%`, x?.c2cTransfers ?? 0, x?.spinCycles ?? 0,
          y?.cycles ?? 0, `${fix((100 * (y?.cycles ?? 0)) / Math.max(1, totalB))}%`, y?.c2cTransfers ?? 0, y?.spinCycles ?? 0,
        ];
      }),
    ),
  );
  lines.push('', 'why:', explainCompare(a, b));
  if (showLegend) lines.push('', legend([...new Set([...d.ratios.paths.map((p) => p.path), ...labels])]));
  return lines.join('\n');
}
