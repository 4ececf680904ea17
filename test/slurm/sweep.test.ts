// kmemu sweep slurm on a real single-node Slurm: a 6-point sweep as a 3-task job array, waited
// for and merged, gives the same results, charts and point reports, byte for byte, as the same
// sweep run locally on the worker pool.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSlurm, startCluster, type SlurmCluster } from './cluster.js';

const slurm = ensureSlurm();
if (!slurm.ok) process.stderr.write(`\n*** SKIPPED: the kmemu sweep slurm test cannot run: ${slurm.why} ***\n\n`);

const cli = resolve('dist/tools/cli.js');

/** Every file under dir (relative paths) with its bytes, but the Slurm job's own files. */
function tree(dir: string, sub = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
    const rel = join(sub, e.name);
    if (rel === 'slurm' || rel === 'shards') continue;
    if (e.isDirectory()) Object.assign(out, tree(dir, rel));
    else out[rel] = readFileSync(join(dir, rel), 'utf8');
  }
  return out;
}

describe.skipIf(!slurm.ok)('kmemu sweep slurm', () => {
  let cluster: SlurmCluster | undefined;
  let work = '';

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'kmemu-sweep-slurm-'));
    cluster = await startCluster();
  });

  afterAll(async () => {
    await cluster?.stop();
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('a 3-task job array, waited for and merged, equals the local run byte for byte', () => {
    const spec = join(work, 'pairs.json');
    writeFileSync(spec, JSON.stringify({
      name: 'slurm-pairs',
      base: { generator: { workload: 'pairs', events: 2000, seed: 3 }, machine: 'amd64-host', allocator: 'uma' },
      axes: { cpus: [1, 2, 4], pcpu: [true, false] },
    }));
    const t0 = performance.now();
    const out = execFileSync(process.execPath, [cli, 'sweep', 'slurm', spec, '--out', join(work, 'cluster'), '--tasks', '3', '--wait'], {
      env: cluster!.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
    console.log(`kmemu sweep slurm --tasks 3 --wait: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(out).toMatch(/^slurm-pairs: 6 points in .*cluster: results\.jsonl, results\.csv, charts\//);
    expect(readdirSync(join(work, 'cluster', 'shards')).sort()).toEqual(['0', '1', '2']);
    execFileSync(process.execPath, [cli, 'sweep', spec, '--out', join(work, 'local'), '--jobs', '2'], { stdio: 'ignore' });
    const a = tree(join(work, 'cluster'));
    const b = tree(join(work, 'local'));
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const f of Object.keys(b)) expect(a[f], f).toBe(b[f]);
    expect(Object.keys(a).filter((f) => f.startsWith('points/'))).toHaveLength(6);
  });
});
