// kmemu sweep, through the built CLI (its workers are the compiled tools/sweep/worker.js): spec
// checks with one line naming the field, the points of --dry-run, results that do not depend
// on --jobs, a point's report equal to its own `kmemu replay` command, an interrupted sweep that
// leaves only whole files and resumes to the same results, shards merged into the whole, and
// status.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const cli = resolve('dist/tools/cli.js');
const work = mkdtempSync(join(tmpdir(), 'kmemu-sweep-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function kmemu(args: string[], cwd = work): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function spec(name: string, body: object | string): string {
  const file = join(work, name);
  writeFileSync(file, name.endsWith('.json') ? JSON.stringify(body) : String(body));
  return file;
}

/** Every file under dir with its bytes (as latin1, so binary files compare exactly). */
function tree(dir: string, sub = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
    const rel = join(sub, e.name);
    if (e.isDirectory()) Object.assign(out, tree(dir, rel));
    else out[rel] = readFileSync(join(dir, rel), 'latin1');
  }
  return out;
}

const PAIRS = {
  name: 'pairs-small',
  base: { generator: { workload: 'pairs', events: 1000, seed: 2 }, machine: 'coursework', allocator: 'uma' },
  axes: { cpus: [1, 2], pcpu: [true, false] },
};

describe('kmemu sweep: the spec', () => {
  it.each([
    [{ base: { trace: 'x' }, axes: { cpus: [1, 0] } }, 'axes.cpus[1]: expected a number of CPUs, an integer from 1 to 64, got 0'],
    [{ base: { trace: 'x', generator: { workload: 'pairs' } } }, 'base: expected exactly one of "trace" (a trace file) and "generator" (a workload)'],
    [{ base: { generator: { workload: 'pairs' } }, axes: { 'l1d.size': ['32k'] } }, 'axes.l1d.size: not an axis (axes: cpus, allocator, pcpu, aligned, bucketSize, autoTune, cacheLock, invariants, packetZone, touch, warmup, machine, seed, machine.FIELD, sysctl.NAME, tunable.NAME, gen.OPTION)'],
    [{ base: { generator: { workload: 'pairs' }, bogus: 1 } }, 'base: unknown field "bogus"'],
    [{ base: { generator: { workload: 'pairs' }, allocator: 'slab' } }, 'base.allocator: expected "vmzone" or "uma"'],
    [{ base: { generator: { workload: 'pairs' } }, axes: { pcpu: ['no'] } }, 'axes.pcpu[0]: expected per-CPU caching: true or false, got "no"'],
    [{ base: { generator: { workload: 'pairs' } }, axes: { 'sysctl.vm.zone_burst': [0] } }, 'axes.sysctl.vm.zone_burst[0]: vm.zone_burst takes an integer from 1 to 2147483647, not 0'],
    [{ base: { generator: { workload: 'pairs' } }, axes: { 'machine.l1d.size': ['31k'] } }, 'point 0 (machine.l1d.size=31k): machine preset amd64-host: field l1d.ways: expected size / (ways × line) to be a power of two, got 31744 / (12 × 64)'],
    [{ base: { generator: { workload: 'nope' } } }, 'point 0 (the base): base.generator.workload: no workload "nope" (kmemu trace gen --list)'],
    [{ base: { generator: { workload: 'pairs' } }, axes: { cpus: [1, 2], pcpu: [true] }, combine: 'zip' }, 'combine "zip" needs axes of one length, got cpus 2, pcpu 1'],
    [{ base: { trace: 'x' }, axes: { 'gen.events': [10] } }, 'axes.gen.events[0]: a generator axis needs base.generator (the base replays a trace file)'],
  ])('%j: one line naming the field', (body, message) => {
    const file = spec('bad.json', body);
    const r = kmemu(['sweep', file, '--dry-run']);
    expect(r.stderr).toBe(`kmemu: ${file}: ${message}\n`);
    expect(r.status).toBe(1);
  });

  it('a YAML spec, and --dry-run lists the points in product order with their ids', () => {
    const file = spec('pairs.yaml', [
      'name: pairs-yaml',
      'base:',
      '  generator: { workload: pairs, events: 1000, seed: 2 }',
      '  machine: coursework',
      '  allocator: uma',
      'axes:',
      '  cpus: [1, 2]',
      '  pcpu: [true, false]',
      '',
    ].join('\n'));
    const r = kmemu(['sweep', file, '--dry-run']);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('pairs-yaml: 4 points (product of cpus, pcpu)');
    expect(lines.slice(2, 6).map((l) => l.split(/\s+/).filter((_, i) => i !== 1).join(' '))).toEqual(['0 1 true', '1 1 false', '2 2 true', '3 2 false']);
    // The same run as the JSON spec: the same ids.
    expect(kmemu(['sweep', spec('pairs.json', PAIRS), '--dry-run']).stdout.split('\n').slice(1).join('\n')).toBe(lines.slice(1).join('\n'));
    expect(kmemu(['sweep', file, '--dry-run', '--shard', '1/2']).stdout.split('\n')[0]).toBe('pairs-yaml: 4 points, 2 in shard 1/2 (product of cpus, pcpu)');
  });
});

