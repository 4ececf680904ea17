import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { runTrace } from '../../tools/trace.js';
import { runTraceGen } from '../../tools/trace-gen.js';
import { generate, workloads } from '../../traces/gen.js';
import { TraceReader } from '../../traces/trace-io.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-trace-gen-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function sink(): { text: string; write(s: string): boolean } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

describe('kmemu trace gen', () => {
  it('writes the header and the events of slab-concurrent-pairs (alias pairs) on 4 CPUs', async () => {
    const out = path.join(dir, 'pairs.trace');
    await runTraceGen(['pairs', '--cpus', '4', '--events', '8', '--seed', '1', '--size', '64', '-o', out]);
    expect(fs.readFileSync(out, 'utf8')).toBe(
      [
        'kmemu-trace 1',
        '# source: kmemu trace gen slab-concurrent-pairs --cpus 4 --events 8 --seed 1 --size 64 --count 10000 --api zone --think 0',
        '# cpus: 4',
        '0 zone 1 kmalloc-64 64',
        '0 a 1 1',
        '1 a 1 2',
        '2 a 1 3',
        '3 a 1 4',
        '0 f 1 1',
        '1 f 1 2',
        '2 f 1 3',
        '3 f 1 4',
        '',
      ].join('\n'),
    );
  });

  it('writes byte-identical files for the same arguments, gzip-compressed for .gz', async () => {
    const a = path.join(dir, 'a.trace.gz');
    const b = path.join(dir, 'b.trace.gz');
    const args = ['kernel-mix', '--cpus', '3', '--events', '5000', '--seed', 'abc'];
    await runTraceGen([...args, '-o', a]);
    await runTraceGen([...args, '-o', b]);
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).toBe(true);
    const text = gunzipSync(fs.readFileSync(a)).toString('utf8');
    expect(text.startsWith('kmemu-trace 1\n# source: kmemu trace gen kernel-mix --cpus 3 --events 5000 --seed abc --think 0\n# cpus: 3\n0 zone 1 names_cache 4096\n')).toBe(true);
    expect(text.split('\n').filter((l) => /^\d+ [afmxPQ] /.test(l)).length).toBe(5000);
  });

  it('every workload reads back through TraceReader, which checks the Rules, event for event', async () => {
    for (const w of workloads) {
      const out = path.join(dir, `${w.name}.trace`);
      const args = [w.name, '--cpus', '5', '--events', '3000', '--seed', '9'];
      await runTraceGen([...args, '-o', out]);
      const r = await TraceReader.open(out);
      expect(r.header.cpus).toBe(5);
      const got: string[] = [];
      for (let b = await r.next(); b !== null; b = await r.next()) for (const e of b) got.push(`${e.cpu} ${e.op} ${e.zone} ${e.obj} ${e.size} ${e.name}`);
      // vmem-frag keeps the 2F+1 busy segments that hold its fragmentation (F = 1024).
      expect(r.liveObjects).toBe(w.name === 'vmem-frag' ? 2 * 1024 + 1 : 0);
      expect(r.formatVersion).toBe(w.version);
      await r.close();
      const want = [...generate(w.name, { cpus: 5, events: 3000, seed: '9' })].map((e) => `${e.cpu} ${e.op} ${e.zone} ${e.obj} ${e.size} ${e.name}`);
      expect(got).toEqual(want);
    }
  });

  it('--list prints every workload with its description, options and source', async () => {
    const stdout = sink();
    await runTraceGen(['--list'], { stdout });
    for (const w of workloads) expect(stdout.text).toContain(`${w.name.padEnd(23)}${w.description}`);
    expect(stdout.text).toContain('[--min-size --max-size --chunks --rounds --api --think]');
    expect(stdout.text).toContain('pairs                  = slab-concurrent-pairs');
  });

  it('refuses a missing output, a bad number and an option the workload does not take', async () => {
    await expect(runTraceGen(['larson'])).rejects.toThrow('missing -o/--out FILE');
    await expect(runTraceGen(['larson', '--cpus', 'four', '-o', path.join(dir, 'x')])).rejects.toThrow('option --cpus: expected a non-negative integer, got "four"');
    await expect(runTraceGen(['larson', '--count', '5', '-o', path.join(dir, 'x')])).rejects.toThrow('option --count does not apply to workload larson');
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);
  });
});

describe('kmemu trace gen net-*', () => {
  it('writes a version-2 net-forward trace: CPU 0 fills its ring and receives, CPU 1 frees', async () => {
    const out = path.join(dir, 'fwd.trace');
    await runTraceGen(['net-forward', '--cpus', '2', '--events', '12', '--seed', '1', '--ring', '4', '--batch', '2', '-o', out]);
    expect(fs.readFileSync(out, 'utf8')).toBe(
      [
        'kmemu-trace 2',
        '# source: kmemu trace gen net-forward --cpus 2 --events 12 --seed 1 --size 0 --ring 4 --batch 2 --think 0',
        '# cpus: 2',
        '0 b 1 cluster',
        '0 b 2 cluster',
        '0 b 3 cluster',
        '0 b 4 cluster',
        '0 b 5 pkthdr',
        '0 b 6 pkthdr',
        '1 B 5',
        '1 B 6',
        '1 B 1',
        '1 B 2',
        '1 B 3',
        '1 B 4',
        '',
      ].join('\n'),
    );
  });

  it('trace stats counts a net-sockbuf trace\'s mbufs by kind', async () => {
    const out = path.join(dir, 'sb.trace');
    await runTraceGen(['net-sockbuf', '--cpus', '2', '--events', '240', '--seed', '1', '--batch', '8', '-o', out]);
    const stdout = sink();
    await runTrace(['stats', out, '--json'], { stdout, stderr: process.stderr });
    const stats = JSON.parse(stdout.text) as { byOp: Record<string, number>; mbufs: unknown; crossCpuFrees: number };
    expect([stats.byOp.b, stats.byOp.B, stats.crossCpuFrees]).toEqual([120, 120, 120]);
    expect(stats.mbufs).toEqual({ mbuf: 0, pkthdr: 0, cluster: 0, chain: 120, chainMbufs: 70 * 1 + 40 * 3 + 10 * 7 });
    const text = sink();
    await runTrace(['stats', out], { stdout: text, stderr: process.stderr });
    expect(text.text).toContain('mbufs (b): 120: mbuf 0, pkthdr 0, cluster 0, chain 120 (260 mbufs)\n');
    expect(text.text).toContain('frees on another CPU than the allocation: 120 of 120 (100.0%)\n');
  });
});
