// The sweep charts (tools/sweep/plot.ts) on hand-made rows: each SVG is parsed and its marks are
// counted by the class names Vega gives them (`mark-<type> role-mark <name>_marks`, the name
// being the Vega-Lite layer's), its texts and data labels (aria-label) read back.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { UserError } from '../../emu/index.js';
import { chart, defaultCharts, type SweepRow } from '../../tools/sweep/plot.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

/** fast-xml-parser's preserveOrder form -> a plain tree. */
function toNodes(raw: unknown[]): XmlNode[] {
  const nodes: XmlNode[] = [];
  for (const item of raw as Record<string, unknown>[]) {
    const tag = Object.keys(item).find((k) => k !== ':@');
    if (tag === undefined) continue;
    if (tag === '#text') {
      nodes.push({ tag, attrs: {}, children: [], text: String(item[tag]) });
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries((item[':@'] ?? {}) as Record<string, unknown>)) attrs[k.replace(/^@_/, '')] = String(v);
    const children = toNodes(item[tag] as unknown[]);
    nodes.push({ tag, attrs, children, text: children.map((c) => c.text).join('') });
  }
  return nodes;
}

function parseSvg(svg: string): XmlNode {
  const parser = new XMLParser({ ignoreAttributes: false, preserveOrder: true, parseAttributeValue: false, trimValues: false });
  const roots = toNodes(parser.parse(svg, true) as unknown[]);
  expect(roots).toHaveLength(1);
  return roots[0]!;
}

function all(node: XmlNode, pred: (n: XmlNode) => boolean, out: XmlNode[] = []): XmlNode[] {
  if (pred(node)) out.push(node);
  for (const child of node.children) all(child, pred, out);
  return out;
}

/** The mark groups of one Vega-Lite layer, e.g. marks(svg, 'line', 'series'). */
function marks(root: XmlNode, type: string, name: string): XmlNode[] {
  return all(root, (n) => n.tag === 'g' && n.attrs['class'] === `mark-${type} role-mark ${name}_marks`);
}

/** The drawn items (one <path> each) of a layer's mark groups. */
function items(root: XmlNode, type: string, name: string): XmlNode[] {
  return marks(root, type, name).flatMap((g) => g.children.filter((c) => c.tag === 'path'));
}

/** The texts under groups whose class contains `role`, e.g. 'role-legend-label'. */
function texts(root: XmlNode, role: string): string[] {
  return all(root, (n) => n.tag === 'g' && (n.attrs['class'] ?? '').split(' ').includes(role))
    .flatMap((g) => all(g, (n) => n.tag === 'text').map((t) => t.text));
}

function axisTitles(root: XmlNode): string[] {
  return texts(root, 'role-axis-title');
}

const PATHS = ['uma.alloc.cpucache', 'uma.alloc.depot'] as const;

/**
 * cpus 1, 2, 4 × pcpu true/false on UMA (allocator is a single-valued axis). 1000 operations a
 * point: with pcpu, 900 of them hit the per-CPU bucket at 20 cycles and 100 go to the depot at
 * 60 + 30 × cpus cycles; without, all 1000 go to the depot. Throughput scales 1, 1.9, 3.6 with
 * per-CPU caching and 1, 1.5, 1.8 without.
 */
