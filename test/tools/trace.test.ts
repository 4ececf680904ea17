import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../emu/index.js';
import { runTrace } from '../../tools/trace.js';

const SAMPLE = fileURLToPath(new URL('../fixtures/linux/linux-6.18-kmem-ftrace-sample.txt', import.meta.url));
const BUNDLED = fileURLToPath(new URL('../../traces/examples/linux-6.18-kmem.trace.gz', import.meta.url));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-trace-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[], stdin?: string): Promise<string> {
  let out = '';
  await runTrace(args, {
    stdout: { write: (s: string) => (out += s) },
    ...(stdin === undefined ? {} : { stdin: Readable.from([Buffer.from(stdin)]) }),
  });
  return out;
}

const SUMMARY_BODY = `events: 4552: zone 25, a 1644, f 1497, m 500, x 496, P 238, Q 152

cpu  events  allocs  frees
  0     480     419     47
  1    4072    1963   2098
frees on another CPU than the allocation: 317 of 2145 (14.8%)
live objects at the end: 237 (at most 579)

zone  name               size  allocs  frees
   1  names_cache        4096     897    897
   2  task_struct        5888       2      1
`;

const SIZES = `allocations of up to (bytes)  count  share
                          16      4   0.2%  #
                          32     93   3.9%  ###
                          64    383  16.1%  #############
                         128     61   2.6%  ##
                         256    669  28.1%  ########################
                         512      4   0.2%  #
                          1K     12   0.5%  #
                          2K     16   0.7%  #
                          4K   1138  47.8%  ########################################
                          8K      2   0.1%  #
`;

describe('kmemu trace import', () => {
  it('kmemu trace import --from linux-kmem writes the trace and prints the summary', async () => {
    const out = path.join(tmp, 'sample.trace.gz');
    const text = await run(['import', '--from', 'linux-kmem', SAMPLE, '-o', out]);
    expect(text.startsWith(`imported linux-6.18-kmem-ftrace-sample.txt (linux-kmem) to ${out}\n${SUMMARY_BODY}`)).toBe(true);
    expect(text).toContain(`  25  key_jar             256       3      3\n\n${SIZES}`);
    expect(text.endsWith([
      'not written:',
      '  frees of objects allocated before the capture: 80 (mm_page_free 53, kmem_cache_free 24, kfree 3)',
      '  frees of NULL: 812 (kfree 812)',
      '  allocations that failed (NULL): 0',
      '  allocations of a live pointer (its free was missed; the old object stays live): 12 (kmem_cache_alloc 12)',
      'skipped lines: 0',
      '',
    ].join('\n'))).toBe(true);
    expect(fs.readFileSync(out).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });

  it('kmemu trace import --json prints the kmemu.trace-import/1 document', async () => {
    const doc = JSON.parse(await run(['import', '--from', 'linux-kmem', SAMPLE, '-o', path.join(tmp, 'j.trace'), '--json'])) as Record<string, unknown>;
    expect(doc).toMatchObject({
      schema: 'kmemu.trace-import/1',
      input: 'linux-6.18-kmem-ftrace-sample.txt',
      events: 4552,
      crossCpuFrees: 317,
      live: 237,
      unmatchedFrees: { mm_page_free: 53, kmem_cache_free: 24, kfree: 3 },
      nullFrees: { kfree: 812 },
      doubleAllocations: { kmem_cache_alloc: 12 },
      lostEvents: 0,
      malformedLines: 0,
    });
    expect((doc.zones as unknown[]).length).toBe(25);
  });

  it('kmemu trace import reads stdin', async () => {
    const line = '            bash-6000    [001] .....   290.490133: kmalloc: call_site=f+0x1/0x2 ptr=00000000c06a3a1f bytes_req=184 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true\n';
    const out = path.join(tmp, 'stdin.trace');
    await run(['import', '--from', 'linux-kmem', '-', '-o', out], line);
    expect(fs.readFileSync(out, 'utf8')).toBe('kmemu-trace 1\n# source: linux-kmem, stdin\n1 m 192 1\n');
  });

  it('kmemu trace import without -o is a usage error', async () => {
    await expect(run(['import', '--from', 'linux-kmem', SAMPLE])).rejects.toThrow(new UsageError('missing -o/--out FILE: the kmemu trace to write (gzip-compressed when it ends in .gz)'));
  });

  it('kmemu trace import refuses a bad --window', async () => {
    await expect(run(['import', '--from', 'linux-kmem', SAMPLE, '-o', path.join(tmp, 'w.trace'), '--window', '0'])).rejects.toThrow('--window: expected a number of lines from 1 to 1048576, got "0"');
  });

  it('kmemu trace import needs --from linux-kmem', async () => {
    await expect(run(['import', SAMPLE, '-o', path.join(tmp, 'f.trace')])).rejects.toBeInstanceOf(CommanderError);
    await expect(run(['import', '--from', 'strace', SAMPLE, '-o', path.join(tmp, 'f.trace')])).rejects.toBeInstanceOf(CommanderError);
  });

  it('a failed import leaves no output file', async () => {
    const bad = path.join(tmp, 'bad.txt');
    fs.writeFileSync(bad, 'bash-6000 [000] ..... 1.0: kfree: call_site=f\n');
    const out = path.join(tmp, 'never.trace');
    await expect(run(['import', '--from', 'linux-kmem', bad, '-o', out])).rejects.toThrow(`${bad}:1: expected ptr= in kfree, got "call_site=f"`);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('never'))).toEqual([]);
  });
});

