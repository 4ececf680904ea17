import { describe, expect, it } from 'vitest';
import { UserError } from '../../emu/index.js';
import { KvaEnd, KvaStart, sysctls } from '../../kernel/index.js';
import { runSysctl } from '../../tools/sysctl.js';

async function run(args: string[]): Promise<{ out: string; values: Record<string, number | string> }> {
  let out = '';
  const values = await runSysctl(args, { stdout: { write: (s: string) => (out += s) } });
  return { out, values };
}

/** Runs args that must fail; returns what was printed before and the error. */
async function runFailing(args: string[]): Promise<{ out: string; error: unknown }> {
  let out = '';
  const error = await runSysctl(args, { stdout: { write: (s: string) => (out += s) } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { out, error };
}

const COURSEWORK = ['--machine', 'coursework'];

describe('kmemu sysctl', () => {
  it('kmemu sysctl prints name: value lines in argument order on the coursework machine', async () => {
    const { out } = await run([...COURSEWORK, 'vm.kvm_size', 'vm.kvm_free', 'hw.ncpu', 'hw.physmem', 'vm.stats.vm.v_free_count']);
    expect(out).toBe([
      'vm.kvm_size: 137424269312',
      'vm.kvm_free: 137424269312',
      'hw.ncpu: 4',
      'hw.physmem: 257163264',
      'vm.stats.vm.v_free_count: 60736',
      '',
    ].join('\n'));
  });

  it('kmemu sysctl boots amd64-host by default, where vm.kvm_size is KvaEnd - KvaStart', async () => {
    const { out } = await run(['vm.kvm_size', 'hw.ncpu', 'hw.physmem']);
    expect(KvaEnd - KvaStart).toBe(0x1f_ff1f_f000);
    expect(out).toBe(`vm.kvm_size: ${KvaEnd - KvaStart}\nhw.ncpu: 2\nhw.physmem: 4283564032\n`);
    expect(out.split('\n')[0]).toBe('vm.kvm_size: 137424269312');
  });

  it('kmemu sysctl --cpus overrides the machine\'s CPU count', async () => {
    const { out } = await run([...COURSEWORK, '--cpus', '7', 'hw.ncpu']);
    expect(out).toBe('hw.ncpu: 7\n');
  });

  it('kmemu sysctl expands a prefix to every name under it, and only at a dot', async () => {
    const { out } = await run([...COURSEWORK, 'vm.stats.vm']);
    expect(out).toBe([
      'vm.stats.vm.v_page_count: 60736',
      'vm.stats.vm.v_free_count: 60736',
      'vm.stats.vm.v_wire_count: 0',
      'vm.stats.vm.v_active_count: 0',
      'vm.stats.vm.v_inactive_count: 0',
      'vm.stats.vm.v_free_reserved: 385',
      'vm.stats.vm.v_free_min: 687',
      'vm.stats.vm.v_free_target: 3133',
      'vm.stats.vm.v_interrupt_free_min: 2',
      'vm.stats.vm.v_tfree: 0',
      'vm.stats.vm.v_zfod: 0',
      '',
    ].join('\n'));
    const vm = await run([...COURSEWORK, 'vm']);
    expect(Object.keys(vm.values)).toEqual(sysctls.filter((s) => s.name.startsWith('vm.')).map((s) => s.name));
    const { error } = await runFailing([...COURSEWORK, 'vm.kvm']);
    expect(error).toEqual(new UserError("sysctl: unknown oid 'vm.kvm'"));
  });

  it('kmemu sysctl prints the known names, then fails with sysctl(8)\'s message for an unknown one', async () => {
    const { out, error } = await runFailing([...COURSEWORK, 'hw.ncpu', 'foo', 'hw.pagesize']);
    expect(out).toBe('hw.ncpu: 4\nhw.pagesize: 4096\n');
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe("sysctl: unknown oid 'foo'");
  });

  it('kmemu sysctl reports every unknown name, one line each', async () => {
    const { error } = await runFailing([...COURSEWORK, 'foo', 'bar']);
    expect((error as UserError).message).toBe("sysctl: unknown oid 'foo'\nkmemu: sysctl: unknown oid 'bar'");
  });

  it('kmemu sysctl --json prints one object of name → value', async () => {
    const { out } = await run([...COURSEWORK, '--json', 'hw', 'vm.kvm_size']);
    expect(JSON.parse(out)).toEqual({ 'hw.ncpu': 4, 'hw.physmem': 257163264, 'hw.pagesize': 4096, 'vm.kvm_size': 137424269312 });
  });

  it('kmemu sysctl -a prints every name, -n values only, -d descriptions', async () => {
    const all = await run([...COURSEWORK, '-a']);
    expect(all.out.trimEnd().split('\n').map((l) => l.split(': ')[0])).toEqual(sysctls.map((s) => s.name));
    expect((await run([...COURSEWORK, '-n', 'hw.ncpu', 'hw.pagesize'])).out).toBe('4\n4096\n');
    expect((await run([...COURSEWORK, '-d', 'hw.ncpu'])).out).toBe('hw.ncpu: Number of active CPUs\n');
  });

  it.each([
    [['hw.ncpu', '--cpus', 'x'], '--cpus: expected an integer from 1 to 64, got "x"'],
    [['hw.ncpu', '--cpus', '65'], '--cpus: expected an integer from 1 to 64, got "65"'],
    [['hw.ncpu', '--cpus', '0'], '--cpus: expected an integer from 1 to 64, got "0"'],
    [['hw.ncpu', '--cpus', '2.5'], '--cpus: expected an integer from 1 to 64, got "2.5"'],
    [[], 'sysctl: expected a NAME or -a'],
    [['vm.zone_burst=8'], 'sysctl: cannot set vm.zone_burst: each run boots a fresh kernel'],
    [['--machine', 'pdp11', 'hw.ncpu'], 'unknown machine preset "pdp11"'],
  ])('kmemu sysctl %j fails with a user error', async (args, message) => {
    const { out, error } = await runFailing(args);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain(message);
    expect(out).toBe('');
  });
});
