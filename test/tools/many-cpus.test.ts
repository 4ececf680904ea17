import { describe, expect, it } from 'vitest';
import { runBoot } from '../../tools/boot.js';
import { runCompare, runReplay, type ReplayCliOptions } from '../../tools/replay.js';
import { runSysctl } from '../../tools/sysctl.js';

const base = (o: Partial<ReplayCliOptions> = {}): ReplayCliOptions => ({
  machine: 'coursework', cpus: '64', allocator: 'vmzone', touch: '1', sysctl: [], zones: '8', json: true, ...o,
} as ReplayCliOptions);
const io = { out: () => undefined, err: () => undefined };

describe('kmemu on 64 CPUs (the --cpus maximum)', () => {
  it.each(['vmzone', 'uma'] as const)('replay and compare --cpus 64 replay a 4-CPU trace on a 64-CPU machine (%s)', async (allocator) => {
    const r = await runReplay('test/fixtures/traces/pairs-4cpu.trace', base({ allocator }), io);
    expect([r.cpus.length, r.totals.allocations, r.totals.frees]).toEqual([64, 1000, 1000]);
    const d = await runCompare('test/fixtures/traces/pairs-4cpu.trace', base({ allocator }), io);
    expect([d.perCpu.totals.allocations, d.locked.totals.allocations]).toEqual([1000, 1000]);
  });

  it('sysctl --cpus 64 and boot --layout --cpus 64 boot the kernel', async () => {
    const values = await runSysctl(['--machine', 'coursework', '--cpus', '64', 'hw.ncpu', 'vm.zone_count', 'vm.uma_boot_pages_free'], { stdout: { write: () => true } });
    expect(values).toEqual({ 'hw.ncpu': 64, 'vm.zone_count': 18, 'vm.uma_boot_pages_free': 1 });
    let out = '';
    await runBoot(['--layout', '--machine', 'coursework', '--cpus', '64'], { stdout: { write: (s: string) => (out += s) } });
    expect(out.split('\n')[0]).toBe('kernel virtual address space (coursework: 64 CPUs, 256M RAM)');
  });
});