function cpusByPcpu(): SweepRow[] {
  const rows: SweepRow[] = [];
  const speedup = { true: [1, 1.9, 3.6], false: [1, 1.5, 1.8] };
  for (const pcpu of [true, false]) {
    [1, 2, 4].forEach((cpus, i) => {
      const cacheOps = pcpu ? 900 : 0;
      const depotOps = 1000 - cacheOps;
      const depotCycles = 60 + 30 * cpus;
      const cyclesPerOp = (cacheOps * 20 + depotOps * depotCycles) / 1000;
      const throughput = 100 * speedup[pcpu ? 'true' : 'false'][i]!;
      const metrics: Record<string, number> = {
        cpus, events: 2000, allocator_ops: 1000, cycles_per_op: cyclesPerOp,
        alloc_cycles_per_op: cyclesPerOp, free_cycles_per_op: cyclesPerOp,
        makespan_cycles: 1e9 / throughput, throughput_ops_per_mcycle: throughput,
        l1d_misses_per_op: 0.5 * cpus + (pcpu ? 0 : 1), llc_misses_per_op: 0.1, tlb_misses_per_op: 0.01,
        c2c_per_op: pcpu ? 0 : cpus, spin_cycles: pcpu ? 0 : 1000 * cpus,
        [`ops.${PATHS[1]}`]: depotOps, [`cycles_per_op.${PATHS[1]}`]: depotCycles,
      };
      if (cacheOps > 0) {
        metrics[`ops.${PATHS[0]}`] = cacheOps;
        metrics[`cycles_per_op.${PATHS[0]}`] = 20;
      }
      const index = rows.length;
      rows.push({ index, id: index.toString(16).padStart(16, '0'), params: { cpus, pcpu, allocator: 'uma' }, metrics });
    });
  }
  return rows;
}

const AXES = ['cpus', 'pcpu', 'allocator'];

const METRIC_LIST = 'alloc_cycles_per_op, allocator_ops, c2c_per_op, cpus, cycles_per_op, '
  + 'cycles_per_op.uma.alloc.cpucache, cycles_per_op.uma.alloc.depot, events, free_cycles_per_op, '
  + 'l1d_misses_per_op, llc_misses_per_op, makespan_cycles, ops.uma.alloc.cpucache, ops.uma.alloc.depot, '
  + 'spin_cycles, throughput_ops_per_mcycle, tlb_misses_per_op';

let warn: MockInstance<typeof console.warn>;
beforeEach(() => {
  warn = vi.spyOn(console, 'warn');
});
afterEach(() => {
  // Vega and Vega-Lite report a spec they cannot honour (a dropped legend entry, an ignored
  // property) on the console; a chart that causes one is a defect.
  expect(warn).not.toHaveBeenCalled();
  warn.mockRestore();
});

