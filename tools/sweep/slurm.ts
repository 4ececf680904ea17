// `kmemu sweep slurm SPEC --out DIR`: a sweep across machines as a Slurm job array. One array
// task per shard runs `kmemu sweep SPEC --shard K/N --out DIR/shards/K`; with --wait the
// command polls the queue until the array is done and merges the shards into DIR (as `kmemu
// sweep merge DIR/shards/* --out DIR` would). DIR must be on a file system every node sees.
//
// The script is written to DIR/slurm/sweep.sbatch (its tasks' output to DIR/slurm/), submitted
// with `sbatch --parsable`; the queue is read with `squeue -h -j JOB`. The sbatch and squeue
// commands are found on PATH; SLURM_CONF in the environment picks the cluster, as for any
// Slurm client.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, UserError } from '../../emu/index.js';
import { writeFileAtomic } from '../../traces/index.js';
import { mergeSweeps, planSweep, type SweepIo } from './run.js';
import type { SweepRow } from './point.js';

export interface SlurmOptions {
  out?: string;
  tasks?: string;
  partition?: string;
  time?: string;
  wait?: boolean;
  /** Seconds between polls of the queue with --wait (tests use less). */
  poll?: number;
}

function parseTasks(text: string | undefined, points: number): number {
  if (text === undefined) return Math.min(points, 16);
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1) throw new UsageError(`--tasks: expected a number of array tasks from 1, got "${text}"`);
  return Math.min(Number(text), points);
}

/** A Slurm option value on an #SBATCH line: no spaces or shell characters. */
function slurmWord(flag: string, v: string): string {
  if (!/^[A-Za-z0-9_.:,@+-]+$/.test(v)) throw new UsageError(`${flag}: expected a Slurm value without spaces or quotes, got "${v}"`);
  return v;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The sbatch script of a sweep of `tasks` shards. */
export function sbatchScript(o: { name: string; spec: string; out: string; tasks: number; partition?: string | undefined; time?: string | undefined }): string {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const lines = [
    '#!/bin/sh',
    `# kmemu sweep ${o.name}: ${o.tasks} shard${o.tasks === 1 ? '' : 's'}, one per array task (written by kmemu sweep slurm).`,
    `#SBATCH --job-name=kmemu-${slurmWord('name', o.name)}`,
    `#SBATCH --array=0-${o.tasks - 1}`,
    '#SBATCH --ntasks=1',
    '#SBATCH --cpus-per-task=1',
    `#SBATCH --output=${join(o.out, 'slurm', '%A_%a.out')}`,
  ];
  if (o.partition !== undefined) lines.push(`#SBATCH --partition=${slurmWord('--partition', o.partition)}`);
  if (o.time !== undefined) lines.push(`#SBATCH --time=${slurmWord('--time', o.time)}`);
  lines.push(
    'set -eu',
    `exec ${quote(process.execPath)} ${quote(cli)} sweep ${quote(o.spec)} --jobs 1 --shard "$SLURM_ARRAY_TASK_ID/${o.tasks}" --out ${quote(join(o.out, 'shards'))}/"$SLURM_ARRAY_TASK_ID"`,
    '',
  );
  return lines.join('\n');
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new UserError(`sweep slurm: ${cmd} not found (is a Slurm client installed and on PATH?)`);
    throw new UserError(`sweep slurm: ${cmd} ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim().split('\n')[0]}`);
  }
}

export async function sweepSlurm(specFile: string, opts: SlurmOptions, io: SweepIo): Promise<{ jobId: string; rows?: SweepRow[] | undefined }> {
  if (opts.out === undefined) throw new UsageError('sweep slurm: --out DIR is required');
  const { doc } = planSweep(specFile);
  const out = resolve(opts.out);
  const tasks = parseTasks(opts.tasks, doc.points.length);
  mkdirSync(join(out, 'slurm'), { recursive: true });
  const script = join(out, 'slurm', 'sweep.sbatch');
  writeFileAtomic(script, sbatchScript({ name: doc.name, spec: resolve(specFile), out, tasks, partition: opts.partition, time: opts.time }));
  const jobId = run('sbatch', ['--parsable', script]).trim().split(';')[0]!;
  if (!/^\d+$/.test(jobId)) throw new UserError(`sweep slurm: sbatch printed "${jobId}", not a job id`);
  io.err(`kmemu: sweep ${doc.name}: submitted job array ${jobId} (${tasks} task${tasks === 1 ? '' : 's'}, ${doc.points.length} points); script ${script}\n`);
  if (opts.wait !== true) {
    io.out(`${jobId}\nwhen it is done: kmemu sweep merge ${join(out, 'shards')}/* --out ${out}\n`);
    return { jobId };
  }
  const pollMs = (opts.poll ?? 2) * 1000;
  // A finished job leaves squeue's list; once slurmctld has forgotten it (MinJobAge), squeue
  // says "Invalid job id specified" and exits 1 instead: gone either way.
  for (;;) {
    let queued: string;
    try {
      queued = run('squeue', ['-h', '-j', jobId, '-o', '%i']).trim();
    } catch (err) {
      if (err instanceof UserError && /Invalid job id/i.test(err.message)) break;
      throw err;
    }
    if (queued === '') break;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const shards = Array.from({ length: tasks }, (_, k) => join(out, 'shards', String(k)));
  const absent = shards.filter((d) => !existsSync(join(d, 'sweep.json')));
  if (absent.length > 0) throw new UserError(`sweep slurm: job ${jobId} left ${absent.length} shard${absent.length === 1 ? '' : 's'} without results (${absent.join(', ')}); see ${join(out, 'slurm')}/${jobId}_*.out`);
  const rows = await mergeSweeps(shards, out, io);
  return { jobId, rows };
}
