import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../emu/index.js';
import { parseVmemScript, runVmem } from '../../tools/vmem.js';
import { buildOnce, kmemu } from './built-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'kmemu-vmem-'));
function script(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

async function run(args: string[]): Promise<string> {
  let out = '';
  await runVmem(args, (s) => (out += s));
  return out;
}

const DEMO = `# an arena at the top of the address space
create a 0xfffffe0000000000 0x100000 0x1000 0
xalloc a 0x3000 0 0 0 0 0 bestfit
alloc a 0x1000 firstfit

xalloc a 0x1000 0x4000 0x1000 0 0 0 bestfit
xalloc a 0x200000 0 0 0 0 0 bestfit
segs a
size a
xfree a @3 0x3000
free a @4 0x1000
xfree a @7 0x200000
segs a
create c 0 0 0x1000 0
import c a 0x10000
alloc c 0x1000 bestfit
segs c
free c @16 0x1000
segs c
size a
destroy c
`;

describe('kmemu vmem run', () => {
  beforeAll(() => buildOnce(), 300_000);

  it('prints one exact result line per operation, resolves @L and skips frees of ENOMEM results', async () => {
    expect(await run(['run', script('demo.vmem', DEMO)])).toBe([
      'ok',
      '0xfffffe0000000000',
      '0xfffffe0000003000',
      '0xfffffe0000005000',
      'ENOMEM',
      'segs a 6',
      'seg 0xfffffe0000000000 0x100000 static',
      'seg 0xfffffe0000000000 0x3000 busy',
      'seg 0xfffffe0000003000 0x1000 busy',
      'seg 0xfffffe0000004000 0x1000 free',
      'seg 0xfffffe0000005000 0x1000 busy',
      'seg 0xfffffe0000006000 0xfa000 free',
      'size a alloc=0x5000 free=0xfb000 total=0x100000',
      'ok',
      'ok',
      'skip',
      'segs a 4',
      'seg 0xfffffe0000000000 0x100000 static',
      'seg 0xfffffe0000000000 0x5000 free',
      'seg 0xfffffe0000005000 0x1000 busy',
      'seg 0xfffffe0000006000 0xfa000 free',
      'ok',
      'ok',
      '0xfffffe0000006000',
      'segs c 3',
      'seg 0xfffffe0000006000 0x10000 span',
      'seg 0xfffffe0000006000 0x1000 busy',
      'seg 0xfffffe0000007000 0xf000 free',
      'ok',
      'segs c 0',
      'size a alloc=0x1000 free=0xff000 total=0x100000',
      'ok',
      '',
    ].join('\n'));
  });

  it('--cycles appends each operation\'s cycles and --check passes on a sane run', async () => {
    const out = await run(['run', '--check', '--cycles', script('c.vmem', 'create a 0x1000 0x1000 0x10 0\nalloc a 0x10 bestfit\nsegs a\n')]);
    expect(out).toMatch(/^ok \d+\n0x1000 \d+\nsegs a 3 \d+\nseg 0x1000 0x1000 static\nseg 0x1000 0x10 busy\nseg 0x1010 0xff0 free\n$/);
  });

  it('parseVmemScript() reports the first bad line as SCRIPT:LINE: expected ...', () => {
    const bad = (text: string) => () => parseVmemScript(text, 's.vmem');
    expect(bad('create a 0 0x1000 3 0\n')).toThrow(new UsageError('s.vmem:1: expected QUANTUM a power of two, got "3"'));
    expect(bad('\n# c\nalloc b 16 bestfit\n')).toThrow(new UsageError('s.vmem:3: expected an arena created on an earlier line, got "b"'));
    expect(bad('create a 0 0x1000 16 0\nalloc a 16 worstfit\n')).toThrow(new UsageError('s.vmem:2: expected STRAT bestfit, firstfit or nextfit, got "worstfit"'));
    expect(bad('create a 0 0x1000 16 0\nfree a @1 16\n')).toThrow(new UsageError('s.vmem:2: expected @L to an earlier line with alloc or xalloc, got "@1"'));
    expect(bad('create a 0 0x1000 16 0\nsize a b\n')).toThrow(new UsageError('s.vmem:2: expected "size NAME", got 2 operands'));
    expect(bad('frob a\n')).toThrow(/^s\.vmem:1: expected an operation \(create, import/);
    expect(bad('create a 0x10000000000000000 16 16 0\n')).toThrow(new UsageError('s.vmem:1: expected BASE below 2^64, got "0x10000000000000000"'));
  });

  it('the built kmemu exits 2 on a script error, 1 with one panic line on kernel misuse', () => {
    const e = kmemu(['vmem', 'run', script('e.vmem', 'create a 0 0x1000 16 0\nalloc a 16 worst\n')]);
    expect(e.status).toBe(2);
    expect(e.stdout).toBe('');
    expect(e.stderr).toBe(`kmemu: ${path.join(dir, 'e.vmem')}:2: expected STRAT bestfit, firstfit or nextfit, got "worst"\n`);
    const p = kmemu(['vmem', 'run', script('p.vmem', 'create a 0x1000 0x1000 16 0\nxfree a 0x1000 16\n')]);
    expect(p.status).toBe(1);
    expect(p.stdout).toBe('ok\n');
    expect(p.stderr).toBe('kmemu: panic: Assertion bt != NULL failed at sys/kern/subr_vmem.c:1289 (cpu0)\n');
  });
});