describe('defaultCharts()', () => {
  it('defaultCharts() writes speedup, cycles by path and one chart per other varying axis', async () => {
    const charts = await defaultCharts(cpusByPcpu(), AXES);
    expect(charts.map((c) => c.name)).toEqual(['speedup-vs-cpus', 'cycles-by-path', 'cycles_per_op-vs-pcpu']);
    expect(charts.map((c) => c.title)).toEqual([
      'Throughput speedup vs CPUs per configuration', 'Cycles per operation by path', 'Cycles per operation vs pcpu',
    ]);
    for (const c of charts) {
      const root = parseSvg(c.svg);
      expect(root.tag).toBe('svg');
      expect(root.attrs['width']).toBe('720');
      expect(root.attrs['height']).toBe('420');
      expect(texts(root, 'role-title-text')).toEqual([c.title]);
    }
  });

  it('the speedup chart draws one line per configuration over each one\'s throughput at 1 CPU', async () => {
    const [speedup] = await defaultCharts(cpusByPcpu(), AXES);
    const root = parseSvg(speedup!.svg);
    const lines = marks(root, 'line', 'series');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.children.filter((c) => c.tag === 'path')).toHaveLength(1);
    const points = items(root, 'symbol', 'points');
    expect(points).toHaveLength(6);
    expect(points.map((p) => p.attrs['aria-label']).sort()).toEqual([
      'CPUs: 1; speedup over 1 CPU: 1; configuration: pcpu=false',
      'CPUs: 1; speedup over 1 CPU: 1; configuration: pcpu=true',
      'CPUs: 2; speedup over 1 CPU: 1.5; configuration: pcpu=false',
      'CPUs: 2; speedup over 1 CPU: 1.9; configuration: pcpu=true',
      'CPUs: 4; speedup over 1 CPU: 1.8; configuration: pcpu=false',
      'CPUs: 4; speedup over 1 CPU: 3.6; configuration: pcpu=true',
    ]);
    // allocator has one value, so it is not part of the configuration label
    expect(texts(root, 'role-legend-label')).toEqual(['pcpu=true', 'pcpu=false']);
    expect(axisTitles(root)).toEqual(['CPUs', 'speedup over 1 CPU']);
    expect(texts(root, 'role-axis-label').slice(0, 3)).toEqual(['1', '2', '4']);
    expect(items(root, 'line', 'linear')).toHaveLength(1);
    expect(texts(root, 'role-mark')).toContain('linear');
  });

  it('the speedup chart names the smallest swept CPU count when it is not 1', async () => {
    const rows = cpusByPcpu().filter((r) => r.params['cpus'] !== 1);
    const [speedup] = await defaultCharts(rows, AXES);
    const root = parseSvg(speedup!.svg);
    expect(axisTitles(root)).toEqual(['CPUs', 'speedup over 2 CPUs']);
    const speedups = items(root, 'symbol', 'points').map((p) => {
      const m = /^CPUs: (\d+); speedup over 2 CPUs: ([\d.]+); configuration: (.*)$/.exec(p.attrs['aria-label'] ?? '');
      expect(m).not.toBeNull();
      return { cpus: Number(m![1]), speedup: Number(m![2]), config: m![3] };
    });
    expect(speedups).toHaveLength(4);
    for (const p of speedups) {
      const expected = p.cpus === 2 ? 1 : p.config === 'pcpu=true' ? 3.6 / 1.9 : 1.8 / 1.5;
      expect(p.speedup).toBeCloseTo(expected, 9);
    }
  });

  it('a sweep without a cpus axis gets no speedup chart', async () => {
    const rows = cpusByPcpu()
      .filter((r) => r.params['cpus'] === 2)
      .flatMap((r) => ['32k', '48k'].map((size, i) => ({
        ...r, index: 2 * r.index + i, params: { pcpu: r.params['pcpu']!, 'machine.l1d.size': size },
      })));
    const charts = await defaultCharts(rows, ['pcpu', 'machine.l1d.size']);
    expect(charts.map((c) => c.name)).toEqual(['cycles-by-path', 'cycles_per_op-vs-pcpu', 'cycles_per_op-vs-machine.l1d.size']);
    for (const c of charts) expect(c.name).toMatch(/^[A-Za-z0-9._-]+$/);
  });

  it('cycles-by-path stacks one segment per path on each point, in row order, to the point\'s cycles_per_op', async () => {
    const rows = cpusByPcpu();
    const byPath = (await defaultCharts(rows, AXES)).find((c) => c.name === 'cycles-by-path')!;
    const root = parseSvg(byPath.svg);
    const rects = items(root, 'rect', 'bars');
    // pcpu=false points never use the per-CPU bucket: 3 points × 2 paths + 3 points × 1 path
    expect(rects).toHaveLength(9);
    expect(rects.map((r) => r.attrs['aria-label'])).toContain('sweep point: cpus=4, pcpu=true; cycles per operation: 18; path: uma.alloc.cpucache');
    expect(rects.map((r) => r.attrs['aria-label'])).toContain('sweep point: cpus=4, pcpu=true; cycles per operation: 18; path: uma.alloc.depot');
    expect(texts(root, 'role-axis-label').slice(0, 6)).toEqual([
      'cpus=1, pcpu=true', 'cpus=2, pcpu=true', 'cpus=4, pcpu=true', 'cpus=1, pcpu=false', 'cpus=2, pcpu=false', 'cpus=4, pcpu=false',
    ]);
    expect(texts(root, 'role-legend-label')).toEqual([...PATHS]);
    expect(axisTitles(root)).toEqual(['sweep point', 'cycles per operation']);

    // Each bar is `M x,y h width v height h -width Z`; a bar's stacked height over another's is
    // the ratio of their cycles_per_op.
    const heights = new Map<string, number>();
    for (const r of rects) {
      const m = /^M([-\d.e]+),[-\d.e]+h[-\d.e]+v([-\d.e]+)/.exec(r.attrs['d'] ?? '');
      expect(m).not.toBeNull();
      heights.set(m![1]!, (heights.get(m![1]!) ?? 0) + Number(m![2]));
    }
    const bars = [...heights.entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([, h]) => h);
    expect(bars).toHaveLength(6);
    for (let i = 0; i < rows.length; i++) {
      expect(bars[i]! / bars[0]!).toBeCloseTo(rows[i]!.metrics['cycles_per_op']! / rows[0]!.metrics['cycles_per_op']!, 3);
    }
  });

  it('the chart against a categorical axis draws a bar per point, coloured by the other varying axis', async () => {
    const vsPcpu = (await defaultCharts(cpusByPcpu(), AXES)).find((c) => c.name === 'cycles_per_op-vs-pcpu')!;
    const root = parseSvg(vsPcpu.svg);
    const rects = items(root, 'rect', 'bars');
    expect(rects).toHaveLength(6);
    expect(rects.map((r) => r.attrs['aria-label'])).toContain('pcpu: false; cycles per operation: 180; CPUs: 4');
    expect(texts(root, 'role-legend-title')).toEqual(['CPUs']);
    expect(texts(root, 'role-legend-label')).toEqual(['1', '2', '4']);
    expect(axisTitles(root)).toEqual(['pcpu', 'cycles per operation']);
  });

  it('a numeric axis spanning 16× or more is drawn on a log scale with a tick at each swept value', async () => {
    const sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256];
    const rows: SweepRow[] = sizes.map((bucketSize, index) => ({
      index, id: index.toString(16).padStart(16, '0'), params: { bucketSize },
      metrics: { cycles_per_op: 100 / bucketSize + 10, allocator_ops: 1, cpus: 1 },
    }));
    const [vsBucket] = await defaultCharts(rows, ['bucketSize']);
    expect(vsBucket!.name).toBe('cycles_per_op-vs-bucketSize');
    const root = parseSvg(vsBucket!.svg);
    expect(axisTitles(root)).toEqual(['bucketSize (log scale)', 'cycles per operation']);
    expect(texts(root, 'role-axis-label').slice(0, sizes.length)).toEqual(sizes.map(String));
    expect(items(root, 'line', 'series')).toHaveLength(1);
    expect(items(root, 'symbol', 'points')).toHaveLength(sizes.length);
  });

  it('a legend of more than 20 configurations lists the first 20 and says so', async () => {
    const rows: SweepRow[] = [];
    for (let bucketSize = 1; bucketSize <= 24; bucketSize++) {
      for (const cpus of [1, 2]) {
        const index = rows.length;
        rows.push({
          index, id: index.toString(16).padStart(16, '0'), params: { cpus, bucketSize },
          metrics: { cpus, allocator_ops: 1, cycles_per_op: 1, throughput_ops_per_mcycle: cpus * (1 + bucketSize / 100) },
        });
      }
    }
    const [speedup] = await defaultCharts(rows, ['cpus', 'bucketSize']);
    const root = parseSvg(speedup!.svg);
    expect(texts(root, 'role-legend-title')).toEqual(['configuration (first 20 of 24)']);
    expect(texts(root, 'role-legend-label')).toEqual(Array.from({ length: 20 }, (_, i) => `bucketSize=${i + 1}`));
    expect(marks(root, 'line', 'series')).toHaveLength(24);
  });

  it('the same rows give byte-identical SVG', async () => {
    const first = await defaultCharts(cpusByPcpu(), AXES);
    await chart(cpusByPcpu(), AXES, { x: 'cpus', y: 'spin_cycles' });
    const second = await defaultCharts(cpusByPcpu(), AXES);
    expect(second.map((c) => c.svg)).toEqual(first.map((c) => c.svg));
  });
});

