// `kmemu sweep`: runs the points of a sweep spec on a worker pool and keeps the results in a
// directory, resumable; `sweep status`, `sweep merge`.
//
// DIR holds:
//   sweep.json          the spec and its points (index, id, params), written first;
//   points/ID.json      one report per point (kmemu.sweep-point/1: the point, its `kmemu replay`
//                       command line, run in DIR, and that command's JSON report), written when
//                       it finishes;
//   traces/, machines/  the generated traces and the machine files of points with overrides;
//   results.jsonl       every point's row (params and headline figures), in point order;
//   results.csv         the same as a table (index, id, the axes, the figures);
//   charts/*.svg        the default charts (tools/sweep/plot.ts).
// Every file is complete or absent (writeFileAtomic), so a sweep interrupted at any moment
// leaves only whole point files, and rerunning it runs only the points without one. The
// results and charts are written from the point files in point order once every point is
// there, so they are byte-identical whatever --jobs is and in whatever order points finished.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Tinypool } from 'tinypool';
import { UsageError, UserError, defaultPresetName } from '../../emu/index.js';
import { KMEMU_VERSION, writeFileAtomic, type ReplayReport } from '../../traces/index.js';
import { formatInt } from '../format.js';
import { startProgress } from '../progress.js';
import { runTraceGen } from '../trace-gen.js';
import { SWEEP_POINT_SCHEMA, pointRow, replayArgs, traceGenArgs, type PointTask, type SweepRow } from './point.js';
import { canonical, expandPoints, loadSweepSpec, sha256, type SweepPoint, type SweepSpec } from './spec.js';
import type { PointOutcome } from './worker.js';

export const SWEEP_SCHEMA = 'kmemu.sweep/1';

export interface SweepIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Show a progress bar on stderr when it is a terminal (the CLI); tests pass false. */
  progress?: boolean;
}

export interface SweepOptions {
  out?: string;
  jobs?: string;
  shard?: string;
  dryRun?: boolean;
}

/** sweep.json: the spec and the list of its points. */
export interface SweepDoc {
  schema: typeof SWEEP_SCHEMA;
  kmemu: string;
  name: string;
  spec: SweepSpec;
  axes: string[];
  points: { index: number; id: string; params: SweepRow['params'] }[];
}

/** A point file. */
export interface PointDoc {
  schema: typeof SWEEP_POINT_SCHEMA;
  sweep: string;
  index: number;
  id: string;
  params: SweepRow['params'];
  command: string;
  report: ReplayReport;
}

function parseJobs(text: string | undefined): number {
  if (text === undefined) return availableParallelism();
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1) throw new UsageError(`--jobs: expected a number of workers from 1, got "${text}"`);
  return Number(text);
}