describe('kmemu sweep: running it', () => {
  const file = spec('pairs.json', PAIRS);
  const whole = join(work, 'jobs2');

  it('writes a report per point, results.jsonl and results.csv in point order, and the charts; --jobs 1 and --jobs 2 agree byte for byte', () => {
    const r2 = kmemu(['sweep', file, '--out', whole, '--jobs', '2']);
    expect(r2.status).toBe(0);
    expect(r2.stdout).toBe(`pairs-small: 4 points in ${whole}: results.jsonl, results.csv, charts/ (speedup-vs-cpus.svg, cycles-by-path.svg, cycles_per_op-vs-pcpu.svg)\n`);
    expect(kmemu(['sweep', file, '--out', join(work, 'jobs1'), '--jobs', '1']).status).toBe(0);
    expect(tree(join(work, 'jobs1'))).toEqual(tree(whole));
    const rows = readFileSync(join(whole, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { index: number; params: object; metrics: Record<string, number> });
    expect(rows.map((r) => [r.index, r.params])).toEqual([[0, { cpus: 1, pcpu: true }], [1, { cpus: 1, pcpu: false }], [2, { cpus: 2, pcpu: true }], [3, { cpus: 2, pcpu: false }]]);
    for (const r of rows) expect(r.metrics['allocator_ops']).toBe(1000);
    // The locked run on 2 CPUs costs more per operation than the per-CPU one.
    expect(rows[3]!.metrics['cycles_per_op']!).toBeGreaterThan(rows[2]!.metrics['cycles_per_op']!);
    const csv = readFileSync(join(whole, 'results.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    expect(csv[0]!.slice(0, 6)).toEqual(['index', 'id', 'cpus', 'pcpu', 'events', 'allocator_ops']);
    for (const line of csv) expect(line).toHaveLength(csv[0]!.length);
    expect(csv.slice(1).map((l) => l.slice(2, 4))).toEqual([['1', 'true'], ['1', 'false'], ['2', 'true'], ['2', 'false']]);
  });

  it('a point\'s report is what its own kmemu replay command prints, run in the sweep\'s directory', () => {
    for (const f of readdirSync(join(whole, 'points'))) {
      const point = JSON.parse(readFileSync(join(whole, 'points', f), 'utf8')) as { id: string; command: string; report: unknown };
      expect(f).toBe(`${point.id}.json`);
      const args = point.command.split(' ');
      expect(args.slice(0, 2)).toEqual(['kmemu', 'replay']);
      const out = execFileSync(process.execPath, [cli, ...args.slice(1)], { cwd: whole, encoding: 'utf8' });
      expect(JSON.parse(out)).toEqual(point.report);
    }
  });

  it('table prints the points with their figures and the speedup; plot draws any axis against any figure', () => {
    const t = kmemu(['sweep', 'table', whole, '--metrics', 'allocator_ops,speedup']).stdout.split('\n');
    expect(t[0]).toBe('pairs-small: 4 points');
    expect(t.slice(1, 6).map((l) => l.split(/\s+/).filter((x) => x !== ''))).toEqual([
      ['index', 'cpus', 'pcpu', 'allocator_ops', 'speedup'],
      ['0', '1', 'true', '1,000', '1.00×'],
      ['1', '1', 'false', '1,000', '1.00×'],
      ...[2, 3].map((i) => [String(i), '2', i === 2 ? 'true' : 'false', '1,000', expect.stringMatching(/^\d+\.\d\d×$/) as unknown as string]),
    ]);
    expect(kmemu(['sweep', 'table', whole, '--metrics', 'nope']).stderr).toMatch(/^kmemu: --metrics: no figure "nope" in the sweep \(figures: alloc_cycles_per_op, /);
    const p = kmemu(['sweep', 'plot', join(work, 'jobs1'), '--x', 'cpus', '--y', 'c2c_per_op', '--color', 'pcpu']);
    expect(p.stdout).toBe(`${join(work, 'jobs1', 'charts', 'c2c_per_op-vs-cpus-by-pcpu.svg')}\n`);
    expect(readFileSync(join(work, 'jobs1', 'charts', 'c2c_per_op-vs-cpus-by-pcpu.svg'), 'utf8')).toMatch(/^<svg [^>]*width="720" height="420"/);
    expect(kmemu(['sweep', 'plot', whole, '--y', 'cyles']).stderr).toMatch(/^kmemu: --y: no metric "cyles" in the sweep \(metrics: /);
  });

  it('eventsPerCpu gives every CPU count the same work per CPU', () => {
    const f = spec('weak.json', { base: { generator: { workload: 'pairs', eventsPerCpu: 300 }, machine: 'coursework' }, axes: { cpus: [1, 3] } });
    const dir = join(work, 'weak');
    expect(kmemu(['sweep', f, '--out', dir, '--jobs', '1']).status).toBe(0);
    const rows = readFileSync(join(dir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { metrics: Record<string, number> });
    expect(rows.map((r) => r.metrics['allocator_ops'])).toEqual([300, 900]);
  });

  it('status says what is complete; a rerun runs only the missing points, to the same results', () => {
    expect(kmemu(['sweep', 'status', whole]).stdout).toBe(`pairs-small: 4 of 4 points complete in ${whole}; results written\n`);
    const dir = join(work, 'partial');
    expect(kmemu(['sweep', file, '--out', dir, '--jobs', '1']).status).toBe(0);
    const ids = readdirSync(join(dir, 'points')).sort();
    rmSync(join(dir, 'points', ids[1]!));
    rmSync(join(dir, 'results.jsonl'));
    const missing = readdirSync(join(whole, 'points')).length - 1;
    expect(missing).toBe(3);
    expect(kmemu(['sweep', 'status', dir]).stdout).toMatch(/^pairs-small: 3 of 4 points complete in .*; missing \d\n$/);
    const again = kmemu(['sweep', file, '--out', dir]);
    expect(again.stderr).toMatch(/3 of 4 points already complete in .*; running the other 1\n/);
    expect(tree(dir)).toEqual(tree(whole));
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)('a sweep stopped by %s leaves only whole point files, and resumes to the same results', async (signal) => {
    const dir = join(work, `killed-${signal}`);
    const child = spawn(process.execPath, [cli, 'sweep', file, '--out', dir, '--jobs', '1'], { stdio: 'ignore' });
    // Stop it once the first point is written, while the next one runs.
    await new Promise<void>((done) => {
      const t = setInterval(() => {
        if (existsSync(join(dir, 'points')) && readdirSync(join(dir, 'points')).some((f) => f.endsWith('.json'))) {
          clearInterval(t);
          child.kill(signal);
          done();
        }
      }, 10);
    });
    await new Promise((done) => child.on('exit', done));
    // A SIGKILL may leave the temporary file of the point being written (.ID.json.kmemu-tmp-...),
    // never a partial ID.json; the rerun removes it.
    const files = readdirSync(join(dir, 'points')).filter((f) => !f.startsWith('.'));
    expect(files.length).toBeGreaterThanOrEqual(1);
    expect(files.length).toBeLessThan(4);
    for (const f of files) {
      expect(f).toMatch(/^[0-9a-f]{16}\.json$/);
      expect(() => JSON.parse(readFileSync(join(dir, 'points', f), 'utf8')) as unknown).not.toThrow();
    }
    expect(existsSync(join(dir, 'results.jsonl'))).toBe(false);
    expect(kmemu(['sweep', file, '--out', dir]).status).toBe(0);
    expect(tree(dir)).toEqual(tree(whole));
  });

  it('shards merged are the whole sweep; a merge with a point missing or twice says which', () => {
    for (const k of [0, 1]) expect(kmemu(['sweep', file, '--out', join(work, `shard${k}`), '--shard', `${k}/2`]).status).toBe(0);
    expect(kmemu(['sweep', 'status', join(work, 'shard0')]).stdout).toMatch(/^pairs-small: 2 of 4 points complete in .*; missing 1, 3\n$/);
    const merged = join(work, 'merged');
    const m = kmemu(['sweep', 'merge', join(work, 'shard0'), join(work, 'shard1'), '--out', merged]);
    expect(m.status).toBe(0);
    expect(tree(merged)).toEqual(tree(whole));
    expect(kmemu(['sweep', 'merge', join(work, 'shard0'), '--out', join(work, 'm2')]).stderr).toBe('kmemu: sweep merge: 2 of 4 points are in none of the inputs: 1, 3\n');
    const twice = kmemu(['sweep', 'merge', join(work, 'shard0'), whole, '--out', join(work, 'm3')]).stderr;
    expect(twice).toMatch(/^kmemu: sweep merge: point 0 \([0-9a-f]{16}\) is in both .*shard0 and .*jobs2\n$/);
  });

  it('another sweep in the same directory is refused', () => {
    const other = spec('other.json', { ...PAIRS, axes: { cpus: [1] } });
    expect(kmemu(['sweep', other, '--out', whole]).stderr).toBe(`kmemu: ${whole} holds another sweep ("pairs-small", 4 points); give another --out\n`);
  });
});
