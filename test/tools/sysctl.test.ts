import { describe, expect, it } from 'vitest';
import { Machine, UserError, loadMachineConfig } from '../../emu/index.js';
import { KvaEnd, KvaStart, boot, sysctl, sysctls } from '../../kernel/index.js';
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

/**
 * The figures that follow from the kernel's layout (its image and static data, hence the pages
 * left for phys_avail), taken from a kernel booted here: the CLI must print what the kernel
 * says; the kernel's own tests pin how it computes them.
 */
function booted(preset: string) {
  const k = boot(new Machine(loadMachineConfig(preset)));
  const v = (n: string) => sysctl(k, n)!;
  return { physmem: k.physmem * 4096, v };
}
const cw = booted('coursework');

describe('kmemu sysctl', () => {
  it('kmemu sysctl prints name: value lines in argument order on the coursework machine', async () => {
    const { out } = await run([...COURSEWORK, 'vm.kvm_size', 'vm.kvm_free', 'hw.ncpu', 'hw.physmem', 'vm.stats.vm.v_free_count']);
    expect(out).toBe([
      'vm.kvm_size: 137424269312',
      'vm.kvm_free: 137424269312',
      'hw.ncpu: 4',
      `hw.physmem: ${cw.physmem}`,
      `vm.stats.vm.v_free_count: ${cw.v('vm.stats.vm.v_free_count')}`,
      '',
    ].join('\n'));
  });

  it('kmemu sysctl boots amd64-host by default, where vm.kvm_size is KvaEnd - KvaStart', async () => {
    const { out } = await run(['vm.kvm_size', 'hw.ncpu', 'hw.physmem']);
    expect(KvaEnd - KvaStart).toBe(0x1f_ff1f_f000);
    expect(out).toBe(`vm.kvm_size: ${KvaEnd - KvaStart}\nhw.ncpu: 2\nhw.physmem: ${booted('amd64-host').physmem}\n`);
    expect(out.split('\n')[0]).toBe('vm.kvm_size: 137424269312');
  });

  it('kmemu sysctl --cpus overrides the machine\'s CPU count', async () => {
    const { out } = await run([...COURSEWORK, '--cpus', '7', 'hw.ncpu']);
    expect(out).toBe('hw.ncpu: 7\n');
  });

  it('kmemu sysctl expands a prefix to every name under it, and only at a dot', async () => {
    const { out } = await run([...COURSEWORK, 'vm.stats.vm']);
    expect(out).toBe([
      ...['v_page_count', 'v_free_count', 'v_wire_count', 'v_active_count', 'v_inactive_count', 'v_free_reserved', 'v_free_min', 'v_free_target', 'v_interrupt_free_min', 'v_cache_min', 'v_pdwakeups', 'v_tfree', 'v_zfod'].map(
        (n) => `vm.stats.vm.${n}: ${cw.v(`vm.stats.vm.${n}`)}`,
      ),
      '',
    ].join('\n'));
    const vm = await run([...COURSEWORK, 'vm']);
    expect(Object.keys(vm.values)).toEqual(sysctls.filter((s) => s.present === undefined && s.name.startsWith('vm.')).map((s) => s.name));
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
    expect(JSON.parse(out)).toEqual({ 'hw.ncpu': 4, 'hw.physmem': cw.physmem, 'hw.pagesize': 4096, 'vm.kvm_size': 137424269312 });
  });

  it('kmemu sysctl -a prints every name, -n values only, -d descriptions', async () => {
    const all = await run([...COURSEWORK, '-a']);
    // Every name starts a line `name: value` (vm.zone's value is the multi-line zone table).
    const names = all.out.split('\n').filter((l) => /^[a-z][a-z0-9_.]*: /.test(l)).map((l) => l.split(': ')[0]);
    expect(names).toEqual(sysctls.filter((s) => s.present === undefined).map((s) => s.name));
    expect((await run([...COURSEWORK, '-n', 'hw.ncpu', 'hw.pagesize'])).out).toBe('4\n4096\n');
    expect((await run([...COURSEWORK, '-d', 'hw.ncpu'])).out).toBe('hw.ncpu: Number of active CPUs\n');
  });

  it('kmemu sysctl NAME=VALUE sets a writable name and shows the change, as sysctl(8) does', async () => {
    const { out } = await run([...COURSEWORK, 'vm.zone_burst=8', 'vm.zone_burst']);
    expect(out).toBe('vm.zone_burst: 32 -> 8\nvm.zone_burst: 8\n');
  });

  it('kmemu sysctl vm.zone prints the zone table as sysctl_vm_zone does', async () => {
    const { out } = await run([...COURSEWORK, 'vm.zone']);
    expect(out).toMatch(/^vm\.zone: \nITEM {12}SIZE {5}LIMIT {4}USED {4}FREE {2}REQUESTS\n\nMAP ENTRY: {4}000104, 00000000, \d{6}, \d{6}, \d{8}\n$/);
  });

  it.each([
    [['hw.ncpu', '--cpus', 'x'], '--cpus: expected an integer from 1 to 64, got "x"'],
    [['hw.ncpu', '--cpus', '65'], '--cpus: expected an integer from 1 to 64, got "65"'],
    [['hw.ncpu', '--cpus', '0'], '--cpus: expected an integer from 1 to 64, got "0"'],
    [['hw.ncpu', '--cpus', '2.5'], '--cpus: expected an integer from 1 to 64, got "2.5"'],
    [[], 'sysctl: expected a NAME or -a'],
    [['vm.kvm_size=8'], "sysctl: oid 'vm.kvm_size' is read only"],
    [['vm.zone_burst=lots'], 'sysctl: vm.zone_burst: expected an integer value, got "lots"'],
    [['--machine', 'pdp11', 'hw.ncpu'], 'unknown machine preset "pdp11"'],
  ])('kmemu sysctl %j fails with a user error', async (args, message) => {
    const { out, error } = await runFailing(args);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain(message);
    expect(out).toBe('');
  });
});
