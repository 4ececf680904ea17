import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildOnce, exited, kmemu, start, CLI } from './built-cli.js';

const TRACE = 'test/fixtures/traces/pairs-4cpu.trace';
let tmp: string;
const leftovers = () => fs.readdirSync(tmp).filter((f) => f.includes('.kmemu-tmp-'));

beforeAll(buildOnce, 300_000);
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-output-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('kmemu -o PATH', () => {
  it('replay -o on a device node writes through it: the node stays a character device', () => {
    expect(fs.lstatSync('/dev/null').isCharacterDevice()).toBe(true);
    const dev = path.join(tmp, 'null');
    execFileSync('mknod', [dev, 'c', '1', '3']);
    const r = kmemu(['replay', TRACE, '--machine', 'coursework', '--json', '-o', dev]);
    expect([r.status, r.stderr, r.stdout]).toEqual([0, '', '']);
    expect(fs.lstatSync(dev).isCharacterDevice()).toBe(true);
    expect(fs.readdirSync(tmp)).toEqual(['null']);
    const real = kmemu(['replay', TRACE, '--machine', 'coursework', '--json', '-o', '/dev/null']);
    expect(real.status).toBe(0);
    expect(fs.lstatSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('replay -o - prints the document on stdout and makes no file named "-"', () => {
    const r = kmemu(['replay', TRACE, '--machine', 'coursework', '--json', '-o', '-']);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { schema: string }).schema).toBe('kmemu.report/1');
    expect(fs.existsSync(path.join(path.dirname(CLI), '../..', '-'))).toBe(false);
  });

  it('replay -o through a symlink replaces the target and keeps the link and the mode', () => {
    fs.writeFileSync(path.join(tmp, 'report.json'), 'old\n');
    fs.chmodSync(path.join(tmp, 'report.json'), 0o604);
    fs.symlinkSync('report.json', path.join(tmp, 'latest.json'));
    const r = kmemu(['replay', TRACE, '--machine', 'coursework', '--json', '-o', path.join(tmp, 'latest.json')]);
    expect(r.status).toBe(0);
    expect(fs.lstatSync(path.join(tmp, 'latest.json')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(tmp, 'report.json'), 'utf8')).toMatch(/^\{\n {2}"schema": "kmemu.report\/1",/);
    expect(fs.statSync(path.join(tmp, 'report.json')).mode & 0o777).toBe(0o604);
    expect(leftovers()).toEqual([]);
  });

  it('trace gen --gzip -o - writes a gzip trace on stdout', () => {
    const args = [CLI, 'trace', 'gen', 'pairs', '--cpus', '2', '--events', '4', '-o', '-'];
    const gz = execFileSync(process.execPath, [...args, '--gzip']);
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    const plain = execFileSync(process.execPath, args).toString('utf8');
    expect(plain).toMatch(/^kmemu-trace 1\n# source: kmemu trace gen slab-concurrent-pairs --cpus 2 --events 4 .*\n# cpus: 2\n0 zone 1 kmalloc-8 8\n/);
    expect(gunzipSync(gz).toString('utf8')).toBe(plain);
  });

  it('trace import -o - writes the trace on stdout and the summary on stderr', () => {
    const r = kmemu(['trace', 'import', '--from', 'linux-kmem', 'test/fixtures/linux/trace-cmd-report.txt', '-o', '-', '--json']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^kmemu-trace 1\n# source: linux-kmem, trace-cmd-report.txt\n/);
    expect((JSON.parse(r.stderr) as { schema: string }).schema).toBe('kmemu.trace-import/1');
  });
});

describe('kmemu when its output fails or it gets a signal', () => {
  it('> /dev/full is one line and exit 1', () => {
    const full = fs.openSync('/dev/full', 'w');
    try {
      const r = kmemu(['replay', TRACE, '--machine', 'coursework'], ['ignore', full, 'pipe']);
      expect([r.status, r.stderr]).toEqual([1, 'kmemu: cannot write standard output: ENOSPC\n']);
      const g = kmemu(['trace', 'gen', 'pairs', '--events', '100', '-o', '-'], ['ignore', full, 'pipe']);
      expect([g.status, g.stderr]).toEqual([1, 'kmemu: cannot write standard output: ENOSPC\n']);
    } finally {
      fs.closeSync(full);
    }
  });

  it('-o /dev/full is one line naming the file, and exit 1', () => {
    const r = kmemu(['replay', TRACE, '--machine', 'coursework', '-o', '/dev/full']);
    expect([r.status, r.stderr]).toEqual([1, 'kmemu: cannot write /dev/full: ENOSPC\n']);
    expect(fs.lstatSync('/dev/full').isCharacterDevice()).toBe(true);
  });

  it.each([
    ['trace gen -o - writing a pipe', ['trace', 'gen', 'kernel-mix', '--events', '2000000', '-o', '-'], 'first'],
    ['replay writing a pipe', ['replay', 'test/fixtures/traces/kernel-mix-2cpu.trace', '--machine', 'coursework', '--json'], 'start'],
  ])('%s that the reader closes (| head -1) ends quietly with 141', async (_what, args, when) => {
    const child = start([CLI, ...args]);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    if (when === 'start') child.stdout!.destroy();
    else child.stdout!.once('data', () => child.stdout!.destroy());
    expect(await exited(child)).toEqual({ code: 141, signal: null });
    expect(stderr).toBe('');
  });

  it.each([
    ['SIGHUP', 129],
    ['SIGQUIT', 131],
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s during trace gen -o FILE removes the temporary file and exits %i', async (signal, status) => {
    const out = path.join(tmp, 'big.trace.gz');
    const child = start([CLI, 'trace', 'gen', 'kernel-mix', '--events', '100000000', '-o', out]);
    const done = exited(child);
    while (leftovers().length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill(signal);
    expect(await done).toEqual({ code: status, signal: null });
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
