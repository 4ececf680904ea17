import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, buildOnce, kmemu } from './built-cli.js';

const TRACE = 'test/fixtures/traces/pairs-4cpu.trace';
const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

beforeAll(buildOnce, 300_000);

describe('kmemu exit status and messages', () => {
  it.each(['--version', '-V'])('kmemu %s prints the package version and exits 0', (flag) => {
    const r = kmemu([flag]);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `kmemu ${version}\n`, '']);
  });

  it('kmemu without a command prints the help on stderr and exits 1, as git does', () => {
    const r = kmemu([]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^Usage: kmemu \[options\] \[command\]\n/);
    expect(r.stdout).toBe('');
  });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmemu-cli-'));
  const bad = path.join(dir, 'bad.trace');
  fs.writeFileSync(bad, 'kmemu-trace 1\n0 zone 1 z 64\n0 q 1 2\n');
  const machine = path.join(dir, 'machine.json');
  fs.writeFileSync(machine, '{"cpus": "many"');

  it.each([
    [['replay', TRACE, '--bogus'], 2, "kmemu: unknown option '--bogus' (see kmemu replay --help)"],
    [['replay', TRACE, '--jsn'], 2, "kmemu: unknown option '--jsn'; did you mean --json? (see kmemu replay --help)"],
    [['trace', 'gen', '--bogus'], 2, "kmemu: unknown option '--bogus' (see kmemu trace gen --help)"],
    [['bogus'], 2, "kmemu: unknown command 'bogus' (see kmemu --help)"],
    [['replay'], 2, "kmemu: missing required argument 'trace' (see kmemu replay --help)"],
    [['replay', TRACE, '--allocator', 'slab'], 2, "kmemu: option '--allocator <name>' argument 'slab' is invalid. Allowed choices are vmzone, uma. (see kmemu replay --help)"],
    [['replay', TRACE, '--cpus', 'abc'], 2, 'kmemu: --cpus: expected an integer from 1 to 64, got "abc"'],
    [['replay', TRACE, '--zones', 'abc'], 2, 'kmemu: --zones: expected an integer of 0 or more, got "abc"'],
    [['replay', TRACE, '--touch', ''], 2, 'kmemu: --touch: expected a number of cache lines from 0 to 64, got ""'],
    [['replay', TRACE, '--warmup', '-1'], 2, 'kmemu: --warmup: expected a number of events per CPU of 0 or more, got "-1"'],
    [['compare', TRACE, '--warmup', 'x'], 2, 'kmemu: --warmup: expected a number of events per CPU of 0 or more, got "x"'],
    [['replay', TRACE, '--bucket-size', '8'], 2, 'kmemu: --bucket-size applies to --allocator uma only'],
    [['compare', TRACE, '--allocator', 'vmzone', '--cache-lock', 'mutex'], 2, 'kmemu: --cache-lock applies to --allocator uma only'],
    [['replay', TRACE, '--auto-tune'], 2, 'kmemu: --auto-tune applies to --allocator uma only'],
    [['replay', TRACE, '--invariants'], 2, 'kmemu: --invariants applies to --allocator uma only'],
    [['replay', TRACE, '--sysctl', 'vm.zone_burst=-1'], 2, 'kmemu: --sysctl vm.zone_burst=-1: vm.zone_burst takes an integer from 1 to 2147483647, not -1'],
    [['sysctl', 'vm.zone_burst=0'], 2, 'kmemu: sysctl: vm.zone_burst takes an integer from 1 to 2147483647, not 0'],
    [['trace', 'gen', 'pairs', '--events', 'many', '-o', '-'], 2, 'kmemu: option --events: expected a non-negative integer, got "many"'],
    [['replay', 'no/such.trace'], 1, 'kmemu: cannot open no/such.trace: ENOENT'],
    [['replay', bad], 1, `kmemu: ${bad}:3: expected an op (zone, a, f, m, x, P, Q, t), got "q"`],
  ] as const)('kmemu %j exits %i with one line', (args, status, line) => {
    const r = kmemu(args);
    expect([r.status, r.stderr, r.stdout]).toEqual([status, `${line}\n`, '']);
  });

  it('a bad machine file is an input error (1) in one line', () => {
    const r = kmemu(['replay', TRACE, '--machine', machine]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^kmemu: [^\n]*machine\.json[^\n]*\n$/);
  });
});
