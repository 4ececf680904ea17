// The charts of a what-if sweep (kmemu sweep, issue 13), drawn from its results.jsonl rows as
// SVG: the default set every sweep writes (throughput speedup against CPUs per configuration,
// cycles per operation split by path, cycles per operation against each other varying axis)
// and any axis or metric against any metric for `kmemu sweep plot`. Each chart is a Vega-Lite
// spec rendered headless (Vega's 'none' renderer, no canvas) at a fixed size; the same rows give
// byte-identical SVG. Vega is imported only when a chart is drawn, so the CLI starts without it.

import type { TopLevelSpec } from 'vega-lite';
import { UserError } from '../../emu/index.js';

/** One point of a sweep, as results.jsonl holds it. */
export interface SweepRow {
  /** Position in the spec's point order (0-based). */
  index: number;
  /** The point's hash id (16 hex digits). */
  id: string;
  /** Axis name -> this point's value, one key per axis of the spec. */
  params: Record<string, string | number | boolean>;
  /** Headline figures (cycles_per_op, throughput_ops_per_mcycle, ...) and per path P ops.P, cycles_per_op.P. */
  metrics: Record<string, number>;
}

/** One rendered chart; `name` is file-safe (the CLI writes `<name>.svg`). */
export interface SweepChart {
  name: string;
  title: string;
  svg: string;
}

type AxisValue = string | number | boolean;

/**
 * A Vega-Lite spec as this file builds it, a plain object. Vega-Lite's own TopLevelSpec is a
 * union too deep to build piecewise; render() hands the object to Vega-Lite's compiler, and the
 * tests render every kind of chart with warnings counted as failures.
 */
type VlSpec = Record<string, unknown>;

/** Size of the whole SVG in pixels, title, axes and legend included (autosize 'fit'). */
const CHART_WIDTH = 720;
const CHART_HEIGHT = 420;

/** Above this many series the 10-colour scheme would repeat colours. */
const CATEGORY10_SERIES = 10;

/** Above this many swept values an axis keeps Vega's own ticks instead of one per value. */
const MAX_VALUE_TICKS = 16;

const METRIC_TITLES: Readonly<Record<string, string>> = {
  cpus: 'CPUs',
  events: 'trace events',
  allocator_ops: 'allocator operations',
  cycles_per_op: 'cycles per operation',
  alloc_cycles_per_op: 'cycles per allocation',
  free_cycles_per_op: 'cycles per free',
  makespan_cycles: 'makespan (cycles)',
  throughput_ops_per_mcycle: 'throughput (operations per million cycles)',
  l1d_misses_per_op: 'L1d misses per operation',
  llc_misses_per_op: 'LLC misses per operation',
  tlb_misses_per_op: 'TLB misses per operation',
  c2c_per_op: 'cache-to-cache transfers per operation',
  spin_cycles: 'lock spin (cycles)',
};

const POINT_MARK = { type: 'point', filled: true, size: 40, opacity: 1 };

/** d3-format: plain decimals without trailing zeros (256, not 2.6e+2), thousands separated. */
const TICK_FORMAT = ',~r';

/** Legend entries that fit beside a chart of CHART_HEIGHT, and as many as tableau20 has colours. */
const LEGEND_ENTRIES = 20;

const OPS_PREFIX = 'ops.';
const PATH_CYCLES_PREFIX = 'cycles_per_op.';

/** The axis title of a metric, with its unit. */
function metricTitle(metric: string): string {
  const known = METRIC_TITLES[metric];
  if (known !== undefined) return known;
  if (metric.startsWith(OPS_PREFIX)) return `operations on ${metric.slice(OPS_PREFIX.length)}`;
  if (metric.startsWith(PATH_CYCLES_PREFIX)) return `cycles per operation on ${metric.slice(PATH_CYCLES_PREFIX.length)}`;
  return metric;
}