describe('kmemu trace stats', () => {
  it('kmemu trace stats prints what the bundled trace holds', async () => {
    const text = await run(['stats', BUNDLED]);
    expect(text.startsWith(`linux-6.18-kmem.trace.gz\n  source: linux-kmem, linux-6.18-kmem-ftrace-sample.txt\n  cpus: 2\n${SUMMARY_BODY}`)).toBe(true);
    expect(text.endsWith(SIZES)).toBe(true);
  });

  it('kmemu trace stats --json prints the kmemu.trace-stats/1 document', async () => {
    const doc = JSON.parse(await run(['stats', '--json', BUNDLED])) as Record<string, unknown>;
    expect(doc).toMatchObject({
      schema: 'kmemu.trace-stats/1',
      trace: 'linux-6.18-kmem.trace.gz',
      meta: { source: 'linux-kmem, linux-6.18-kmem-ftrace-sample.txt', cpus: '2' },
      events: 4552,
      byOp: { zone: 25, a: 1644, f: 1497, m: 500, x: 496, P: 238, Q: 152, t: 0 },
      cpus: [{ cpu: 0, events: 480, allocs: 419, frees: 47 }, { cpu: 1, events: 4072, allocs: 1963, frees: 2098 }],
      live: 237,
      maxLive: 579,
      crossCpuFrees: 317,
      skipped: {},
    });
  });

  it('kmemu trace stats --lenient reports what it skipped', async () => {
    const text = await run(['stats', '--lenient', '-'], 'kmemu-trace 1\n0 m 8 1\n1 x 1\n1 x 1\n0 Q 5\n');
    expect(text).toBe([
      'stdin',
      'events: 2: m 1, x 1',
      '',
      'cpu  events  allocs  frees',
      '  0       1       1      0',
      '  1       1       0      1',
      'frees on another CPU than the allocation: 1 of 1 (100.0%)',
      'live objects at the end: 0 (at most 1)',
      '',
      'allocations of up to (bytes)  count   share',
      '                           8      1  100.0%  ########################################',
      'skipped (--lenient): 2 (frees of objects not live 2)',
      '',
    ].join('\n'));
  });

  it('kmemu trace stats without --lenient stops at the first broken rule', async () => {
    await expect(run(['stats', '-'], 'kmemu-trace 1\n0 m 8 1\n1 x 1\n1 x 1\n')).rejects.toThrow('<stdin>:4: free of object 1, which is not live');
  });
});

describe('kmemu trace import --think-from-timestamps', () => {
  it('prints the think time in the summary', async () => {
    const line = (ts: string, rest: string) => `            bash-6000    [001] .....   ${ts}: ${rest}\n`;
    const input = line('1.000001', 'kmalloc: call_site=f ptr=aa bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false') + line('1.000002', 'kfree: call_site=f ptr=aa');
    const out = path.join(tmp, 'think.trace');
    const text = await run(['import', '--from', 'linux-kmem', '-', '-o', out, '--think-from-timestamps', '--clock-ghz', '1.5'], input);
    expect(text).toContain('think time from timestamps at 1.5 GHz: 1 t events; gaps cut to 10 ms: 0\n');
    expect(fs.readFileSync(out, 'utf8').split('\n').slice(3)).toEqual(['1 m 8 1', '1 t 1500', '1 x 1', '']);
  });

  it('refuses --clock-ghz without --think-from-timestamps, and a bad --clock-ghz', async () => {
    await expect(run(['import', '--from', 'linux-kmem', SAMPLE, '-o', path.join(tmp, 'c.trace'), '--clock-ghz', '2'])).rejects.toThrow(new UsageError('--clock-ghz applies only with --think-from-timestamps'));
    await expect(run(['import', '--from', 'linux-kmem', SAMPLE, '-o', path.join(tmp, 'c.trace'), '--think-from-timestamps', '--clock-ghz', '0'])).rejects.toThrow(new UsageError('--clock-ghz: expected a frequency in GHz above 0 and at most 1000, got "0"'));
  });
});