describe('chart()', () => {
  it('chart() draws a metric against a numeric axis, one line per value of the colour axis', async () => {
    const svg = await chart(cpusByPcpu(), AXES, { x: 'cpus', y: 'l1d_misses_per_op', color: 'pcpu' });
    const root = parseSvg(svg);
    expect(root.tag).toBe('svg');
    expect(root.attrs['width']).toBe('720');
    expect(root.attrs['height']).toBe('420');
    expect(texts(root, 'role-title-text')).toEqual(['L1d misses per operation vs CPUs']);
    expect(axisTitles(root)).toEqual(['CPUs', 'L1d misses per operation']);
    expect(items(root, 'line', 'series')).toHaveLength(2);
    expect(items(root, 'symbol', 'points')).toHaveLength(6);
    expect(texts(root, 'role-legend-label')).toEqual(['true', 'false']);
    expect(items(root, 'symbol', 'points').map((p) => p.attrs['aria-label'])).toContain('CPUs: 4; L1d misses per operation: 3; pcpu: false');
    expect(await chart(cpusByPcpu(), AXES, { x: 'cpus', y: 'l1d_misses_per_op', color: 'pcpu' })).toBe(svg);
  });

  it('chart() without a colour still separates the configurations', async () => {
    const root = parseSvg(await chart(cpusByPcpu(), AXES, { x: 'cpus', y: 'cycles_per_op' }));
    expect(items(root, 'line', 'series')).toHaveLength(2);
    expect(texts(root, 'role-legend-label')).toEqual(['true', 'false']);
  });

  it('chart() draws a categorical axis as bars side by side, one per remaining configuration', async () => {
    const root = parseSvg(await chart(cpusByPcpu(), AXES, { x: 'pcpu', y: 'cycles_per_op', color: 'allocator' }));
    const rects = items(root, 'rect', 'bars');
    expect(rects).toHaveLength(6);
    expect(rects.map((r) => r.attrs['aria-label'])).toContain('pcpu: true; cycles per operation: 36; series: allocator=uma, cpus=4; allocator: uma');
    expect(texts(root, 'role-legend-label')).toEqual(['uma']);
    expect(texts(root, 'role-axis-label').slice(0, 2)).toEqual(['true', 'false']);
  });

  it('chart() draws a metric against a metric as a scatter', async () => {
    const root = parseSvg(await chart(cpusByPcpu(), AXES, { x: 'c2c_per_op', y: 'cycles_per_op', color: 'pcpu' }));
    expect(items(root, 'symbol', 'points')).toHaveLength(6);
    expect(marks(root, 'line', 'series')).toHaveLength(0);
    expect(axisTitles(root)).toEqual(['cache-to-cache transfers per operation', 'cycles per operation']);
    expect(texts(root, 'role-title-text')).toEqual(['Cycles per operation vs cache-to-cache transfers per operation']);
  });

  it('chart() rejects an unknown metric, axis or colour with one line listing what there is', async () => {
    const rows = cpusByPcpu();
    await expect(chart(rows, AXES, { x: 'cpus', y: 'cyles_per_op' })).rejects.toThrow(new UserError(
      `--y: no metric "cyles_per_op" in the sweep (metrics: ${METRIC_LIST})`,
    ));
    await expect(chart(rows, AXES, { x: 'cpu', y: 'cycles_per_op' })).rejects.toThrow(new UserError(
      `--x: no axis or metric "cpu" in the sweep (axes: cpus, pcpu, allocator; metrics: ${METRIC_LIST})`,
    ));
    await expect(chart(rows, AXES, { x: 'cpus', y: 'cycles_per_op', color: 'pcpus' })).rejects.toThrow(new UserError(
      '--color: no axis "pcpus" in the sweep (axes: cpus, pcpu, allocator)',
    ));
    await expect(chart(rows, AXES, { x: 'cpus', y: 'pcpu' })).rejects.toBeInstanceOf(UserError);
    await expect(chart([], AXES, { x: 'cpus', y: 'cycles_per_op' })).rejects.toThrow(new UserError('the sweep has no points to chart'));
  });
});

describe('loading', () => {
  it('importing the plot module does not load Vega; drawing a chart does', () => {
    // The compiled module, as the CLI loads it (the suite's global setup runs `make build`).
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))});
      const loaded = () => Object.keys(require.cache).some((f) => f.includes('/node_modules/vega'));
      const plot = await import(${JSON.stringify(path.join(ROOT, 'dist/tools/sweep/plot.js'))});
      const before = loaded();
      await plot.chart([{ index: 0, id: '0', params: { cpus: 1 }, metrics: { cycles_per_op: 1 } }], ['cpus'], { x: 'cpus', y: 'cycles_per_op' });
      console.log(JSON.stringify({ before, after: loaded() }));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ before: false, after: true });
  });
});
