// The single-node Slurm harness against a real Slurm: the cluster comes up, an 8-task job array
// runs on it, every task leaves its file, and stop() leaves no daemon behind. Where Slurm cannot
// run here (not root, no apt-get, ...) the tests are skipped with a banner saying why.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSlurm, sbatchWait, startCluster, type SlurmCluster } from './cluster.js';

const slurm = ensureSlurm();
if (!slurm.ok) process.stderr.write(`\n*** SKIPPED: Slurm tests cannot run: ${slurm.why} ***\n\n`);

/** Whether process `pid` exists (a zombie counts). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

describe.skipIf(!slurm.ok)('a single-node Slurm cluster', () => {
  let cluster: SlurmCluster | undefined;
  let work = '';

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'kmemu-slurm-test-'));
    const t0 = performance.now();
    cluster = await startCluster();
    console.log(`slurm: munged, slurmctld and slurmd up, node idle, in ${((performance.now() - t0) / 1000).toFixed(2)} s (${cluster.dir})`);
  });

  afterAll(async () => {
    if (cluster !== undefined) {
      await cluster.stop();
      for (const [name, pid] of Object.entries(cluster.pids)) expect(alive(pid), `${name} (pid ${pid}) is still running`).toBe(false);
    }
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('startCluster() brings the node up idle with its three daemons running', () => {
    const c = cluster!;
    expect(alive(c.pids.munged)).toBe(true);
    expect(alive(c.pids.slurmctld)).toBe(true);
    expect(alive(c.pids.slurmd)).toBe(true);
    expect(c.env['SLURM_CONF']).toBe(c.conf);
  });

  it('sbatchWait() returns when all 8 tasks of a job array have run, each leaving its file', async () => {
    const c = cluster!;
    const script = join(work, 'array.sh');
    writeFileSync(script, [
      '#!/bin/sh',
      '#SBATCH --array=0-7',
      '#SBATCH --job-name=kmemu-array-test',
      `#SBATCH --output=${work}/slurm-%A_%a.out`,
      `echo "$SLURM_ARRAY_TASK_ID $(hostname)" > ${work}/task-$SLURM_ARRAY_TASK_ID.txt`,
      '',
    ].join('\n'));
    const t0 = performance.now();
    const { jobId, tasks } = await sbatchWait(c, script, 60_000);
    console.log(`slurm: job array ${jobId} (8 tasks) left the queue ${((performance.now() - t0) / 1000).toFixed(2)} s after sbatch`);

    expect(tasks.map((t) => [t.taskId, t.state, t.exitCode])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i, 'COMPLETED', '0:0']));
    for (let i = 0; i < 8; i++) {
      expect(readFileSync(join(work, `task-${i}.txt`), 'utf8')).toBe(`${i} ${hostname()}\n`);
    }
  });

  it('stop() ends munged, slurmctld and slurmd', async () => {
    const c = cluster!;
    const t0 = performance.now();
    await c.stop();
    console.log(`slurm: cluster stopped in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    for (const [name, pid] of Object.entries(c.pids)) expect(alive(pid), `${name} (pid ${pid}) is still running`).toBe(false);
  });
});