/** --shard K/N: 0 <= K < N. */
export function parseShard(text: string | undefined): { k: number; n: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(text);
  if (m === null || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(`--shard: expected K/N with 0 <= K < N, got "${text}"`);
  return { k: Number(m[1]), n: Number(m[2]) };
}

const shas = new Map<string, string>();
function fileSha(file: string): string {
  let s = shas.get(file);
  if (s === undefined) {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (err) {
      throw new UserError(`${file}: cannot read the trace: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    s = sha256(data);
    shas.set(file, s);
  }
  return s;
}

/** The spec's points and sweep.json's document. */
export function planSweep(specFile: string): { doc: SweepDoc; points: SweepPoint[] } {
  const { spec, dir } = loadSweepSpec(specFile);
  const points = expandPoints(spec, specFile, dir, fileSha);
  const ids = new Set<string>();
  for (const p of points) {
    if (ids.has(p.id)) {
      const first = points.find((q) => q.id === p.id)!;
      throw new UserError(`${specFile}: points ${first.index} and ${p.index} are the same run (an axis that changes nothing for them?)`);
    }
    ids.add(p.id);
  }
  const name = spec.name ?? specFile.replace(/^.*\//, '').replace(/\.(json|ya?ml)$/i, '');
  const doc: SweepDoc = {
    schema: SWEEP_SCHEMA,
    kmemu: KMEMU_VERSION,
    name,
    spec,
    axes: Object.keys(spec.axes),
    points: points.map((p) => ({ index: p.index, id: p.id, params: p.params })),
  };
  return { doc, points };
}

function json(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The point file of `id` in DIR when it is complete (it parses and is that point's), else undefined. */
function donePoint(dir: string, id: string): PointDoc | undefined {
  const d = readJson<PointDoc>(join(dir, 'points', `${id}.json`));
  return d !== undefined && d.schema === SWEEP_POINT_SCHEMA && d.id === id && d.report !== undefined ? d : undefined;
}

/**
 * Checks that DIR is empty, or holds this very sweep (resume); writes sweep.json. A sweep killed
 * outright (SIGKILL, a lost node) can leave the temporary file of a point it was writing; those
 * are removed here (a point is complete only once renamed to ID.json).
 */
function claimDir(dir: string, doc: SweepDoc): void {
  mkdirSync(join(dir, 'points'), { recursive: true });
  for (const f of readdirSync(join(dir, 'points'))) if (/^\..*\.kmemu-tmp-\d+-\d+$/.test(f)) rmSync(join(dir, 'points', f), { force: true });
  const file = join(dir, 'sweep.json');
  const old = existsSync(file) ? readJson<SweepDoc>(file) : undefined;
  if (existsSync(file) && old === undefined) throw new UserError(`${file}: not a sweep document; give another --out`);
  if (old !== undefined && canonical(old.points) !== canonical(doc.points)) {
    throw new UserError(`${dir} holds another sweep ("${old.name}", ${old.points.length} points); give another --out`);
  }
  if (old === undefined) writeFileAtomic(file, json(doc));
}

/**
 * The trace a point replays: its file, or traces/HASH.trace.gz in DIR, generated here once
 * (`kmemu trace gen` with the point's generator arguments), named relative to DIR.
 */
async function pointTrace(dir: string, p: SweepPoint): Promise<{ path: string; name: string }> {
  if ('file' in p.run.trace) return { path: p.run.trace.file, name: p.run.trace.file };
  const args = traceGenArgs(p.run.trace.generator);
  const name = join('traces', `${sha256(args.join('\0')).slice(0, 16)}.trace.gz`);
  if (!existsSync(join(dir, name))) {
    mkdirSync(join(dir, 'traces'), { recursive: true });
    await runTraceGen([...args, '-o', join(dir, name)], { stdout: { write: () => true } as unknown as NodeJS.WriteStream });
  }
  return { path: join(dir, name), name };
}

/**
 * --machine of a point: as given (a preset, or a file made absolute), or machines/HASH.json in
 * DIR with the point's effective config, named relative to DIR as the point's command is.
 */
function pointMachine(dir: string, specDir: string, p: SweepPoint): { path: string; name: string } {
  const m = p.run.machine;
  if (Object.keys(m.overrides).length === 0) {
    const path = /\.json$/i.test(m.given) ? resolve(specDir, m.given) : m.given;
    return { path, name: path };
  }
  const { cpus: _cpus, ...config } = m.config;
  const text = json({ base: defaultPresetName, ...config });
  const name = join('machines', `${sha256(text).slice(0, 16)}.json`);
  if (!existsSync(join(dir, name))) {
    mkdirSync(join(dir, 'machines'), { recursive: true });
    writeFileAtomic(join(dir, name), text);
  }
  return { path: join(dir, name), name };
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs a sweep (or one shard of it); returns the rows when every point is complete. */
export async function runSweep(specFile: string, opts: SweepOptions, io: SweepIo): Promise<SweepRow[] | undefined> {
  const jobs = parseJobs(opts.jobs);
  const shard = parseShard(opts.shard);
  const { doc, points } = planSweep(specFile);
  if (opts.dryRun === true) {
    io.out(formatPoints(doc, shard));
    return undefined;
  }
  if (opts.out === undefined) throw new UsageError('sweep: --out DIR is required (where the results go), or --dry-run');
  const dir = opts.out;
  const specDir = resolve(specFile, '..');
  claimDir(dir, doc);
  const mine = points.filter((p) => shard === undefined || p.index % shard.n === shard.k);
  const todo = mine.filter((p) => donePoint(dir, p.id) === undefined);
  if (todo.length < mine.length) io.err(`kmemu: sweep: ${mine.length - todo.length} of ${mine.length} points already complete in ${dir}; running the other ${todo.length}\n`);
  // Traces and machine files first, in the main thread, so the workers only read them.
  const tasks: { p: SweepPoint; task: PointTask; command: string }[] = [];
  for (const p of todo) {
    const trace = await pointTrace(dir, p);
    const machine = pointMachine(dir, specDir, p);
    const { opts: ropts, args } = replayArgs(p.run, machine.name);
    ropts.machine = machine.path;
    if (machine.name !== machine.path) ropts.machineName = machine.name;
    tasks.push({ p, task: { trace: trace.path, opts: ropts }, command: ['kmemu', 'replay', trace.name, ...args].map(shellWord).join(' ') });
  }
  if (tasks.length > 0) await runTasks(dir, doc, tasks, jobs, io);
  const all = points.every((p) => donePoint(dir, p.id) !== undefined);
  if (!all) {
    if (shard !== undefined) io.err(`kmemu: sweep: shard ${shard.k}/${shard.n} complete (${mine.length} points); merge the shards with kmemu sweep merge\n`);
    return undefined;
  }
  return writeResults(dir, doc, io);
}

async function runTasks(dir: string, doc: SweepDoc, tasks: { p: SweepPoint; task: PointTask; command: string }[], jobs: number, io: SweepIo): Promise<void> {
  const pool = new Tinypool({ filename: new URL('./worker.js', import.meta.url).href, minThreads: Math.min(jobs, tasks.length), maxThreads: Math.min(jobs, tasks.length), isolateWorkers: false });
  const bar = io.progress === true ? startProgress({ label: `sweep ${doc.name}`, total: tasks.length, unit: 'items' }) : undefined;
  const t0 = performance.now();
  let done = 0;
  const failures: string[] = [];
  let internal: Error | undefined;
  try {
    await Promise.all(
      tasks.map(async ({ p, task, command }) => {
        const outcome = (await pool.run(task)) as PointOutcome;
        done++;
        bar?.update(done);
        const what = `point ${p.index} (${Object.entries(p.params).map(([a, v]) => `${a}=${String(v)}`).join(', ') || 'the base'})`;
        if ('error' in outcome) {
          if (outcome.user) failures.push(`${what}: ${outcome.error}`);
          else internal ??= Object.assign(new Error(`${what}: ${outcome.error}`), { stack: outcome.stack });
          return;
        }
        const point: PointDoc = { schema: SWEEP_POINT_SCHEMA, sweep: doc.name, index: p.index, id: p.id, params: p.params, command, report: JSON.parse(outcome.report) as ReplayReport };
        writeFileAtomic(join(dir, 'points', `${p.id}.json`), json(point));
      }),
    );
  } finally {
    bar?.stop();
    await pool.destroy();
  }
  if (internal !== undefined) throw internal;
  if (failures.length > 0) throw new UserError(`sweep: ${failures.length} point${failures.length === 1 ? '' : 's'} failed, the first ${failures[0]}`);
  io.err(`kmemu: sweep ${doc.name}: ${tasks.length} point${tasks.length === 1 ? '' : 's'} in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${Math.min(jobs, tasks.length)} worker${Math.min(jobs, tasks.length) === 1 ? '' : 's'}\n`);
}

/** results.jsonl, results.csv and the charts, from the point files in point order. */
async function writeResults(dir: string, doc: SweepDoc, io: SweepIo): Promise<SweepRow[]> {
  const rows = doc.points.map((p) => pointRow(donePoint(dir, p.id)!));
  writeFileAtomic(join(dir, 'results.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileAtomic(join(dir, 'results.csv'), csv(rows, doc.axes));
  const { defaultCharts } = await import('./plot.js');
  const charts = await defaultCharts(rows, doc.axes);
  if (charts.length > 0) mkdirSync(join(dir, 'charts'), { recursive: true });
  for (const c of charts) writeFileAtomic(join(dir, 'charts', `${c.name}.svg`), c.svg);
  io.out(`${doc.name}: ${rows.length} points in ${dir}: results.jsonl, results.csv${charts.length > 0 ? `, charts/ (${charts.map((c) => `${c.name}.svg`).join(', ')})` : ''}\n`);
  return rows;
}

/** A CSV field: as is, or quoted when it holds a comma, a quote or a line break (RFC 4180). */
function field(v: string | number | boolean | undefined): string {
  if (v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The rows as a table: index, id, one column per axis, then the figures (per-path ones last, sorted). */
export function csv(rows: readonly SweepRow[], axes: readonly string[]): string {
  const headline = ['cpus', 'events', 'allocator_ops', 'cycles_per_op', 'alloc_cycles_per_op', 'free_cycles_per_op', 'makespan_cycles', 'throughput_ops_per_mcycle', 'l1d_misses_per_op', 'llc_misses_per_op', 'tlb_misses_per_op', 'c2c_per_op', 'spin_cycles'];
  const perPath = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)).filter((k) => !headline.includes(k)))].sort();
  // A figure that is also an axis (cpus) is that axis's column already.
  const cols = [...headline, ...perPath].filter((c) => !axes.includes(c));
  const lines = [['index', 'id', ...axes, ...cols].map(field).join(',')];
  for (const r of rows) lines.push([r.index, r.id, ...axes.map((a) => r.params[a]), ...cols.map((c) => r.metrics[c])].map(field).join(','));
  return lines.join('\n') + '\n';
}

function formatPoints(doc: SweepDoc, shard: { k: number; n: number } | undefined): string {
  const sel = doc.points.filter((p) => shard === undefined || p.index % shard.n === shard.k);
  const head = `${doc.name}: ${doc.points.length} point${doc.points.length === 1 ? '' : 's'}${shard === undefined ? '' : `, ${sel.length} in shard ${shard.k}/${shard.n}`} (${doc.spec.combine} of ${doc.axes.length === 0 ? 'no axes' : doc.axes.join(', ')})\n`;
  const cells = sel.map((p) => [String(p.index), p.id, ...doc.axes.map((a) => String(p.params[a]))]);
  const header = ['index', 'id', ...doc.axes];
  const width = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(width[i]!)).join('  ').trimEnd();
  return head + [header, ...cells].map(line).join('\n') + '\n';
}

const TABLE_METRICS = ['cycles_per_op', 'alloc_cycles_per_op', 'free_cycles_per_op', 'throughput_ops_per_mcycle', 'c2c_per_op', 'spin_cycles'];

/** `kmemu sweep table DIR`: the points with some figures, as aligned text. */
export function sweepTable(dir: string, metrics: readonly string[] | undefined, io: SweepIo): string {
  const doc = readSweepDoc(dir);
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) throw new UserError(`${dir}: no results.jsonl (is the sweep complete? kmemu sweep status ${dir})`);
  const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as SweepRow);
  // With a cpus axis, speedup: throughput over the same configuration's at its fewest CPUs.
  const speedup = new Map<number, number>();
  if (doc.axes.includes('cpus')) {
    const config = (r: SweepRow) => canonical(Object.fromEntries(doc.axes.filter((a) => a !== 'cpus').map((a) => [a, r.params[a]])));
    const base = new Map<string, SweepRow>();
    for (const r of rows) {
      const b = base.get(config(r));
      if (b === undefined || Number(r.params['cpus']) < Number(b.params['cpus'])) base.set(config(r), r);
    }
    for (const r of rows) speedup.set(r.index, r.metrics['throughput_ops_per_mcycle']! / base.get(config(r))!.metrics['throughput_ops_per_mcycle']!);
  }
  const cols = metrics ?? [...TABLE_METRICS, ...(speedup.size > 0 ? ['speedup'] : [])];
  const known = new Set([...rows.flatMap((r) => Object.keys(r.metrics)), ...(speedup.size > 0 ? ['speedup'] : [])]);
  for (const c of cols) if (!known.has(c)) throw new UsageError(`--metrics: no figure "${c}" in the sweep (figures: ${[...known].sort().join(', ')})`);
  const num = (n: number | undefined) => (n === undefined ? '-' : Number.isInteger(n) ? formatInt(n) : n.toFixed(n >= 100 ? 1 : 2));
  const header = ['index', ...doc.axes, ...cols];
  const cells = rows.map((r) => [String(r.index), ...doc.axes.map((a) => String(r.params[a])), ...cols.map((c) => (c === 'speedup' ? `${speedup.get(r.index)!.toFixed(2)}×` : num(r.metrics[c])))]);
  const width = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const left = 1 + doc.axes.length;
  const line = (c: string[]) => c.map((x, i) => (i > 0 && i < left ? x.padEnd(width[i]!) : x.padStart(width[i]!))).join('  ').trimEnd();
  const text = `${doc.name}: ${rows.length} points\n${[header, ...cells].map(line).join('\n')}\n`;
  io.out(text);
  return text;
}

/** `kmemu sweep status DIR`: how many points are complete, which are missing, whether results are written. */
export function sweepStatus(dir: string, io: SweepIo): { total: number; complete: number; missing: number[] } {
  const doc = readSweepDoc(dir);
  const missing = doc.points.filter((p) => donePoint(dir, p.id) === undefined).map((p) => p.index);
  const complete = doc.points.length - missing.length;
  const results = existsSync(join(dir, 'results.jsonl'));
  io.out(
    `${doc.name}: ${complete} of ${doc.points.length} points complete in ${dir}` +
      (missing.length === 0 ? (results ? '; results written\n' : '; results not written yet (rerun the sweep or merge)\n') : `; missing ${ranges(missing)}\n`),
  );
  return { total: doc.points.length, complete, missing };
}

function readSweepDoc(dir: string): SweepDoc {
  const file = join(dir, 'sweep.json');
  if (!existsSync(file)) throw new UserError(`${dir}: not a sweep directory (no sweep.json)`);
  const doc = readJson<SweepDoc>(file);
  if (doc?.schema !== SWEEP_SCHEMA) throw new UserError(`${file}: not a sweep document (schema ${SWEEP_SCHEMA})`);
  return doc;
}

/** 0 1 2 5 7 8 → "0-2, 5, 7-8". */
function ranges(ns: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(j === i ? String(ns[i]) : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

/**
 * `kmemu sweep merge DIR... --out DIR`: joins shards of one sweep. Every input must be the same
 * sweep; a point in two inputs or in none is an error naming it.
 */
export async function mergeSweeps(dirs: readonly string[], out: string, io: SweepIo): Promise<SweepRow[]> {
  if (dirs.length === 0) throw new UsageError('sweep merge: expected the shard directories');
  const docs = dirs.map((d) => ({ dir: d, doc: readSweepDoc(d) }));
  const first = docs[0]!;
  for (const d of docs.slice(1)) {
    if (canonical(d.doc.points) !== canonical(first.doc.points)) throw new UserError(`${d.dir} holds another sweep than ${first.dir} ("${d.doc.name}" against "${first.doc.name}")`);
  }
  const found = new Map<string, { dir: string; doc: PointDoc }>();
  for (const { dir } of docs) {
    const have = new Set(existsSync(join(dir, 'points')) ? readdirSync(join(dir, 'points')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : []);
    for (const p of first.doc.points) {
      if (!have.has(p.id)) continue;
      const d = donePoint(dir, p.id);
      if (d === undefined) continue;
      const seen = found.get(p.id);
      if (seen !== undefined) throw new UserError(`sweep merge: point ${p.index} (${p.id}) is in both ${seen.dir} and ${dir}`);
      found.set(p.id, { dir, doc: d });
    }
  }
  const missing = first.doc.points.filter((p) => !found.has(p.id)).map((p) => p.index);
  if (missing.length > 0) throw new UserError(`sweep merge: ${missing.length} of ${first.doc.points.length} points are in none of the inputs: ${ranges(missing)}`);
  claimDir(out, first.doc);
  for (const p of first.doc.points) {
    const target = join(out, 'points', `${p.id}.json`);
    const src = found.get(p.id)!;
    if (resolve(src.dir) !== resolve(out)) writeFileAtomic(target, json(src.doc));
  }
  // The generated traces and machine files the points' commands name (relative to DIR).
  for (const { dir } of docs) {
    if (resolve(dir) === resolve(out)) continue;
    for (const sub of ['traces', 'machines']) {
      if (!existsSync(join(dir, sub))) continue;
      for (const f of readdirSync(join(dir, sub))) {
        if (f.startsWith('.') || existsSync(join(out, sub, f))) continue;
        mkdirSync(join(out, sub), { recursive: true });
        writeFileAtomic(join(out, sub, f), readFileSync(join(dir, sub, f)));
      }
    }
  }
  io.err(`kmemu: sweep merge: ${first.doc.points.length} points from ${dirs.length} director${dirs.length === 1 ? 'y' : 'ies'} (${dirs.map((d) => relative('.', d) || '.').join(', ')})\n`);
  return writeResults(out, first.doc, io);
}
