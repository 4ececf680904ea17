import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openAtomicOutputs, writeAll } from '../../traces/atomic-output.js';
import { OutputError, openAtomic, writeFileAtomic } from '../../traces/index.js';
import { ROOT, buildOnce, exited, start } from '../tools/built-cli.js';

let tmp: string;
const leftovers = () => fs.readdirSync(tmp).filter((f) => f.includes('.kmemu-tmp-'));

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-atomic-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('openAtomic() on a regular file or a missing path', () => {
  it('replaces an existing file completely and keeps its mode', () => {
    const file = path.join(tmp, 'out.json');
    fs.writeFileSync(file, 'old contents that are longer than the new ones\n');
    fs.chmodSync(file, 0o640);
    const o = openAtomic(file);
    expect(o.kind).toBe('replace');
    writeAll(o.fd, Buffer.from('new\n'));
    expect(fs.readFileSync(file, 'utf8')).toBe('old contents that are longer than the new ones\n');
    o.commit();
    expect(fs.readFileSync(file, 'utf8')).toBe('new\n');
    expect(fs.statSync(file).mode & 0o7777).toBe(0o640);
    expect(leftovers()).toEqual([]);
    expect(openAtomicOutputs()).toBe(0);
  });

  it('creates a missing file only on commit, and abort() leaves nothing', () => {
    const file = path.join(tmp, 'new.json');
    const o = openAtomic(file);
    expect(fs.existsSync(file)).toBe(false);
    expect(leftovers()).toHaveLength(1);
    o.abort();
    expect(fs.existsSync(file)).toBe(false);
    expect(leftovers()).toEqual([]);
    writeFileAtomic(file, '{}\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('{}\n');
  });

  it('refuses a directory and a missing parent with the errno name', () => {
    expect(() => openAtomic(tmp)).toThrow(new OutputError(tmp, 'EISDIR'));
    const deep = path.join(tmp, 'no', 'such.json');
    expect(() => openAtomic(deep)).toThrow(`cannot write ${deep}: ENOENT`);
  });
});

describe('openAtomic() on devices, FIFOs and links', () => {
  it('writes a character device directly: /dev/null stays a character device', () => {
    expect(fs.lstatSync('/dev/null').isCharacterDevice()).toBe(true);
    const o = openAtomic('/dev/null');
    expect(o.kind).toBe('direct');
    expect(o.tmpPath).toBe('');
    writeAll(o.fd, Buffer.from('gone\n'));
    o.commit();
    expect(fs.lstatSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('writes a device node made with mknod in place, and the node stays', () => {
    const dev = path.join(tmp, 'null');
    execFileSync('mknod', [dev, 'c', '1', '3']);
    writeFileAtomic(dev, 'x'.repeat(100_000));
    const st = fs.lstatSync(dev);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(fs.statSync('/dev/null').rdev);
    expect(fs.readdirSync(tmp)).toEqual(['null']);
  });

  it('a full device gives OutputError ENOSPC', () => {
    const dev = path.join(tmp, 'full');
    execFileSync('mknod', [dev, 'c', '1', '7']);
    expect(() => writeFileAtomic(dev, 'data')).toThrow(new OutputError(dev, 'ENOSPC'));
    expect(fs.lstatSync(dev).isCharacterDevice()).toBe(true);
  });

  it('writes a FIFO to the reader on the other end, and the FIFO stays', async () => {
    const fifo = path.join(tmp, 'fifo');
    const got = path.join(tmp, 'got');
    execFileSync('mkfifo', [fifo]);
    const reader = start(['-e', `require('fs').writeFileSync(${JSON.stringify(got)}, require('fs').readFileSync(${JSON.stringify(fifo)}))`]);
    const done = exited(reader);
    writeFileAtomic(fifo, 'through the pipe\n'.repeat(10_000));
    expect(await done).toEqual({ code: 0, signal: null });
    expect(fs.readFileSync(got, 'utf8')).toBe('through the pipe\n'.repeat(10_000));
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('follows a symlink: the target is replaced (mode kept), the link stays a link', () => {
    const target = path.join(tmp, 'target.json');
    fs.writeFileSync(target, 'old\n');
    fs.chmodSync(target, 0o600);
    const link = path.join(tmp, 'link.json');
    fs.symlinkSync('target.json', link);
    writeFileAtomic(link, 'new\n');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe('target.json');
    expect(fs.readFileSync(target, 'utf8')).toBe('new\n');
    expect(fs.statSync(target).mode & 0o7777).toBe(0o600);
    expect(leftovers()).toEqual([]);
  });

  it('follows a chain of relative symlinks across directories; the temporary file sits by the target', () => {
    fs.mkdirSync(path.join(tmp, 'a'));
    fs.mkdirSync(path.join(tmp, 'b'));
    fs.writeFileSync(path.join(tmp, 'b', 'real'), 'old\n');
    fs.symlinkSync('../b/real', path.join(tmp, 'a', 'hop2'));
    fs.symlinkSync('a/hop2', path.join(tmp, 'hop1'));
    const o = openAtomic(path.join(tmp, 'hop1'));
    expect(path.dirname(o.tmpPath)).toBe(path.join(tmp, 'b'));
    writeAll(o.fd, Buffer.from('new\n'));
    o.commit();
    expect(fs.readFileSync(path.join(tmp, 'b', 'real'), 'utf8')).toBe('new\n');
    expect(fs.lstatSync(path.join(tmp, 'hop1')).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(path.join(tmp, 'a', 'hop2')).isSymbolicLink()).toBe(true);
  });

  it('a dangling symlink creates its target', () => {
    fs.symlinkSync('made.json', path.join(tmp, 'dangling'));
    writeFileAtomic(path.join(tmp, 'dangling'), 'made\n');
    expect(fs.readFileSync(path.join(tmp, 'made.json'), 'utf8')).toBe('made\n');
    expect(fs.lstatSync(path.join(tmp, 'dangling')).isSymbolicLink()).toBe(true);
  });

  it('a symlink loop is ELOOP', () => {
    fs.symlinkSync('loop2', path.join(tmp, 'loop1'));
    fs.symlinkSync('loop1', path.join(tmp, 'loop2'));
    expect(() => openAtomic(path.join(tmp, 'loop1'))).toThrow(`cannot write ${path.join(tmp, 'loop1')}: ELOOP`);
  });
});

describe('openAtomic() in a process that gets a signal', () => {
  beforeAll(buildOnce, 300_000);

  const script = (file: string) =>
    `import { openAtomic, writeAll } from ${JSON.stringify(path.join(ROOT, 'dist/traces/atomic-output.js'))};` +
    `const o = openAtomic(${JSON.stringify(file)}); writeAll(o.fd, Buffer.from('partial'));` +
    `process.stdout.write(o.tmpPath + '\\n'); setInterval(() => undefined, 1000);`;

  it.each([
    ['SIGHUP', 129],
    ['SIGINT', 130],
    ['SIGQUIT', 131],
    ['SIGUSR2', 140],
    ['SIGTERM', 143],
  ] as const)('%s while writing removes the temporary file and exits %i', async (signal, status) => {
    const file = path.join(tmp, 'out.json');
    fs.writeFileSync(file, 'kept\n');
    const child = start(['--input-type=module', '-e', script(file)]);
    const done = exited(child);
    const tmpPath = await new Promise<string>((resolve) => child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim())));
    expect(fs.existsSync(tmpPath)).toBe(true);
    child.kill(signal);
    expect(await done).toEqual({ code: status, signal: null });
    expect(leftovers()).toEqual([]);
    expect(fs.readFileSync(file, 'utf8')).toBe('kept\n');
  });

  it("'-' is standard output", async () => {
    const child = start([
      '--input-type=module',
      '-e',
      `import { openAtomic, writeAll } from ${JSON.stringify(path.join(ROOT, 'dist/traces/atomic-output.js'))};` +
        `const o = openAtomic('-'); writeAll(o.fd, Buffer.from(o.kind + ' ' + o.fd + '\\n')); o.commit();`,
    ]);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(out).toBe('stdout 1\n');
    expect(fs.existsSync(path.join(ROOT, '-'))).toBe(false);
  });
});