function axisTitle(axis: string): string {
  return axis === 'cpus' ? 'CPUs' : axis;
}

function sentenceCase(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A chart name usable as a file name: anything but letters, digits, '.', '_' and '-' becomes '_'. */
function fileSafe(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** The distinct values of an axis, in the order the points first use them (the spec's order). */
function axisValues(rows: readonly SweepRow[], axis: string): AxisValue[] {
  const seen = new Set<AxisValue>();
  for (const row of rows) {
    const value = row.params[axis];
    if (value !== undefined) seen.add(value);
  }
  return [...seen];
}

function isNumericAxis(rows: readonly SweepRow[], axis: string): boolean {
  const values = axisValues(rows, axis);
  return values.length > 0 && values.every((v) => typeof v === 'number');
}

/** The axes along which the points differ, in the spec's axis order. */
function varyingAxes(rows: readonly SweepRow[], axes: readonly string[]): string[] {
  return axes.filter((axis) => axisValues(rows, axis).length > 1);
}

/** `axis=value, axis=value` over `labelAxes`; `all points` when there are none. */
function label(row: SweepRow, labelAxes: readonly string[]): string {
  if (labelAxes.length === 0) return 'all points';
  return labelAxes.map((axis) => `${axis}=${String(row.params[axis])}`).join(', ');
}

/** Every metric some row has, sorted by name. */
function metricNames(rows: readonly SweepRow[]): string[] {
  const names = new Set<string>();
  for (const row of rows) for (const name of Object.keys(row.metrics)) names.add(name);
  return [...names].sort();
}

/** The path labels P for which some row has both ops.P and cycles_per_op.P, sorted by name. */
function pathLabels(rows: readonly SweepRow[]): string[] {
  const paths = new Set<string>();
  for (const row of rows) {
    for (const name of Object.keys(row.metrics)) {
      if (!name.startsWith(OPS_PREFIX)) continue;
      const path = name.slice(OPS_PREFIX.length);
      if (row.metrics[PATH_CYCLES_PREFIX + path] !== undefined) paths.add(path);
    }
  }
  return [...paths].sort();
}

function distinctInOrder(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * A nominal colour channel over `series`, in their order: Vega's 10 colours, or 20 when there
 * are more series. Past LEGEND_ENTRIES the legend lists the first ones and its title says so,
 * rather than overflowing the chart (Vega would drop entries with a console warning).
 */
function colorChannel(field: string, title: string, series: readonly string[]): VlSpec {
  const scale = { domain: [...series], scheme: series.length > CATEGORY10_SERIES ? 'tableau20' : 'tableau10' };
  if (series.length <= LEGEND_ENTRIES) return { field, type: 'nominal', title, scale };
  return {
    field, type: 'nominal', scale,
    title: `${title} (first ${LEGEND_ENTRIES} of ${series.length})`,
    legend: { values: series.slice(0, LEGEND_ENTRIES) },
  };
}

/**
 * A quantitative x encoding over swept numeric values: no forced zero, a tick per value. With
 * `geometric`, values spanning 16× or more (bucketSize 1..256) go on a log scale.
 */
function sweptX(values: readonly number[], title: string, geometric: boolean): VlSpec {
  const sorted = [...values].sort((a, b) => a - b);
  const [lo] = sorted;
  const hi = sorted[sorted.length - 1];
  const log = geometric && lo !== undefined && hi !== undefined && lo > 0 && hi / lo >= 16;
  return {
    field: 'x',
    type: 'quantitative',
    title: log ? `${title} (log scale)` : title,
    scale: log ? { type: 'log', base: 2, nice: false, padding: 12 } : { zero: false, nice: false, padding: 12 },
    axis: sorted.length <= MAX_VALUE_TICKS ? { values: sorted, format: TICK_FORMAT } : { format: TICK_FORMAT },
  };
}

function frame(title: string): VlSpec {
  return {
    title,
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    autosize: { type: 'fit', contains: 'padding' },
    config: { legend: { labelLimit: 320 }, axis: { labelLimit: 160 } },
  };
}

/**
 * Helvetica's advance widths of ASCII 32..126 in 1/1000 em (its standard AFM metrics), for
 * laying out text without a canvas.
 */
const HELVETICA_WIDTHS = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' ' .. '/'
  556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // '0' .. '?'
  1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // '@' .. 'O'
  667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 'P' .. '_'
  333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // '`' .. 'o'
  556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p' .. '~'
];
const HELVETICA_DEFAULT_WIDTH = 556;
/** DejaVu Sans, the usual sans-serif on Linux, runs up to 15% wider than Helvetica; bold 10% more. */
const TEXT_WIDTH_MARGIN = 1.15;
const BOLD_WIDTH_FACTOR = 1.1;
/** Vega's default font size for text marks, in pixels. */
const VEGA_DEFAULT_FONT_SIZE = 11;

interface TextItem { fontSize?: number; fontWeight?: string | number; limit?: number }

/**
 * Text width in pixels for Vega's layout. Without node-canvas Vega guesses 0.8 em a character,
 * about half again too wide for sans-serif, so legends and labels get cut short; this sums
 * Helvetica's widths instead, the same on every machine. Like Vega's own estimate it answers for
 * the text as drawn, at most the item's `limit` (the truncation width).
 */
function textWidth(item: TextItem, text: unknown): number {
  const line = text == null ? '' : String(text).trim();
  const size = item.fontSize ?? VEGA_DEFAULT_FONT_SIZE;
  const bold = item.fontWeight === 'bold' || (typeof item.fontWeight === 'number' && item.fontWeight >= 600);
  let em = 0;
  for (let i = 0; i < line.length; i++) em += HELVETICA_WIDTHS[line.charCodeAt(i) - 32] ?? HELVETICA_DEFAULT_WIDTH;
  const width = (em / 1000) * size * TEXT_WIDTH_MARGIN * (bold ? BOLD_WIDTH_FACTOR : 1);
  return item.limit !== undefined && item.limit > 0 ? Math.min(width, item.limit) : width;
}

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');
let vegaModules: Promise<[Vega, VegaLite]> | undefined;

/** Vega and Vega-Lite, loaded on the first chart and not at CLI start-up. */
function loadVega(): Promise<[Vega, VegaLite]> {
  vegaModules ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vegaLite]) => {
    // textMetrics is exported by vega-scenegraph but missing from vega's typings.
    (vega as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number } }).textMetrics.width = textWidth;
    return [vega, vegaLite];
  });
  return vegaModules;
}

