import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { runCachesim } from '../../tools/cachesim.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-cachesim-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// w 0 / r 100 / r 0 on L1 one set of two ways, L2 four direct-mapped sets (0x000 and 0x100 share set 0).
const TRACE = 'w 0 4\nr 100 4\nr 0 4\n';
const traceFile = path.join(tmp, 't.din');
fs.writeFileSync(traceFile, TRACE);

async function run(args: string[], stdin?: Buffer): Promise<{ out: string; stats: Awaited<ReturnType<typeof runCachesim>> }> {
  let out = '';
  const stats = await runCachesim(args, {
    stdout: { write: (s: string) => (out += s) },
    ...(stdin === undefined ? {} : { stdin: Readable.from([stdin]) }),
  });
  return { out, stats };
}

describe('kmemu cachesim', () => {
  it('kmemu cachesim --json prints the kmemu.cachesim/1 document', async () => {
    const { out } = await run(['--format', 'din', '--l1', '128:2:64:lru', '--l2', '256:1:64:lru', '--non-inclusive', '--json', traceFile]);
    const doc = JSON.parse(out) as { schema: string; references: number; levels: Record<string, unknown>[] };
    expect(doc.schema).toBe('kmemu.cachesim/1');
    expect(doc.references).toBe(3);
    expect(doc.levels.map((l) => [l.name, l.accesses, l.reads, l.writes, l.misses, l.readMisses, l.writeMisses, l.writebacks]))
      .toEqual([['l1', 3, 2, 1, 2, 1, 1, 0], ['l2', 2, 2, 0, 2, 2, 0, 0]]);
    expect(doc.levels[0]).toMatchObject({ multiBlockRefs: 0, bytesFromBelow: 128, bytesToBelow: 0, size: 128, ways: 2, line: 64, policy: 'lru' });
  });

  it('kmemu cachesim models an inclusive hierarchy by default', async () => {
    const { stats } = await run(['--l1', '128:2:64:lru', '--l2', '256:1:64:lru', '--json', traceFile]);
    expect(stats!.inclusive).toBe(true);
    expect(stats!.levels.map((l) => [l.misses, l.writebacks, l.backInvalidations])).toEqual([[3, 1, 2], [3, 1, 0]]);
  });

  it('kmemu cachesim prints a table with derived miss rates', async () => {
    const { out } = await run(['--l1', '128:2:64:lru', '--l2', '256:1:64:lru', '--non-inclusive', traceFile]);
    expect(out).toBe([
      'references: 3 (non-inclusive, Dinero IV-compatible)',
      'level            accesses  reads  writes  misses  miss rate  read misses  write misses  writebacks',
      'l1 128:2:64:lru         3      2       1       2     66.67%            1             1           0',
      'l2 256:1:64:lru         2      2       0       2    100.00%            2             0           0',
      '',
    ].join('\n'));
  });

  it('kmemu cachesim reads gzip from stdin and counts TLB lookups', async () => {
    const { stats, out } = await run(['--l1', '1k:2:64:lru', '--tlb', '64:4', '--non-inclusive'], gzipSync(Buffer.from(TRACE)));
    expect(stats!.references).toBe(3);
    expect(stats!.tlb).toEqual({ entries: 64, ways: 4, pageSize: 4096, accesses: 3, misses: 1 });
    expect(out).toContain('tlb 64:4 (4 KiB pages, lru): accesses 3, misses 1, miss rate 33.33%');
  });

  it('kmemu cachesim --flush copies dirty lines back at the end, as dineroIV does', async () => {
    const { stats } = await run(['--l1', '128:2:64:lru', '--l2', '256:1:64:lru', '--non-inclusive', '--flush', traceFile]);
    expect(stats!.levels.map((l) => [l.writes, l.writebacks, l.copybacks])).toEqual([[1, 1, 1], [1, 1, 1]]);
  });

  const badSpecs: [string[], string][] = [
    [['--l1', '32k:8:64'], 'option --l1: expected SIZE:WAYS:LINE:POLICY (e.g. 32k:8:64:lru), got "32k:8:64"'],
    [['--l1', '32q:8:64:lru'], 'option --l1: expected SIZE as bytes or like 32k, 1m, got "32q"'],
    [['--l1', '32k:x:64:lru'], 'option --l1: expected WAYS as a positive integer, got "x"'],
    [['--l1', '32k:8:64:mru'], 'option --l1: expected POLICY lru, fifo, plru, random, got "mru"'],
    [['--l1', '32k:8:48:lru'], 'option --l1 "32k:8:48:lru": expected a power-of-two line size from 4 to 32768 bytes, got 48'],
    [['--l1', '32k:7:64:lru'], 'option --l1 "32k:7:64:lru": expected a number of ways dividing the 512 lines of the cache, got 7'],
    [['--l1', '48k:8:64:lru'], 'option --l1 "48k:8:64:lru": expected a power-of-two number of sets (size / (ways × line)), got 49152 / (8 × 64) = 96'],
    [['--l1', '32k:8:64:lru', '--l2', '1m:16:64'], 'option --l2: expected SIZE:WAYS:LINE:POLICY (e.g. 32k:8:64:lru), got "1m:16:64"'],
    [['--l1', '32k:8:64:lru', '--l3', '8m:16:64:lru'], 'option --l3: expected --l2 too'],
    [['--l1', '32k:8:64:lru', '--tlb', '64'], 'option --tlb: expected ENTRIES:WAYS with ENTRIES / WAYS a power of two (e.g. 64:4), got "64"'],
  ];
  for (const [args, message] of badSpecs) {
    it(`kmemu cachesim rejects ${args.join(' ')} with "${message}"`, async () => {
      await expect(run([...args, traceFile])).rejects.toThrow(message);
    });
  }

  it('kmemu cachesim counts the same when a worker thread parses the trace', async () => {
    const dir = path.join(tmp, 'worker');
    fs.mkdirSync(dir);
    for (const name of ['din-core', 'din-ring', 'din-worker']) {
      const source = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'traces', `${name}.ts`), 'utf8');
      fs.writeFileSync(path.join(dir, `${name}.js`), ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
    }
    const big = path.join(tmp, 'big.din');
    fs.writeFileSync(big, Array.from({ length: 50_000 }, (_, i) => `${i % 3 === 0 ? 'w' : 'r'} ${((i * 2654435761) % 0x100000).toString(16)} ${1 << (i % 4)}`).join('\n'));
    const args = ['--l1', '1k:2:64:lru', '--l2', '8k:4:64:fifo', '--non-inclusive', '--flush', '--json', big];
    const single = await run(args);
    let out = '';
    const stats = await runCachesim(args, { stdout: { write: (s: string) => (out += s) }, pipelineMinBytes: 0, dinWorkerUrl: pathToFileURL(path.join(dir, 'din-worker.js')) });
    expect(stats).toEqual(single.stats);
    expect(out).toBe(single.out);
  });

  it('kmemu cachesim names the trace file and line of a malformed reference', async () => {
    const bad = path.join(tmp, 'bad.din');
    fs.writeFileSync(bad, 'r 10 4\nw 10\n');
    await expect(run(['--l1', '1k:2:64:lru', bad])).rejects.toThrow(`${bad}:2: expected "<r|w|i|m|c|v> <hex address> <hex size>" or "<0-5> <hex address>", got "w 10"`);
  });

  it('kmemu cachesim --help documents both hierarchy modes', async () => {
    let help = '';
    await expect(runCachesim(['--help'], { stdout: { write: (s: string) => (help += s) } })).rejects.toThrow();
    expect(help).toContain('--non-inclusive');
    expect(help).toContain('inclusive: a line evicted');
    expect(help).toContain('Dinero IV-compatible');
  });
});
