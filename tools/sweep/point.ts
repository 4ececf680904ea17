// One point of a sweep: the `kmemu replay` command line it is, run in-process (on a worker
// thread of the pool, or in the main thread), and the headline figures of its report.
//
// A point's report is exactly what `kmemu replay TRACE ARGS --json` prints for the command
// line in its `command` field: the worker calls the same runReplay with the same options.

import type { ReplayReport } from '../../traces/index.js';
import type { ReplayCliOptions } from '../replay.js';
import { mean, pathKind, perOp } from '../report.js';
import { genOptions, type PointRun } from './spec.js';
import { optionFlag } from '../../traces/index.js';
import type { SweepRow } from './plot.js';

export type { SweepRow };


export const SWEEP_POINT_SCHEMA = 'kmemu.sweep-point/1';

/** What a worker runs: a trace file and the replay options (and the same as argv, for the record). */
export interface PointTask {
  trace: string;
  opts: ReplayCliOptions;
}

/** The generator's command line, as `kmemu trace gen` takes it (without `-o FILE`). */
export function traceGenArgs(g: Extract<PointRun['trace'], { generator: unknown }>['generator']): string[] {
  const o = genOptions(g) as unknown as Record<string, number | string>;
  const args = [g.workload];
  for (const key of Object.keys(o).sort()) args.push(optionFlag(key), String(o[key]));
  return args;
}

/**
 * The replay options of a point and the same as `kmemu replay` arguments. `machine` is what
 * --machine gets: the preset or file as given, or the file the sweep wrote with the overrides.
 */
export function replayArgs(run: PointRun, machine: string): { opts: ReplayCliOptions; args: string[] } {
  const opts: ReplayCliOptions = {
    machine,
    cpus: String(run.cpus),
    allocator: run.allocator,
    touch: String(run.touch),
    sysctl: Object.entries(run.sysctl).map(([k, v]) => `${k}=${v}`),
    tunable: Object.entries(run.tunables).map(([k, v]) => `${k}=${v}`),
    zones: '8',
    json: true,
  };
  const args = ['--machine', machine, '--cpus', String(run.cpus), '--allocator', run.allocator, '--touch', String(run.touch)];
  if (!run.pcpu) {
    opts.locked = true;
    args.push('--locked');
  }
  if (run.aligned) {
    opts.aligned = true;
    args.push('--aligned');
  }
  if (!run.packetZone) {
    opts.packetZone = false;
    args.push('--no-packet-zone');
  }
  if (run.bucketSize !== undefined) {
    opts.bucketSize = String(run.bucketSize);
    args.push('--bucket-size', String(run.bucketSize));
  }
  if (run.cacheLock !== undefined) {
    opts.cacheLock = run.cacheLock;
    args.push('--cache-lock', run.cacheLock);
  }
  if (run.autoTune === true) {
    opts.autoTune = true;
    args.push('--auto-tune');
  }
  if (run.invariants === true) {
    opts.invariants = true;
    args.push('--invariants');
  }
  if (run.warmup > 0) {
    opts.warmup = String(run.warmup);
    args.push('--warmup', String(run.warmup));
  }
  for (const s of opts.sysctl) args.push('--sysctl', s);
  for (const t of opts.tunable ?? []) args.push('--tunable', t);
  args.push('--json');
  return { opts, args };
}

/** Runs a point's replay in this thread and returns its report as `kmemu replay --json` prints it. */
export async function runPointTask(task: PointTask): Promise<string> {
  const { runReplay } = await import('../replay.js');
  let text = '';
  await runReplay(task.trace, task.opts, { out: (t) => (text += t), err: () => undefined, progress: false });
  return text;
}

const round = (n: number) => Math.round(n * 1e4) / 1e4;

/** The headline figures of a point's report (results.csv's columns; SweepRow.metrics). */
export function pointMetrics(r: ReplayReport): Record<string, number> {
  const ops = r.totals.allocatorOps;
  const f = perOp(r);
  const m: Record<string, number> = {
    cpus: r.run.machine.config.cpus,
    events: r.totals.events,
    allocator_ops: ops,
    cycles_per_op: round(f.cycles),
    alloc_cycles_per_op: round(mean(r.paths, 'alloc').mean),
    free_cycles_per_op: round(mean(r.paths, 'free').mean),
    makespan_cycles: r.totals.makespanCycles,
    throughput_ops_per_mcycle: round((ops * 1e6) / Math.max(1, r.totals.makespanCycles)),
    l1d_misses_per_op: round(f.l1d),
    llc_misses_per_op: round(f.llc),
    tlb_misses_per_op: round(f.tlb),
    c2c_per_op: round(f.c2c),
    spin_cycles: r.cpus.reduce((n, c) => n + c.spinCycles, 0),
  };
  for (const p of [...r.paths].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    if (pathKind(p.path) === undefined && p.ops === 0) continue;
    m[`ops.${p.path}`] = p.ops;
    m[`cycles_per_op.${p.path}`] = round(p.cycles.mean);
  }
  return m;
}

/** A point file's row for results.jsonl. */
export function pointRow(doc: { index: number; id: string; params: SweepRow['params']; report: ReplayReport }): SweepRow {
  return { index: doc.index, id: doc.id, params: doc.params, metrics: pointMetrics(doc.report) };
}
