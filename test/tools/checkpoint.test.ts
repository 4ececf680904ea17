// kmemu boot --save, replay --from, and replay --checkpoint-every/--resume as a user runs them
// (the built CLI): the same report byte for byte, and one line for what it refuses.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, exited, kmemu, start, CLI } from './built-cli.js';

const TRACE = 'test/fixtures/traces/kernel-mix-2cpu.trace';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-cli-checkpoint-'));
const image = path.join(tmp, 'host.img');

beforeAll(() => {
  buildOnce();
  const r = kmemu(['boot', '--save', image]);
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toContain(`saved the booted machine to ${image} (`);
}, 300_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('kmemu replay --from IMAGE', () => {
  it('reports what a replay that boots does, byte for byte (replay and compare, --json)', () => {
    const booted = kmemu(['replay', TRACE, '--allocator', 'uma', '--json']);
    const fromImage = kmemu(['replay', TRACE, '--allocator', 'uma', '--json', '--from', image]);
    expect([fromImage.status, fromImage.stderr]).toEqual([0, '']);
    expect(fromImage.stdout).toBe(booted.stdout);
    const compare = kmemu(['compare', TRACE, '--json']);
    const compareFrom = kmemu(['compare', TRACE, '--json', '--from', image, '--machine', 'amd64-host']);
    expect([compareFrom.status, compareFrom.stderr]).toEqual([0, '']);
    expect(compareFrom.stdout).toBe(compare.stdout);
  }, 120_000);

  it('refuses a machine, CPUs or tunables other than the image\'s in one line', () => {
    const tail = 'a replay from an image runs on the machine and tunables it was booted with: leave the option out';
    const cases: [string[], string][] = [
      [['--machine', 'coursework'], `the image was booted with --machine amd64-host, not coursework; ${tail}`],
      [['--cpus', '4'], `the image's machine has 2 CPUs, not --cpus 4; ${tail}`],
      [['--tunable', 'vm.kmem_backend=vmem'], `the image was booted with tunables (none), not vm.kmem_backend=vmem; ${tail}`],
    ];
    for (const [args, line] of cases) {
      const r = kmemu(['replay', TRACE, '--from', image, ...args]);
      expect([r.status, r.stdout, r.stderr]).toEqual([2, '', `kmemu: --from ${image}: ${line}\n`]);
    }
  });

  it('refuses a truncated image and a file that is not one, naming the file and what was expected', () => {
    const short = path.join(tmp, 'short.img');
    fs.writeFileSync(short, fs.readFileSync(image).subarray(0, 5000));
    const expected = 'expected a kmemu machine image of format version 1 (kmemu boot --save, or a replay checkpoint)';
    const r = kmemu(['replay', TRACE, '--from', short]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^kmemu: ${short}: the machine image is truncated \\(\\d+ of its \\d+ body bytes\\); ${expected.replace(/[()]/g, '\\$&')}\\n$`));
    const t = kmemu(['replay', TRACE, '--from', TRACE]);
    expect([t.status, t.stderr]).toEqual([1, `kmemu: ${TRACE}: not a machine image (no "KMEMU-IMAGE" magic at its start); ${expected}\n`]);
  });
});

describe('kmemu replay --checkpoint-every N --checkpoint DIR, then --resume DIR', () => {
  it('a replay killed with SIGKILL after a checkpoint, resumed, ends in the report of an uninterrupted run, byte for byte', async () => {
    const trace = path.join(tmp, 'mix.trace');
    const gen = kmemu(['trace', 'gen', 'kernel-mix', '--cpus', '2', '--events', '40000', '--seed', '3', '-o', trace]);
    expect(gen.status).toBe(0);
    const ref = path.join(tmp, 'ref.json');
    expect(kmemu(['replay', trace, '--allocator', 'uma', '--json', '-o', ref]).status).toBe(0);

    const dir = path.join(tmp, 'ckpt');
    const killed = path.join(tmp, 'killed.json');
    const child = start([CLI, 'replay', trace, '--allocator', 'uma', '--json', '-o', killed, '--checkpoint-every', '2000', '--checkpoint', dir]);
    const end = exited(child);
    let ended = false;
    void end.then(() => {
      ended = true;
    });
    while (!ended && !(fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith('.kmemu-ckpt')))) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    expect(await end).toEqual({ code: null, signal: 'SIGKILL' });
    expect(fs.existsSync(killed)).toBe(false);
    const left = fs.readdirSync(dir).filter((f) => f.endsWith('.kmemu-ckpt'));
    expect(left.length).toBeGreaterThan(0);

    const other = kmemu(['replay', trace, '--allocator', 'vmzone', '--json', '--resume', dir]);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/^kmemu: .*\.kmemu-ckpt: the checkpoint is of a replay with other options: allocator "uma" \(given: "vmzone"\); give the options it was started with\n$/);

    const resumed = path.join(tmp, 'resumed.json');
    const r = kmemu(['replay', trace, '--allocator', 'uma', '--json', '-o', resumed, '--resume', dir]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(fs.readFileSync(resumed, 'utf8')).toBe(fs.readFileSync(ref, 'utf8'));
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.kmemu-ckpt')).length).toBe(2);
  }, 300_000);

  it('refuses a trace from stdin, and --checkpoint-every without --checkpoint', () => {
    const r = kmemu(['replay', '-', '--checkpoint-every', '10', '--checkpoint', tmp], ['pipe', 'pipe', 'pipe']);
    expect([r.status, r.stderr]).toEqual([2, 'kmemu: replay: checkpoints identify the trace by its bytes, so it must be a file, not "-"\n']);
    const s = kmemu(['replay', TRACE, '--checkpoint-every', '10']);
    expect([s.status, s.stderr]).toEqual([2, 'kmemu: replay: --checkpoint-every N and --checkpoint DIR go together\n']);
  });
});