/** Vega-Lite -> Vega -> SVG, headless (Vega's 'none' renderer). */
async function render(spec: VlSpec): Promise<string> {
  const [vega, vegaLite] = await loadVega();
  vegaLite.resetIdCounter();
  const view = new vega.View(vega.parse(vegaLite.compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Throughput speedup against CPUs, one line per configuration (the other axes' values), after
 * Bonwick & Adams 2001, Figure 3.8: a point's throughput over its configuration's throughput at
 * that configuration's fewest CPUs. Undefined when cpus takes fewer than two values.
 */
function speedupSpec(rows: readonly SweepRow[], axes: readonly string[]): { title: string; spec: VlSpec } | undefined {
  const cpusRows = rows.filter((row) => typeof row.params['cpus'] === 'number');
  const cpusValues = [...new Set(cpusRows.map((row) => row.params['cpus'] as number))].sort((a, b) => a - b);
  if (cpusValues.length < 2) return undefined;
  const configAxes = varyingAxes(cpusRows, axes).filter((axis) => axis !== 'cpus');

  const groups = new Map<string, SweepRow[]>();
  for (const row of cpusRows) {
    const config = label(row, configAxes);
    const group = groups.get(config);
    if (group) group.push(row);
    else groups.set(config, [row]);
  }

  const points: { x: number; speedup: number; configuration: string }[] = [];
  const baseCpus = new Set<number>();
  for (const [config, group] of groups) {
    const base = group.reduce((a, b) => ((a.params['cpus'] as number) <= (b.params['cpus'] as number) ? a : b));
    const baseThroughput = base.metrics['throughput_ops_per_mcycle'];
    if (baseThroughput === undefined || !(baseThroughput > 0)) continue;
    baseCpus.add(base.params['cpus'] as number);
    for (const row of group) {
      const throughput = row.metrics['throughput_ops_per_mcycle'];
      if (throughput === undefined || !Number.isFinite(throughput)) continue;
      points.push({ x: row.params['cpus'] as number, speedup: throughput / baseThroughput, configuration: config });
    }
  }
  if (points.length === 0) return undefined;

  const [onlyBase] = baseCpus;
  const yTitle = baseCpus.size === 1 && onlyBase !== undefined
    ? `speedup over ${onlyBase} CPU${onlyBase === 1 ? '' : 's'}`
    : 'speedup over the fewest CPUs of each configuration';
  const configs = distinctInOrder(points.map((p) => p.configuration));
  const x = sweptX(cpusValues, 'CPUs', false);
  const y = { field: 'speedup', type: 'quantitative', title: yTitle };
  const color = colorChannel('configuration', 'configuration', configs);

  const layer: unknown[] = [];
  if (baseCpus.size === 1 && onlyBase !== undefined) {
    const linear = cpusValues.map((cpus) => ({ x: cpus, speedup: cpus / onlyBase }));
    const top = linear[linear.length - 1];
    layer.push(
      { name: 'linear', data: { values: linear }, mark: { type: 'line', color: '#888', strokeDash: [4, 4] }, encoding: { x, y } },
      {
        name: 'linear_label',
        data: { values: [{ ...top, text: 'linear' }] },
        mark: { type: 'text', color: '#888', align: 'right', baseline: 'middle', dx: -10 },
        encoding: { x, y, text: { field: 'text' } },
      },
    );
  }
  layer.push(
    { name: 'series', data: { values: points }, mark: { type: 'line' }, encoding: { x, y, color } },
    { name: 'points', data: { values: points }, mark: POINT_MARK, encoding: { x, y, color } },
  );
  const title = 'Throughput speedup vs CPUs per configuration';
  return { title, spec: { ...frame(title), layer } };
}

/**
 * One bar per point, in row order, stacked by path: a segment is the path's share of the point's
 * cycles per operation, ops.P × cycles_per_op.P / allocator_ops, so the bar's height is the
 * point's cycles_per_op. Undefined when no row has a path.
 */
function cyclesByPathSpec(rows: readonly SweepRow[], axes: readonly string[]): { title: string; spec: VlSpec } | undefined {
  const paths = pathLabels(rows);
  if (paths.length === 0 || rows.length === 0) return undefined;
  const varying = varyingAxes(rows, axes);
  const labelAxes = varying.length > 0 ? varying : [...axes];

  const seen = new Set<string>();
  const pointLabels: string[] = [];
  const segments: { point: string; path: string; cycles: number }[] = [];
  for (const row of rows) {
    let point = label(row, labelAxes);
    if (labelAxes.length === 0 || seen.has(point)) point = `${point} #${row.index}`;
    seen.add(point);
    pointLabels.push(point);
    const ops = row.metrics['allocator_ops'];
    if (ops === undefined || !(ops > 0)) continue;
    for (const path of paths) {
      const pathOps = row.metrics[OPS_PREFIX + path];
      const pathCycles = row.metrics[PATH_CYCLES_PREFIX + path];
      if (pathOps === undefined || pathCycles === undefined || !(pathOps > 0)) continue;
      segments.push({ point, path, cycles: (pathOps * pathCycles) / ops });
    }
  }

  const title = 'Cycles per operation by path';
  const spec = {
    ...frame(title),
    name: 'bars',
    data: { values: segments },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'point', type: 'nominal', sort: pointLabels, scale: { domain: pointLabels }, title: 'sweep point', axis: { labelAngle: -40, labelOverlap: 'greedy' } },
      y: { field: 'cycles', type: 'quantitative', stack: 'zero', title: 'cycles per operation' },
      color: colorChannel('path', 'path', paths),
    },
  };
  return { title, spec };
}

interface XYRequest {
  title: string;
  /** An axis of the spec, or a metric. */
  x: { name: string; kind: 'axis' | 'metric' };
  /** A metric. */
  y: string;
  /** Axes whose values make a point's colour (one axis: its values; more: `a=1, b=x` labels); none for one colour. */
  colorAxes: readonly string[];
  /** Further axes that split one colour into separate lines or bars. */
  detailAxes: readonly string[];
}

/**
 * x against y. A numeric axis on x draws a line with points per series, a metric on x a scatter,
 * a categorical axis bars side by side, one per series. Rows without the metric are left out.
 */
function xySpec(rows: readonly SweepRow[], req: XYRequest): VlSpec {
  const xNumeric = req.x.kind === 'metric' || isNumericAxis(rows, req.x.name);
  const [colorAxis] = req.colorAxes;
  const oneColorAxis = req.colorAxes.length === 1 ? colorAxis : undefined;
  const data: { x: AxisValue; y: number; color: string; series: string }[] = [];
  for (const row of rows) {
    const y = row.metrics[req.y];
    const xRaw = req.x.kind === 'axis' ? row.params[req.x.name] : row.metrics[req.x.name];
    if (y === undefined || !Number.isFinite(y) || xRaw === undefined) continue;
    if (typeof xRaw === 'number' && !Number.isFinite(xRaw)) continue;
    const color = oneColorAxis !== undefined ? String(row.params[oneColorAxis]) : label(row, req.colorAxes);
    const series = label(row, [...req.colorAxes, ...req.detailAxes]);
    data.push({ x: xNumeric ? xRaw : String(xRaw), y, color, series });
  }

  const colors = distinctInOrder(data.map((d) => d.color));
  const colorTitle = oneColorAxis !== undefined ? axisTitle(oneColorAxis) : 'configuration';
  const color = req.colorAxes.length > 0
    ? { color: colorChannel('color', colorTitle, colors) }
    : {};
  const xTitle = req.x.kind === 'axis' ? axisTitle(req.x.name) : metricTitle(req.x.name);
  const y = { field: 'y', type: 'quantitative', title: metricTitle(req.y) };
  const base = { ...frame(req.title), data: { values: data } };

  if (req.x.kind === 'axis' && xNumeric) {
    const x = sweptX(axisValues(rows, req.x.name) as number[], xTitle, true);
    return {
      ...base,
      layer: [
        { name: 'series', mark: { type: 'line' }, encoding: { x, y, ...color, detail: { field: 'series', type: 'nominal' } } },
        { name: 'points', mark: POINT_MARK, encoding: { x, y, ...color } },
      ],
    };
  }
  if (xNumeric) {
    const x = { field: 'x', type: 'quantitative', title: xTitle, scale: { zero: false, padding: 12 } };
    return { ...base, name: 'points', mark: POINT_MARK, encoding: { x, y, ...color } };
  }

  const xDomain = axisValues(rows, req.x.name).map(String);
  const x = { field: 'x', type: 'nominal', title: xTitle, sort: xDomain, scale: { domain: xDomain }, axis: { labelAngle: 0 } };
  // Bars side by side within an x value: one per colour, or per series when axes split colours.
  const offsetField = req.detailAxes.length > 0 ? 'series' : 'color';
  const offsets = distinctInOrder(data.map((d) => (offsetField === 'series' ? d.series : d.color)));
  const offset = offsets.length > 1
    ? { xOffset: { field: offsetField, type: 'nominal', title: offsetField === 'series' ? 'series' : colorTitle, sort: offsets, scale: { domain: offsets } } }
    : {};
  return { ...base, name: 'bars', mark: { type: 'bar' }, encoding: { x, y, ...color, ...offset } };
}

/**
 * The charts every sweep writes: `speedup-vs-cpus` when cpus is swept over two or more values,
 * `cycles-by-path` when the rows have paths, and `cycles_per_op-vs-<axis>` for every other axis
 * with more than one value, coloured by the remaining varying axes.
 */
export async function defaultCharts(rows: SweepRow[], axes: string[]): Promise<SweepChart[]> {
  const specs: { name: string; title: string; spec: VlSpec }[] = [];
  if (axes.includes('cpus')) {
    const speedup = speedupSpec(rows, axes);
    if (speedup) specs.push({ name: 'speedup-vs-cpus', ...speedup });
  }
  const byPath = cyclesByPathSpec(rows, axes);
  if (byPath) specs.push({ name: 'cycles-by-path', ...byPath });

  const varying = varyingAxes(rows, axes);
  const names = new Set(specs.map((s) => s.name));
  for (const axis of varying) {
    if (axis === 'cpus') continue;
    let name = `cycles_per_op-vs-${fileSafe(axis)}`;
    for (let n = 2; names.has(name); n++) name = `cycles_per_op-vs-${fileSafe(axis)}-${n}`;
    names.add(name);
    const others = varying.filter((a) => a !== axis);
    const title = `Cycles per operation vs ${axis}`;
    const spec = xySpec(rows, { title, x: { name: axis, kind: 'axis' }, y: 'cycles_per_op', colorAxes: others, detailAxes: [] });
    specs.push({ name, title, spec });
  }

  const charts: SweepChart[] = [];
  for (const { name, title, spec } of specs) charts.push({ name, title, svg: await render(spec) });
  return charts;
}

/**
 * Any axis or metric on x against any metric on y. With an axis on x, the other varying axes
 * split the points into series: coloured by `color` when it is given (the rest split lines of
 * one colour), else coloured by all of them. Names that are in neither the axes nor the rows'
 * metrics are a UserError naming the option and listing what there is.
 */
export async function chart(rows: SweepRow[], axes: string[], opts: { x: string; y: string; color?: string }): Promise<string> {
  if (rows.length === 0) throw new UserError('the sweep has no points to chart');
  const metrics = metricNames(rows);
  const metricList = metrics.join(', ');
  const axisList = axes.length > 0 ? axes.join(', ') : 'none';

  let xKind: 'axis' | 'metric';
  if (axes.includes(opts.x)) xKind = 'axis';
  else if (metrics.includes(opts.x)) xKind = 'metric';
  else throw new UserError(`--x: no axis or metric "${opts.x}" in the sweep (axes: ${axisList}; metrics: ${metricList})`);
  if (!metrics.includes(opts.y)) throw new UserError(`--y: no metric "${opts.y}" in the sweep (metrics: ${metricList})`);
  if (opts.color !== undefined && !axes.includes(opts.color)) {
    throw new UserError(`--color: no axis "${opts.color}" in the sweep (axes: ${axisList})`);
  }

  const others = xKind === 'axis' ? varyingAxes(rows, axes).filter((a) => a !== opts.x && a !== opts.color) : [];
  const colorAxes = opts.color !== undefined ? [opts.color] : others;
  const detailAxes = opts.color !== undefined ? others : [];
  const xTitle = xKind === 'axis' ? axisTitle(opts.x) : metricTitle(opts.x);
  const title = sentenceCase(`${metricTitle(opts.y)} vs ${xTitle}`);
  return render(xySpec(rows, {
    title, x: { name: opts.x, kind: xKind }, y: opts.y, colorAxes, detailAxes,
  }));
}
